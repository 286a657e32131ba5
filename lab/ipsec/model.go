// Package ipsec is the IPsec feature: ESP tunnels (tunnel mode) declared
// under topology.tunnels, route-based (an xfrm interface per end, as
// Azure's VPN gateways) or policy-based; their model and checks, static
// keying installed over XFRM netlink (package xfrm beside it), the TUNNEL
// table of inspect, and verify encryption for tunnels. A tunnel keyed by
// IKEv2 instead is package ike's, which builds on this model.
package ipsec

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/topo"
)

// TunnelSpec is an IPsec tunnel as written under topology.tunnels: ESP in
// tunnel mode between two nodes' addresses, declared once.
type TunnelSpec struct {
	Pos          topo.Pos
	Name         string          `yaml:"name"`
	Endpoints    []TunnelEndSpec `yaml:"endpoints"`
	Mode         string          `yaml:"mode"`
	Algorithm    string          `yaml:"algorithm"`
	ReplayWindow *int            `yaml:"replay-window"`
	NATT         bool            `yaml:"nat-t"`
	Keys         *topo.KeyPair   `yaml:"keys"`
	IKE          *IKESpec        `yaml:"ike"`
	Verify       *VerifySpec     `yaml:"verify"`
}

// VerifySpec names the flow verify encryption sends through a tunnel, when
// not between its own inner addresses: from a node (its address, or
// NODE:ADDRESS) on the first endpoint's side to an address on the second's.
type VerifySpec struct {
	Pos  topo.Pos
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// TunnelEndSpec is one end of a tunnel as written.
type TunnelEndSpec struct {
	Pos       topo.Pos
	Node      string   `yaml:"node"`
	Local     string   `yaml:"local"`
	Interface string   `yaml:"interface"`
	Nets      []string `yaml:"nets"`
}

// IKESpec asks for IKEv2 keying (strongSwan) instead of static keys.
type IKESpec struct {
	Pos      topo.Pos
	PSK      topo.KeySource `yaml:"psk"`
	DPD      string         `yaml:"dpd"`
	Rekey    string         `yaml:"rekey"`
	Lifetime string         `yaml:"lifetime"`
}

// Tunnel is a validated IPsec tunnel. A is the first endpoint; SPIs and
// keys are named by the direction they protect.
type Tunnel struct {
	Name      string
	Pos       topo.Pos
	A, B      TunnelEnd
	Mode      xfrm.Mode
	Algorithm xfrm.Algorithm
	// ReplayWindow as xfrm.Tunnel takes it (0: the default).
	ReplayWindow int
	NATT         bool
	IfID         uint32 // route-based: the xfrm interfaces' if_id, unique in the lab
	ReqID        uint32
	SPIAB, SPIBA uint32 // the SPIs of A→B and B→A
	// KeyAB and KeyBA are the static keys of each direction (cipher key,
	// then authentication key). Never logged, printed or written.
	KeyAB, KeyBA []byte `json:"-"`
	// IKE, when set, is the tunnel's IKEv2 keying as written: package ike
	// keys the tunnel (strongSwan installs its SAs); this feature makes its
	// xfrm interfaces only.
	IKE *IKESpec `json:"-"`
	// VerifyNode, VerifySrc and VerifyDst are the flow verify encryption
	// sends (VerifyNode empty: between the tunnel's inner addresses).
	VerifyNode           string
	VerifySrc, VerifyDst netip.Addr
}

// TunnelEnd is one end of a tunnel.
type TunnelEnd struct {
	Node      string
	Local     netip.Addr     // the outer address, one of the node's
	Interface string         // route-based: the xfrm interface
	Nets      []netip.Prefix // policy-based: the subnets behind this end
}

// Name is the feature's name.
const Name = "ipsec"

// TypeXfrm is a route-based tunnel's xfrm interface.
const TypeXfrm topo.InterfaceType = "xfrm"

// End returns the end of the tunnel on node, and the other one.
func (t *Tunnel) End(node string) (self, peer TunnelEnd, ok bool) {
	switch node {
	case t.A.Node:
		return t.A, t.B, true
	case t.B.Node:
		return t.B, t.A, true
	}
	return TunnelEnd{}, TunnelEnd{}, false
}

// Tunnels returns the topology's tunnels.
func Tunnels(t *topo.Topology) []*Tunnel { tt, _ := t.Ext[Name].([]*Tunnel); return tt }

// Find returns the tunnel named name, or nil.
func Find(t *topo.Topology, name string) *Tunnel {
	for _, tu := range Tunnels(t) {
		if tu.Name == name {
			return tu
		}
	}
	return nil
}

// OfInterface returns the tunnel whose xfrm interface i is, or nil.
func OfInterface(i *topo.Interface) *Tunnel { tu, _ := i.Ext[Name].(*Tunnel); return tu }

// Static says whether the tunnel is keyed with static keys (by this
// feature).
func (t *Tunnel) Static() bool { return t.IKE == nil }

// Keying names how the tunnel is keyed, for messages and inspect.
func (t *Tunnel) Keying() string {
	if t.IKE != nil {
		return "ike"
	}
	return "static"
}

// XFRM returns the end of the tunnel on node as package xfrm configures
// it, keys included (static keying).
func (t *Tunnel) XFRM(node string) xfrm.Tunnel {
	self, peer, _ := t.End(node)
	it := xfrm.Tunnel{Name: t.Name, Local: self.Local, Remote: peer.Local, Mode: t.Mode, Algorithm: t.Algorithm,
		ReplayWindow: t.ReplayWindow, ReqID: t.ReqID, SPIOut: t.SPIAB, SPIIn: t.SPIBA}
	if t.KeyAB != nil {
		it.KeyOut, it.KeyIn = splitKey(t.Algorithm, t.KeyAB), splitKey(t.Algorithm, t.KeyBA)
	}
	if node == t.B.Node {
		it.SPIOut, it.SPIIn, it.KeyOut, it.KeyIn = it.SPIIn, it.SPIOut, it.KeyIn, it.KeyOut
	}
	if t.Mode == xfrm.RouteBased {
		it.Interface, it.IfID = self.Interface, t.IfID
	} else {
		it.LocalNets, it.RemoteNets = self.Nets, peer.Nets
	}
	if t.NATT {
		it.Encap = &xfrm.UDPEncap{}
	}
	return it
}

func splitKey(a xfrm.Algorithm, k []byte) xfrm.Key {
	enc, _ := a.KeyLen()
	if len(k) < enc {
		return xfrm.Key{}
	}
	return xfrm.Key{Enc: k[:enc], Auth: k[enc:]}
}

// TunnelKeyLen is the length of a static key for an algorithm, in bytes:
// the cipher key (with the 4-byte salt for GCM) and then the
// authentication key, written as one hex string.
func TunnelKeyLen(a xfrm.Algorithm) int {
	enc, auth := a.KeyLen()
	return enc + auth
}

// Feature is the IPsec feature.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// Keys implements topo.KeysHook.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeTopology, Name: "tunnels", Spec: []TunnelSpec(nil)},
		{Scope: topo.ScopeAction, Name: BreakAction, Spec: ""},
	}
}

