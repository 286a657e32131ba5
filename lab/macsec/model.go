// Package macsec is the MACsec feature: a link's macsec: block puts MACsec
// (IEEE 802.1AE) on both of its ends, declared once — on the ports or on a
// VLAN subinterface of each — with static SAKs configured over netlink
// (package genl beside it: no Go library has the kernel's macsec family).
// It holds the model and its checks, the devices and keys at deploy, the
// MACSEC table of inspect, verify encryption for links, and the hitless
// rotation of static keys. A link keyed by MKA instead is package mka's,
// which builds on this model.
package macsec

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/erlab-dev/erlab/lab/topo"
)

// Name is the feature's name.
const Name = "macsec"

// Type is a MACsec device on a link end.
const Type topo.InterfaceType = "macsec"

// Spec is a link's macsec: block as written.
type Spec struct {
	Pos           topo.Pos
	Cipher        string        `yaml:"cipher"`
	Device        string        `yaml:"device"`
	Subinterface  string        `yaml:"subinterface"`
	Encrypt       *bool         `yaml:"encrypt"`
	ReplayProtect *bool         `yaml:"replay-protect"`
	Window        uint32        `yaml:"window"`
	Validate      string        `yaml:"validate"`
	IncludeSCI    *bool         `yaml:"include-sci"`
	Keys          *topo.KeyPair `yaml:"keys"`
	MKA           *MKASpec      `yaml:"mka"`
}

// MKASpec is a link's MKA keying as written: one connectivity association
// key (CAK) and its name (CKN), as ExpressRoute Direct takes them. Package
// mka reads it.
type MKASpec struct {
	Pos topo.Pos
	CAK topo.KeySource `yaml:"cak"`
	CKN topo.KeySource `yaml:"ckn"`
}

// Config is a link's validated MACsec configuration.
type Config struct {
	Cipher string `json:"cipher"` // GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256; "" when refused
	Device string `json:"device"` // the MACsec device's name on both ends
	// Subinterface, when set, puts MACsec on the VLAN subinterface
	// PORT.Subinterface of each end (say "10.100": QinQ below MACsec)
	// instead of on the port itself.
	Subinterface  string `json:"subinterface,omitempty"`
	Encrypt       bool   `json:"encrypt"`
	ReplayProtect bool   `json:"replay_protect"`
	Window        uint32 `json:"window"`
	Validate      string `json:"validate"` // strict, check, disabled
	IncludeSCI    bool   `json:"include_sci"`
	// KeyA and KeyB are the SAKs the first and the second endpoint send
	// with (static keying). They are never logged, printed or written to
	// the lab state.
	KeyA, KeyB []byte `json:"-"`
	// MKA, when set, is the link's MKA keying as written: package mka keys
	// the link and makes its devices; this feature leaves them alone.
	MKA *MKASpec `json:"-"`
	// MACs are the ports' addresses, A's and B's, fixed when the topology
	// is read: each end builds its peer's SCI from them.
	MACs [2]net.HardwareAddr `json:"-"`
}

// Lower is the device MACsec sits on at the link end port: the port, or
// its subinterface.
func (m *Config) Lower(port string) string {
	if m.Subinterface == "" {
		return port
	}
	return port + "." + m.Subinterface
}

// Static says whether the link is keyed with static SAKs (by this feature).
func (m *Config) Static() bool { return m.MKA == nil }

// Of returns a link's MACsec, nil when the link is plaintext.
func Of(l *topo.Link) *Config { m, _ := l.Ext[Name].(*Config); return m }

// OfDevice returns the MACsec of the link a MACsec device protects, nil for
// any other interface.
func OfDevice(i *topo.Interface) *Config {
	if i.Type != Type || i.Link == nil {
		return nil
	}
	return Of(i.Link)
}

// Ciphers are the suites ExpressRoute Direct offers, with their key
// lengths in bytes.
var Ciphers = map[string]int{"GCM-AES-128": 16, "GCM-AES-256": 32, "GCM-AES-XPN-128": 16, "GCM-AES-XPN-256": 32}

// Overhead is what MACsec adds to a frame: the SecTAG (8 bytes, 16 with
// the SCI) and the ICV (16).
func Overhead(includeSCI bool) int {
	if includeSCI {
		return 32
	}
	return 24
}

// Feature is the MACsec feature.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// Keys implements topo.KeysHook.
// DefaultDevice is a link's MACsec device unless device: names another.
const DefaultDevice = "macsec0"

func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeLink, Name: "macsec", Spec: (*Spec)(nil)},
		{Scope: topo.ScopeAction, Name: RotateAction, Spec: ""},
	}
}

// Resolve implements topo.ResolveHook: each link's macsec: block.
func (Feature) Resolve(t *topo.Topology, r topo.Reporter) {
	for i, l := range t.Links {
		if spec, _, ok := topo.SpecOf[*Spec](l.Specs, "macsec"); ok && spec != nil {
			l.Ext[Name] = resolve(t, spec, i, r)
		}
	}
}

