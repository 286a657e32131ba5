package topo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// MACsecSpec is a link's macsec: block as written: MACsec on both ends of
// the link, declared once.
type MACsecSpec struct {
	Pos           Pos
	Cipher        string      `yaml:"cipher"`
	Device        string      `yaml:"device"`
	Encrypt       *bool       `yaml:"encrypt"`
	ReplayProtect *bool       `yaml:"replay-protect"`
	Window        uint32      `yaml:"window"`
	Validate      string      `yaml:"validate"`
	IncludeSCI    *bool       `yaml:"include-sci"`
	Keys          *MACsecKeys `yaml:"keys"`
}

// MACsecKeys are the static SAKs, one per direction: A's is what the first
// endpoint sends with (and the second receives with), B's the reverse.
type MACsecKeys struct {
	Pos Pos
	A   KeySource `yaml:"a"`
	B   KeySource `yaml:"b"`
}

// KeySource says where a secret is: a file, or an environment variable, of
// hex digits. Secrets are never required inline (a ${VAR} works too).
type KeySource struct {
	Pos  Pos
	File string `yaml:"file"`
	Env  string `yaml:"env"`
	Hex  string `yaml:"hex"`
}

// MACsec is a link's validated MACsec configuration.
type MACsec struct {
	Cipher        string // GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256
	Device        string // the MACsec device's name on both ends
	Encrypt       bool
	ReplayProtect bool
	Window        uint32
	Validate      string // strict, check, disabled
	IncludeSCI    bool
	// KeyA and KeyB are the SAKs the first and the second endpoint send
	// with. They are never logged, printed or written to the lab state.
	KeyA, KeyB []byte `json:"-"`
}

// macsecCiphers are the suites ExpressRoute Direct offers, with their key
// lengths in bytes.
var macsecCiphers = map[string]int{"GCM-AES-128": 16, "GCM-AES-256": 32, "GCM-AES-XPN-128": 16, "GCM-AES-XPN-256": 32}

// TypeMACsec is a MACsec device on a link end.
const TypeMACsec InterfaceType = "macsec"

// MACsecOverhead is what MACsec adds to a frame: the SecTAG (8 bytes, 16
// with the SCI) and the ICV (16).
func MACsecOverhead(includeSCI bool) int {
	if includeSCI {
		return 32
	}
	return 24
}

func resolveMACsec(t *Topology, l *Link, spec *MACsecSpec, dir string, i int, ps *problems) {
	where := fmt.Sprintf("links[%d]: macsec", i)
	m := &MACsec{Cipher: "GCM-AES-128", Device: "macsec0", Encrypt: true, ReplayProtect: true, Validate: "strict", IncludeSCI: true, Window: spec.Window}
	if spec.Cipher != "" {
		norm := strings.ToUpper(spec.Cipher)
		if _, ok := macsecCiphers[norm]; !ok {
			ps.errorf(spec.Pos, "%s: cipher %q: one of GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256", where, spec.Cipher)
			return
		}
		m.Cipher = norm
	}
	if spec.Device != "" {
		m.Device = spec.Device
	}
	if msg := ValidIfName(m.Device); msg != "" {
		ps.errorf(spec.Pos, "%s: device: %s", where, msg)
		return
	}
	for _, f := range []struct {
		dst *bool
		src *bool
	}{{&m.Encrypt, spec.Encrypt}, {&m.ReplayProtect, spec.ReplayProtect}, {&m.IncludeSCI, spec.IncludeSCI}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	switch spec.Validate {
	case "", "strict":
	case "check", "disabled":
		m.Validate = spec.Validate
	default:
		ps.errorf(spec.Pos, "%s: validate %q: strict, check or disabled", where, spec.Validate)
	}
	// The link has MACsec from here on, even if its keys are bad: its
	// devices exist for the rest of the checks, and errors do not cascade.
	l.MACsec = m
	if spec.Keys == nil {
		ps.errorf(spec.Pos, "%s: keys: required: a: and b:, each {file: PATH} or {env: NAME} of %d hex digits", where, 2*macsecCiphers[m.Cipher])
		return
	}
	m.KeyA, _ = readKey(spec.Keys.A, dir, macsecCiphers[m.Cipher], where+": keys: a", ps)
	m.KeyB, _ = readKey(spec.Keys.B, dir, macsecCiphers[m.Cipher], where+": keys: b", ps)
}

// readKey reads a key of n bytes, written as 2n hex digits, from where the
// source says. Errors name the source, never the key.
func readKey(src KeySource, dir string, n int, where string, ps *problems) ([]byte, bool) {
	var text, from string
	switch {
	case src.File != "" && src.Env == "" && src.Hex == "":
		path := src.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		st, err := os.Stat(path)
		if err != nil {
			ps.errorf(src.Pos, "%s: %v", where, err)
			return nil, false
		}
		if st.Mode().Perm()&0o077 != 0 {
			ps.errorf(src.Pos, "%s: key file %s is readable by others (mode %04o); chmod 600 it", where, src.File, st.Mode().Perm())
			return nil, false
		}
		b, err := os.ReadFile(path)
		if err != nil {
			ps.errorf(src.Pos, "%s: %v", where, err)
			return nil, false
		}
		text, from = string(b), "file "+src.File
	case src.Env != "" && src.File == "" && src.Hex == "":
		v, set := ps.lookup(src.Env)
		if !set {
			ps.errorf(src.Pos, "%s: environment variable %s is not set", where, src.Env)
			return nil, false
		}
		text, from = v, "environment variable "+src.Env
	case src.Hex != "" && src.File == "" && src.Env == "":
		text, from = src.Hex, "hex"
	default:
		ps.errorf(src.Pos, "%s: give exactly one of file:, env: or hex:", where)
		return nil, false
	}
	key, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != n {
		ps.errorf(src.Pos, "%s: the key in %s must be %d hex digits for this cipher", where, from, 2*n)
		return nil, false
	}
	return key, true
}

// linkMAC is a stable, locally administered MAC address for a link end
// whose MACsec peer must know it in advance (the SCI is built from it).
func linkMAC(lab string, ep Endpoint) net.HardwareAddr {
	sum := sha256.Sum256([]byte(lab + "/" + ep.String()))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfc | 0x02 // unicast, locally administered
	return mac
}

// planMACsecMTU makes room for MACsec below a device given an MTU: the
// parent needs the MTU plus MACsec's overhead, so that a full-size packet
// on top crosses without fragmentation. A parent left unset is raised; one
// set too small is refused, with the numbers.
func planMACsecMTU(n *Node, ps *problems) {
	for _, iface := range n.Interfaces {
		if iface.Type != TypeMACsec || iface.MTU == 0 {
			continue
		}
		parent := n.Interface(iface.Parent)
		need := iface.MTU + MACsecOverhead(iface.Link.MACsec.IncludeSCI)
		switch {
		case parent.MTU == 0:
			parent.MTU = need
		case parent.MTU < need:
			ps.errorf(iface.Pos, "node %q: interface %q: mtu %d over MACsec needs %d on %s (%d bytes of SecTAG and ICV), which has mtu %d",
				n.Name, iface.Name, iface.MTU, need, parent.Name, MACsecOverhead(iface.Link.MACsec.IncludeSCI), parent.MTU)
		}
		if need > MaxMTU {
			ps.errorf(iface.Pos, "node %q: interface %q: mtu %d over MACsec needs %d on %s, more than %d", n.Name, iface.Name, iface.MTU, need, parent.Name, MaxMTU)
		}
	}
}