// Resolve implements topo.ResolveHook: topology.tunnels, before the nodes'
// interfaces are read, since a route-based tunnel adds its xfrm interface
// to both nodes; CheckTopology checks their outer addresses after.
func (Feature) Resolve(t *topo.Topology, r topo.Reporter) {
	specs, _, ok := topo.SpecOf[[]TunnelSpec](t.Specs, "tunnels")
	if ok {
		t.Ext[Name] = resolveTunnels(t, specs, t.Dir(), r)
	}
}

func resolveTunnels(t *topo.Topology, specs []TunnelSpec, dir string, ps topo.Reporter) []*Tunnel {
	var out []*Tunnel
	names := map[string]bool{}
	for i, s := range specs {
		where := fmt.Sprintf("tunnels[%d]", i)
		tu := &Tunnel{Name: s.Name, Pos: s.Pos, Mode: xfrm.RouteBased, Algorithm: xfrm.AES256GCM16, NATT: s.NATT,
			IfID: uint32(100 + i), ReqID: uint32(100 + i)}
		switch {
		case s.Name == "":
			ps.Errorf(s.Pos, "%s: name: required (it names the tunnel in inspect, rekey and verify)", where)
		case names[s.Name]:
			ps.Errorf(s.Pos, "%s: name %q: another tunnel has it", where, s.Name)
		default:
			where = fmt.Sprintf("tunnel %q", s.Name)
		}
		names[s.Name] = true
		switch s.Mode {
		case "", "route":
		case "policy":
			tu.Mode = xfrm.PolicyBased
		default:
			ps.Errorf(s.Pos, "%s: mode %q: route (an xfrm interface, as Azure VPN gateways are) or policy", where, s.Mode)
		}
		badAlg := false
		if s.Algorithm != "" {
			a, err := xfrm.ParseAlgorithm(s.Algorithm)
			if err != nil {
				ps.Errorf(s.Pos, "%s: %v", where, err)
				badAlg = true // its keys cannot be checked
			} else {
				tu.Algorithm = a
			}
		}
		if s.ReplayWindow != nil {
			switch w := *s.ReplayWindow; {
			case w == 0:
				tu.ReplayWindow = xfrm.NoReplayProtection
			case w < 0 || w > xfrm.MaxReplayWindow:
				ps.Errorf(s.Pos, "%s: replay-window %d: 0 (off) to %d packets (the kernel's limit without extended sequence numbers)", where, w, xfrm.MaxReplayWindow)
			default:
				tu.ReplayWindow = w
			}
		}
		if len(s.Endpoints) != 2 {
			ps.Errorf(s.Pos, "%s: endpoints: exactly two, each {node: NAME, local: ADDRESS}", where)
			continue
		}
		ends := [2]*TunnelEnd{&tu.A, &tu.B}
		ok := true
		for k, es := range s.Endpoints {
			e := ends[k]
			e.Node, e.Interface = es.Node, es.Interface
			ewhere := fmt.Sprintf("%s: endpoints[%d]", where, k)
			if t.Node(es.Node) == nil {
				ps.Errorf(es.Pos, "%s: node %q: no such node", ewhere, es.Node)
				ok = false
			}
			a, err := netip.ParseAddr(es.Local)
			if err != nil {
				ps.Errorf(es.Pos, "%s: local %q: the outer address, one of the node's addresses", ewhere, es.Local)
				ok = false
			}
			e.Local = a
			if tu.Mode == xfrm.RouteBased {
				if e.Interface == "" {
					e.Interface = "ipsec0"
				}
				if msg := topo.ValidIfName(e.Interface); msg != "" {
					ps.Errorf(es.Pos, "%s: interface: %s", ewhere, msg)
					ok = false
				}
				if len(es.Nets) > 0 {
					ps.Errorf(es.Pos, "%s: nets: only a policy-based tunnel (mode: policy) has them; a route-based one routes into its interface", ewhere)
				}
			} else {
				if es.Interface != "" {
					ps.Errorf(es.Pos, "%s: interface: a policy-based tunnel has none (mode: route has)", ewhere)
				}
				if len(es.Nets) == 0 {
					ps.Errorf(es.Pos, "%s: nets: required for a policy-based tunnel: the subnets behind this end", ewhere)
				}
				for _, n := range es.Nets {
					p, err := netip.ParsePrefix(n)
					if err != nil || p != p.Masked() {
						ps.Errorf(es.Pos, "%s: nets: %q is not a network prefix such as 10.1.0.0/16", ewhere, n)
						continue
					}
					e.Nets = append(e.Nets, p)
				}
			}
		}
		if ok && tu.A.Node == tu.B.Node {
			ps.Errorf(s.Pos, "%s: both endpoints are on node %q", where, tu.A.Node)
			ok = false
		}
		if ok && tu.A.Local.Is4() != tu.B.Local.Is4() {
			ps.Errorf(s.Pos, "%s: the outer addresses %s and %s are of two IP versions", where, tu.A.Local, tu.B.Local)
		}
		sum := sha256.Sum256([]byte(t.Name + "/" + s.Name))
		tu.SPIAB = xfrm.MinSPI + binary.BigEndian.Uint32(sum[:4])%(1<<31)
		tu.SPIBA = xfrm.MinSPI + binary.BigEndian.Uint32(sum[4:8])%(1<<31)
		if tu.SPIBA == tu.SPIAB {
			tu.SPIBA++
		}
		n := TunnelKeyLen(tu.Algorithm)
		switch {
		case s.Keys != nil && s.IKE != nil:
			ps.Errorf(s.Pos, "%s: keys: (static) and ike: are two ways to key a tunnel; give one", where)
		case s.IKE != nil:
			tu.IKE = s.IKE // package ike reads it
		case badAlg:
		case s.Keys == nil:
			ps.Errorf(s.Pos, "%s: keys: required: a: and b:, each {file: PATH} or {env: NAME} of %d hex digits (%s: cipher key%s), or ike: {psk: ...}", where, 2*n, tu.Algorithm, map[bool]string{true: " with its 4-byte salt", false: " then HMAC-SHA-256 key"}[tu.Algorithm.AEAD()])
		default:
			tu.KeyAB, _ = topo.ReadKey(s.Keys.A, dir, n, where+": keys: a", ps)
			tu.KeyBA, _ = topo.ReadKey(s.Keys.B, dir, n, where+": keys: b", ps)
			if s.NATT {
				ps.Errorf(s.Pos, "%s: nat-t with static keys: the receiving end needs an open UDP encapsulation socket, which only a running IKE daemon holds; use ike:", where)
			}
		}
		if s.Verify != nil {
			resolveVerify(t, tu, s.Verify, where, ps)
		}
		if ok {
			out = append(out, tu)
		}
	}
	return out
}