// resolve reads a link's macsec: block. A rejected value is reported once
// and the link keeps its MACsec all the same (with the cipher unknown, or
// the value as given), so that what depends on it — the devices stacked on
// it, the key files — is checked for what it is, and no error cascades
// from the first.
func resolve(t *topo.Topology, spec *Spec, i int, r topo.Reporter) *Config {
	where := fmt.Sprintf("links[%d]: macsec", i)
	m := &Config{Cipher: "GCM-AES-128", Device: DefaultDevice, Encrypt: true, ReplayProtect: true, Validate: "strict", IncludeSCI: true, Window: spec.Window, MKA: spec.MKA}
	if spec.Cipher != "" {
		norm := strings.ToUpper(spec.Cipher)
		if _, ok := Ciphers[norm]; !ok {
			msg := fmt.Sprintf("%s: cipher %q: one of GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256", where, spec.Cipher)
			if c := topo.Closest(norm, slices.Sorted(maps.Keys(Ciphers))); c != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", c)
			}
			r.Errorf(spec.Pos, "%s", msg)
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
				r.Errorf(spec.Pos, "%s: subinterface %q: VLAN IDs (1-4094) joined by dots, as in 100 or 10.100", where, sub)
				ok = false
				break
			}
		}
		if ok {
			m.Subinterface = sub
		}
	}
	if msg := topo.ValidIfName(m.Device); msg != "" {
		r.Errorf(spec.Pos, "%s: device: %s", where, msg)
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
		r.Errorf(spec.Pos, "%s: validate %q: strict, check or disabled", where, spec.Validate)
	}
	switch {
	case spec.Keys != nil && spec.MKA != nil:
		r.Errorf(spec.Pos, "%s: keys: and mka: are two ways to key a link; give one", where)
		m.MKA = nil // neither is read: which one was meant is not known
	case spec.MKA != nil:
		// Package mka checks the keys and what MKA mode allows.
	case spec.Keys == nil:
		digits := "32 or 64"
		if n := Ciphers[m.Cipher]; n > 0 {
			digits = strconv.Itoa(2 * n)
		}
		r.Errorf(spec.Pos, "%s: keys: required: a: and b:, each {file: PATH} or {env: NAME} of %s hex digits (static SAKs), or mka: {cak: ..., ckn: ...}", where, digits)
	default:
		m.KeyA, _ = topo.ReadKey(spec.Keys.A, t.Dir(), Ciphers[m.Cipher], where+": keys: a", r)
		m.KeyB, _ = topo.ReadKey(spec.Keys.B, t.Dir(), Ciphers[m.Cipher], where+": keys: b", r)
	}
	return m
}

// AddInterfaces implements topo.InterfacesHook: each end of a MACsec link
// gets its device, on the port or on the subinterface named, and the port
// a stable MAC address, from which the peer builds the end's SCI.
func (Feature) AddInterfaces(t *topo.Topology, n *topo.Node, r topo.Reporter) {
	for _, l := range t.LinksOf(n.Name) {
		m := Of(l)
		if m == nil {
			continue
		}
		for k, ep := range l.Ends() {
			if ep.Node != n.Name {
				continue
			}
			m.MACs[k] = PortMAC(t.Name, ep)
			n.Interface(ep.Iface).MAC = m.MACs[k]
			if other := n.Interface(m.Device); other != nil {
				r.Errorf(ep.Pos, "node %q: MACsec device %q is on two links; give each link's macsec a device: name", n.Name, m.Device)
				continue
			}
			n.Interfaces = append(n.Interfaces, &topo.Interface{Name: m.Device, Pos: ep.Pos, Type: Type, Owner: Name, Link: l,
				Parent: m.Lower(ep.Iface), PayloadLayer: "MACsec", Ext: topo.Ext{}})
		}
	}
}

// CheckNode implements topo.NodeHook: MACsec on a subinterface needs the
// subinterface, stacked on the port.
func (Feature) CheckNode(_ *topo.Topology, n *topo.Node, r topo.Reporter) {
	for _, i := range n.Interfaces {
		m := OfDevice(i)
		if m == nil || m.Subinterface == "" {
			continue
		}
		if p := n.Interface(i.Parent); p == nil || p.Owner == "" || n.Lowest(p) == p {
			r.Errorf(i.Pos, "node %q: MACsec device %q goes on subinterface %s, which is not a VLAN subinterface of this node; declare it under its interfaces", n.Name, i.Name, i.Parent)
		}
	}
}

// Overhead implements topo.OverheadHook: a MACsec device adds its SecTAG
// and ICV inside its parent.
func (Feature) Overhead(_ *topo.Node, i *topo.Interface) (int, string, bool) {
	m := OfDevice(i)
	if m == nil {
		return 0, "", false
	}
	return Overhead(m.IncludeSCI), "SecTAG and ICV", true
}

// PortMAC is a stable, locally administered MAC address for a link end
// whose MACsec peer must know it in advance (the SCI is built from it).
func PortMAC(lab string, ep topo.Endpoint) net.HardwareAddr {
	sum := sha256.Sum256([]byte(lab + "/" + ep.String()))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfc | 0x02 // unicast, locally administered
	return mac
}

// Ends returns a MACsec link's two ends as devices: the node, the port, and
// the device MACsec sits on at that end (the port or its subinterface).
func Ends(l *topo.Link) [2]End {
	m := Of(l)
	var out [2]End
	for k, ep := range l.Ends() {
		out[k] = End{Endpoint: ep, Lower: m.Lower(ep.Iface), Device: m.Device}
	}
	return out
}

// End is one end of a MACsec link.
type End struct {
	topo.Endpoint
	Lower  string // the device MACsec sits on: the port or its subinterface
	Device string // the MACsec device
}

// EndOf finds the MACsec link whose end NODE:IFACE names (the port or the
// MACsec device), and its two ends, this one first.
func EndOf(t *topo.Topology, node, iface string) (self, peer End, l *topo.Link, ok bool) {
	for _, cand := range t.Links {
		m := Of(cand)
		if m == nil {
			continue
		}
		ends := Ends(cand)
		for k, e := range ends {
			if e.Node == node && (e.Iface == iface || m.Device == iface) {
				return e, ends[1-k], cand, true
			}
		}
	}
	return End{}, End{}, nil, false
}
