// Package vlan is the VLAN subinterface feature: 802.1Q and 802.1ad (QinQ)
// subinterfaces declared under a node's interfaces (eth1.100, or parent:,
// vlan:, vlan-protocol:), stacked on link ends, on each other, or on a
// MACsec device; the ExpressRoute peering labels on them and the seeds'
// rules (one tag per parent, one VLAN per peering per circuit); their
// devices at deploy, their kernel features, and what inspect says of them.
package vlan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/erlab-dev/erlab/lab/topo"
)

// Type is a VLAN subinterface.
const Type topo.InterfaceType = "vlan"

// Protocol is the EtherType of a VLAN tag.
type Protocol string

// VLAN tag protocols. ExpressRoute Direct QinQ uses 802.1Q for both tags;
// provider networks use 802.1ad for the outer (S) tag.
const (
	Dot1Q  Protocol = "802.1Q"  // EtherType 0x8100
	Dot1ad Protocol = "802.1ad" // EtherType 0x88A8
)

// ParseProtocol reads a tag protocol as topologies write it.
func ParseProtocol(s string) (Protocol, bool) {
	switch strings.ToLower(s) {
	case "802.1q", "0x8100", "dot1q":
		return Dot1Q, true
	case "802.1ad", "0x88a8", "qinq":
		return Dot1ad, true
	}
	return "", false
}

// TagLen is what one 802.1Q or 802.1ad tag adds to a frame.
const TagLen = 4

// Tag is a subinterface's VLAN: its ID and tag protocol, and the
// ExpressRoute peering it carries, if labelled.
type Tag struct {
	ID       int      `json:"id"`
	Protocol Protocol `json:"protocol"`
	Peering  string   `json:"peering,omitempty"` // private or microsoft
}

// Name is the feature's name in Ext and in messages.
const Name = "vlan"

// Of returns a subinterface's tag, nil for any other interface.
func Of(i *topo.Interface) *Tag {
	t, _ := i.Ext[Name].(*Tag)
	return t
}

// Feature is the VLAN subinterface feature.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// Keys implements topo.KeysHook: what an interface entry may say of its
// VLAN.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeInterface, Name: "parent", Spec: ""},
		{Scope: topo.ScopeInterface, Name: "vlan", Spec: 0},
		{Scope: topo.ScopeInterface, Name: "vlan-protocol", Spec: ""},
		// peering labels a VLAN as an ExpressRoute peering of the circuit
		// its parent carries: one VLAN per peering per circuit.
		{Scope: topo.ScopeInterface, Name: "peering", Spec: ""},
	}
}

// ClaimInterface implements topo.ClaimHook: an interface with parent: or
// vlan:, or named PARENT.ID, is a VLAN subinterface.
func (Feature) ClaimInterface(n *topo.Node, name string, at topo.Pos, spec *topo.InterfaceSpec, r topo.Reporter) (*topo.Interface, bool) {
	parentKey, _, hasParent := topo.SpecOf[string](spec.Specs, "parent")
	id, idSpec, hasID := topo.SpecOf[int](spec.Specs, "vlan")
	if !hasParent && !hasID && !strings.Contains(name, ".") {
		return nil, false
	}
	where := fmt.Sprintf("node %q: interface %q", n.Name, name)
	parent, idText := "", ""
	if i := strings.LastIndex(name, "."); i > 0 {
		parent, idText = name[:i], name[i+1:]
	}
	if hasParent {
		parent = parentKey
	}
	if parent == "" {
		r.Errorf(at, "%s: a VLAN subinterface needs parent: (or a name such as eth1.100)", where)
		return nil, true
	}
	tag := &Tag{Protocol: Dot1Q}
	idPos := at
	switch {
	case hasID:
		tag.ID, idPos = id, idSpec.Pos
	case idText != "":
		v, err := strconv.Atoi(idText)
		if err != nil {
			r.Errorf(at, "%s: the VLAN ID cannot be read from the name; give vlan: ID", where)
			return nil, true
		}
		tag.ID = v
	default:
		r.Errorf(at, "%s: a VLAN subinterface needs vlan: ID", where)
		return nil, true
	}
	if tag.ID < 1 || tag.ID > 4094 {
		r.Errorf(idPos, "%s: VLAN ID %d is out of range (1 to 4094; 0 and 4095 are reserved by 802.1Q)", where, tag.ID)
		return nil, true
	}
	if p, s, ok := topo.SpecOf[string](spec.Specs, "vlan-protocol"); ok {
		proto, ok := ParseProtocol(p)
		if !ok {
			r.Errorf(s.Pos, "%s: vlan-protocol %q: expected 802.1Q (0x8100) or 802.1ad (0x88A8)", where, p)
			return nil, true
		}
		tag.Protocol = proto
	}
	return &topo.Interface{Name: name, Type: Type, Parent: parent, Ext: topo.Ext{Name: tag}}, true
}