func resolveVerify(t *topo.Topology, tu *Tunnel, v *VerifySpec, where string, ps topo.Reporter) {
	node, addr, _ := strings.Cut(v.From, ":")
	if t.Node(node) == nil {
		ps.Errorf(v.Pos, "%s: verify: from %q: NODE or NODE:ADDRESS, a node of the lab", where, v.From)
		return
	}
	tu.VerifyNode = node
	if addr != "" {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			ps.Errorf(v.Pos, "%s: verify: from %q: %q is not an address", where, v.From, addr)
			return
		}
		tu.VerifySrc = a
	}
	a, err := netip.ParseAddr(v.To)
	if err != nil {
		ps.Errorf(v.Pos, "%s: verify: to %q: an address behind the tunnel's second endpoint", where, v.To)
		return
	}
	tu.VerifyDst = a
}

// AddInterfaces implements topo.InterfacesHook: a node gets the xfrm
// interfaces of its route-based tunnels, before its interfaces are read (so
// that it can give them addresses and an MTU).
func (Feature) AddInterfaces(t *topo.Topology, n *topo.Node, ps topo.Reporter) {
	for _, tu := range Tunnels(t) {
		self, _, ok := tu.End(n.Name)
		if !ok || tu.Mode != xfrm.RouteBased {
			continue
		}
		if other := n.Interface(self.Interface); other != nil {
			ps.Errorf(tu.Pos, "tunnel %q: node %q already has an interface %q; give this tunnel's end another interface:", tu.Name, n.Name, self.Interface)
			continue
		}
		n.Interfaces = append(n.Interfaces, &topo.Interface{Name: self.Interface, Pos: tu.Pos, Type: TypeXfrm, Owner: Name, Ext: topo.Ext{Name: tu}})
	}
}

