package topo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MACsecSpec is a link's macsec: block as written: MACsec on both ends of
// the link, declared once.
type MACsecSpec struct {
	Pos           Pos
	Cipher        string      `yaml:"cipher"`
	Device        string      `yaml:"device"`
	Subinterface  string      `yaml:"subinterface"`
	Encrypt       *bool       `yaml:"encrypt"`
	ReplayProtect *bool       `yaml:"replay-protect"`
	Window        uint32      `yaml:"window"`
	Validate      string      `yaml:"validate"`
	IncludeSCI    *bool       `yaml:"include-sci"`
	Keys          *MACsecKeys `yaml:"keys"`
	MKA           *MKASpec    `yaml:"mka"`
}

// MKASpec is a link's MKA keying as written: one connectivity association
// key (CAK) and its name (CKN), as ExpressRoute Direct takes them.
type MKASpec struct {
	Pos Pos
	CAK KeySource `yaml:"cak"`
	CKN KeySource `yaml:"ckn"`
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
	Cipher string // GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256
	Device string // the MACsec device's name on both ends
	// Subinterface, when set, puts MACsec on the VLAN subinterface
	// PORT.Subinterface of each end (say "10.100": QinQ below MACsec)
	// instead of on the port itself.
	Subinterface  string
	Encrypt       bool
	ReplayProtect bool
	Window        uint32
	Validate      string // strict, check, disabled
	IncludeSCI    bool
	// KeyA and KeyB are the SAKs the first and the second endpoint send
	// with. They are never logged, printed or written to the lab state.
	KeyA, KeyB []byte `json:"-"`
	// MKA, when set, keys the link with MKA (wpa_supplicant on both ends)
	// instead of static SAKs.
	MKA *MKA `json:"-"`
}

// Lower is the device MACsec sits on at the link end port: the port, or
// its subinterface.
func (m *MACsec) Lower(port string) string {
	if m.Subinterface == "" {
		return port
	}
	return port + "." + m.Subinterface
}

// MKA is a link's validated MKA keying.
type MKA struct {
	CAK []byte // never logged, printed or written anywhere but wpa_supplicant's 0600 configuration
	CKN []byte
}

// MKACipher is the one suite MKA mode offers: Debian's wpa_supplicant 2.10
// negotiates no other (its macsec_csindex came in 2.11).
const MKACipher = "GCM-AES-128"

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
	// A rejected value is reported once and the link keeps its MACsec all
	// the same (with the cipher unknown, or the value as given), so that
	// what depends on it — the devices stacked on it, the key files — is
	// checked for what it is, and no error cascades from the first.
	m := &MACsec{Cipher: "GCM-AES-128", Device: "macsec0", Encrypt: true, ReplayProtect: true, Validate: "strict", IncludeSCI: true, Window: spec.Window}
	if spec.Cipher != "" {
		norm := strings.ToUpper(spec.Cipher)
		if _, ok := macsecCiphers[norm]; !ok {
			msg := fmt.Sprintf("%s: cipher %q: one of GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256", where, spec.Cipher)
			if c := closest(norm, slices.Sorted(maps.Keys(macsecCiphers))); c != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", c)
			}
			ps.errorf(spec.Pos, "%s", msg)
			norm = "" // unknown: key lengths cannot be checked
		}
		m.Cipher = norm
	}
	if spec.Device != "" {
		m.Device = spec.Device
	}
	if sub := spec.Subinterface; sub != "" {
		ok := true
		for _, id := range strings.Split(sub, ".") {
			if v, err := strconv.Atoi(id); err != nil || v < 1 || v > 4094 {
				ps.errorf(spec.Pos, "%s: subinterface %q: VLAN IDs (1-4094) joined by dots, as in 100 or 10.100", where, sub)
				ok = false
				break
			}
		}
		if ok {
			m.Subinterface = sub
		}
	}
	if msg := ValidIfName(m.Device); msg != "" {
		ps.errorf(spec.Pos, "%s: device: %s", where, msg)
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
	switch {
	case spec.Keys != nil && spec.MKA != nil:
		ps.errorf(spec.Pos, "%s: keys: and mka: are two ways to key a link; give one", where)
	case spec.MKA != nil:
		resolveMKA(m, spec, dir, where, ps)
	case spec.Keys == nil:
		digits := "32 or 64"
		if n := macsecCiphers[m.Cipher]; n > 0 {
			digits = strconv.Itoa(2 * n)
		}
		ps.errorf(spec.Pos, "%s: keys: required: a: and b:, each {file: PATH} or {env: NAME} of %s hex digits (static SAKs), or mka: {cak: ..., ckn: ...}", where, digits)
	default:
		m.KeyA, _ = readKey(spec.Keys.A, dir, macsecCiphers[m.Cipher], where+": keys: a", ps)
		m.KeyB, _ = readKey(spec.Keys.B, dir, macsecCiphers[m.Cipher], where+": keys: b", ps)
	}
}