// CheckInterface implements topo.InterfaceHook: the VLAN keys belong to
// VLAN subinterfaces only, and a peering label is one of two.
func (Feature) CheckInterface(n *topo.Node, i *topo.Interface, r topo.Reporter) {
	where := fmt.Sprintf("node %q: interface %q", n.Name, i.Name)
	_, _, hasParent := topo.SpecOf[string](i.Specs, "parent")
	_, _, hasID := topo.SpecOf[int](i.Specs, "vlan")
	if i.Owner != Name && (hasParent || hasID) {
		if i.Type == topo.TypeVeth {
			r.Errorf(i.Pos, "%s: ends a link, so it cannot also be a VLAN subinterface", where)
		} else {
			r.Errorf(i.Pos, "%s: is the %s device of a link, on %s, so it cannot also be a VLAN subinterface", where, i.Type, i.Parent)
		}
	}
	if p, s, ok := topo.SpecOf[string](i.Specs, "peering"); ok {
		tag := Of(i)
		switch {
		case p != "private" && p != "microsoft":
			r.Errorf(s.Pos, "%s: peering %q: private or microsoft", where, p)
		case tag == nil:
			r.Errorf(s.Pos, "%s: peering: only a VLAN subinterface carries a peering", where)
		default:
			tag.Peering = p
		}
	}
}

// CheckNode implements topo.NodeHook: the seeds' rules. A VLAN ID (of one
// EtherType) is unique on its parent — the kernel refuses it twice, and on
// a Dot1Q port it would put two peerings on one C-tag; and a circuit (what
// a parent carries: a Dot1Q port, or an S-tag of a QinQ port) has one VLAN
// per peering.
func (Feature) CheckNode(_ *topo.Topology, n *topo.Node, r topo.Reporter) {
	type key struct {
		parent string
		id     int
		proto  Protocol
	}
	tags := map[key]string{}
	for _, i := range n.Interfaces {
		t := Of(i)
		if t == nil {
			continue
		}
		k := key{i.Parent, t.ID, t.Protocol}
		if other, dup := tags[k]; dup {
			r.Errorf(i.Pos, "node %q: interface %q: VLAN %d (%s) on %s is already %s", n.Name, i.Name, t.ID, t.Protocol, i.Parent, other)
			continue
		}
		tags[k] = i.Name
	}
	type peering struct{ parent, name string }
	peerings := map[peering]*topo.Interface{}
	for _, i := range n.Interfaces {
		t := Of(i)
		if t == nil || t.Peering == "" {
			continue
		}
		k := peering{i.Parent, t.Peering}
		if other, dup := peerings[k]; dup {
			r.Errorf(i.Pos, "node %q: interface %q: the circuit on %s already has its %s peering on VLAN %d (%s); one VLAN per peering per circuit",
				n.Name, i.Name, i.Parent, t.Peering, Of(other).ID, other.Name)
			continue
		}
		peerings[k] = i
	}
}

// Overhead implements topo.OverheadHook. A tag on a port adds nothing:
// Linux keeps tags outside the MTU (a VLAN's MTU may equal its parent's;
// veth carries the outer tag as metadata and accepts one more in the
// frame). A tag on a device that carries tags as payload (MACsec encrypts
// them) adds its 4 bytes: the kernel holds a VLAN on a MACsec device to 4
// bytes less than the device. Measured in the microVM: a don't-fragment
// 1500-byte ping crosses QinQ over MACsec with the port at 1540 and MACsec
// at 1508, and not at 1536.
func (Feature) Overhead(n *topo.Node, i *topo.Interface) (int, string, bool) {
	t := Of(i)
	if t == nil {
		return 0, "", false
	}
	if topo.CarriesTagsAsPayload(n, i) {
		return TagLen, string(t.Protocol) + " tag", true
	}
	return 0, "", true
}