// CheckTopology implements topo.TopologyHook: once the nodes' addresses are
// known, each end's outer address must be one of its node's.
func (Feature) CheckTopology(t *topo.Topology, ps topo.Reporter) {
	for _, tu := range Tunnels(t) {
		for _, e := range []TunnelEnd{tu.A, tu.B} {
			n := t.Node(e.Node)
			found := false
			for _, i := range n.Interfaces {
				for _, p := range i.Addresses {
					if p.Addr() == e.Local {
						found = true
						if i.Type == TypeXfrm {
							ps.Errorf(tu.Pos, "tunnel %q: %s is on %s:%s, a tunnel interface: the outer address must be on the underlay", tu.Name, e.Local, n.Name, i.Name)
						}
					}
				}
			}
			if !found {
				ps.Errorf(tu.Pos, "tunnel %q: local %s is not an address of node %q", tu.Name, e.Local, n.Name)
			}
		}
	}
}

// Overlays implements feature.OverlayHook: each tunnel, between its two
// nodes.
func (Feature) Overlays(t *topo.Topology) []feature.Overlay {
	var out []feature.Overlay
	for _, tu := range Tunnels(t) {
		keying := "IKEv2"
		if tu.Static() {
			keying = "static keys"
		}
		out = append(out, feature.Overlay{Name: tu.Name, Kind: Name, A: tu.A.Node, B: tu.B.Node,
			Label: fmt.Sprintf("IPsec %s (%s), %s ↔ %s", tu.Algorithm, keying, tu.A.Local, tu.B.Local)})
	}
	return out
}