// resolveMKA checks an MKA link against what wpa_supplicant can do and
// against ExpressRoute Direct's key rules: the CKN an even number of hex
// digits, up to 64; the CAK 32 hex digits for 128-bit ciphers and 64 for
// 256-bit ones, a shorter one zero-padded on the right as Azure does.
func resolveMKA(m *MACsec, spec *MACsecSpec, dir, where string, ps *problems) {
	if m.Cipher != MKACipher && m.Cipher != "" {
		ps.errorf(spec.Pos, "%s: cipher %s needs static SAKs (keys:): in MKA mode Debian's wpa_supplicant 2.10 negotiates %s only (the 256-bit and XPN suites came in hostap 2.11)", where, m.Cipher, MKACipher)
		return
	}
	if spec.Validate != "" && m.Validate != "strict" {
		ps.errorf(spec.Pos, "%s: validate %s: wpa_supplicant always validates strictly in MKA mode", where, m.Validate)
	}
	if spec.IncludeSCI != nil && !m.IncludeSCI {
		ps.errorf(spec.Pos, "%s: include-sci: wpa_supplicant always includes the SCI in MKA mode", where)
	}
	mka := &MKA{}
	text, from, ok := readSecret(spec.MKA.CKN, dir, 16, where+": mka: ckn", ps)
	if ok {
		ckn, err := hex.DecodeString(text)
		switch {
		case err != nil || len(text)%2 != 0:
			ps.errorf(spec.MKA.CKN.Pos, "%s: mka: ckn: the CKN in %s must be an even number of hex digits", where, from)
		case len(ckn) == 0 || len(ckn) > 32:
			ps.errorf(spec.MKA.CKN.Pos, "%s: mka: ckn: the CKN in %s has %d hex digits; ExpressRoute Direct takes 2 to 64", where, from, len(text))
		default:
			mka.CKN = ckn
		}
	}
	n := macsecCiphers[m.Cipher]
	text, from, ok = readSecret(spec.MKA.CAK, dir, n, where+": mka: cak", ps)
	if ok && n > 0 {
		cak, err := hex.DecodeString(text)
		switch {
		case err != nil || len(text)%2 != 0:
			ps.errorf(spec.MKA.CAK.Pos, "%s: mka: cak: the CAK in %s must be hex digits, %d for %s", where, from, 2*n, m.Cipher)
		case len(cak) > n || len(cak) == 0:
			ps.errorf(spec.MKA.CAK.Pos, "%s: mka: cak: the CAK in %s has %d hex digits; %s takes %d", where, from, len(text), m.Cipher, 2*n)
		default:
			if len(cak) < n {
				ps.warnf(spec.MKA.CAK.Pos, "%s: mka: cak: the CAK in %s has %d hex digits; it is zero-padded on the right to %d, as Azure does", where, from, len(text), 2*n)
				cak = append(cak, make([]byte, n-len(cak))...)
			}
			mka.CAK = cak
		}
	}
	if mka.CAK != nil && mka.CKN != nil {
		m.MKA = mka
	}
}

// readKey reads a key of n bytes, written as 2n hex digits, from where the
// source says. Errors name the source, never the key.
func readKey(src KeySource, dir string, n int, where string, ps *problems) ([]byte, bool) {
	text, from, ok := readSecret(src, dir, n, where, ps)
	if !ok || n == 0 { // n == 0: the length is unknown, the cipher having been refused
		return nil, false
	}
	key, err := hex.DecodeString(text)
	if err != nil || len(key) != n {
		ps.errorf(src.Pos, "%s: the key in %s must be %d hex digits for this cipher", where, from, 2*n)
		return nil, false
	}
	return key, true
}

// readSecret reads a secret's text from a file (which only its owner may
// read), an environment variable, or inline hex, and says where it came
// from for messages — which never quote it.
func readSecret(src KeySource, dir string, n int, where string, ps *problems) (text, from string, ok bool) {
	switch {
	case src.File != "" && src.Env == "" && src.Hex == "":
		path := src.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			bytes := ""
			if n > 0 {
				bytes = fmt.Sprintf("--bytes %d ", n)
			}
			ps.errorf(src.Pos, "%s: key file %s does not exist; make one with: erlab macsec keygen %s%s", where, src.File, bytes, path)
			return "", "", false
		}
		if err != nil {
			ps.errorf(src.Pos, "%s: %v", where, err)
			return "", "", false
		}
		if st.Mode().Perm()&0o077 != 0 {
			ps.errorf(src.Pos, "%s: key file %s is readable by others (mode %04o); chmod 600 it", where, src.File, st.Mode().Perm())
			return "", "", false
		}
		b, err := os.ReadFile(path)
		if err != nil {
			ps.errorf(src.Pos, "%s: %v", where, err)
			return "", "", false
		}
		text, from = string(b), "file "+src.File
	case src.Env != "" && src.File == "" && src.Hex == "":
		v, set := ps.lookup(src.Env)
		if !set {
			ps.errorf(src.Pos, "%s: environment variable %s is not set", where, src.Env)
			return "", "", false
		}
		text, from = v, "environment variable "+src.Env
	case src.Hex != "" && src.File == "" && src.Env == "":
		text, from = src.Hex, "hex"
	default:
		ps.errorf(src.Pos, "%s: give exactly one of file:, env: or hex:", where)
		return "", "", false
	}
	return strings.TrimSpace(text), from, true
}

// linkMAC is a stable, locally administered MAC address for a link end
// whose MACsec peer must know it in advance (the SCI is built from it).
func linkMAC(lab string, ep Endpoint) net.HardwareAddr {
	sum := sha256.Sum256([]byte(lab + "/" + ep.String()))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfc | 0x02 // unicast, locally administered
	return mac
}
