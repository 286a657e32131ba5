// Package bridgevlan is the bridge VLAN feature: a bridge node made
// VLAN-aware — an 802.1Q switch, or an 802.1ad provider bridge that pushes
// each customer port's S-tag — with its ports' access and trunk VLANs:
// keys, checks, kernel features and deploy steps.
package bridgevlan

import (
	"fmt"

	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/lab/vlan"
)

// Name is the feature's name.
const Name = "bridge-vlan"

// BridgeSpec is a bridge node's bridge: block: which tag its VLANs use.
type BridgeSpec struct {
	Pos          topo.Pos
	VLANProtocol string `yaml:"vlan-protocol"` // 802.1Q (a switch) or 802.1ad (a provider bridge)
}

// Bridge is a switch node's VLAN-aware bridge: its tag protocol.
type Bridge struct {
	Protocol vlan.Protocol `json:"protocol"`
}

// Port is a bridge port's VLANs: one untagged (access, or a customer port
// on a provider bridge), or several tagged (trunk).
type Port struct {
	Access int   `json:"access,omitempty"`
	Trunk  []int `json:"trunk,omitempty"`
}

// OfNode returns a switch node's VLAN-aware bridge, nil when it has no
// VLANs.
func OfNode(n *topo.Node) *Bridge { b, _ := n.Ext[Name].(*Bridge); return b }

// OfPort returns a port's VLANs, nil when it has none.
func OfPort(i *topo.Interface) *Port { p, _ := i.Ext[Name].(*Port); return p }

// Feature is the bridge VLAN feature.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// Keys implements topo.KeysHook.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeNode, Name: "bridge", Spec: (*BridgeSpec)(nil)},
		{Scope: topo.ScopeInterface, Name: "access", Spec: 0},
		{Scope: topo.ScopeInterface, Name: "trunk", Spec: []int(nil)},
	}
}

// CheckInterface implements topo.InterfaceHook: a port's VLANs.
func (Feature) CheckInterface(n *topo.Node, i *topo.Interface, r topo.Reporter) {
	where := fmt.Sprintf("node %q: interface %q", n.Name, i.Name)
	access, as, hasAccess := topo.SpecOf[int](i.Specs, "access")
	trunk, ts, hasTrunk := topo.SpecOf[[]int](i.Specs, "trunk")
	if !hasAccess && !hasTrunk {
		return
	}
	if !n.Switch || (i.Type != topo.TypeVeth && i.Type != topo.TypeHostVeth) {
		r.Errorf(i.Pos, "%s: access and trunk are for the ports of a bridge node", where)
		return
	}
	p := &Port{}
	if hasAccess {
		if access < 1 || access > 4094 {
			r.Errorf(as.Pos, "%s: access VLAN %d is out of range (1 to 4094)", where, access)
		}
		p.Access = access
	}
	for _, v := range trunk {
		if v < 1 || v > 4094 {
			r.Errorf(ts.Pos, "%s: trunk VLAN %d is out of range (1 to 4094)", where, v)
		}
	}
	p.Trunk = trunk
	if hasAccess && hasTrunk && len(trunk) > 0 {
		r.Errorf(as.Pos, "%s: a port is access (one untagged VLAN) or trunk (tagged VLANs), not both", where)
	}
	i.Ext[Name] = p
}

// CheckNode implements topo.NodeHook: a switch with VLAN ports is
// VLAN-aware, with the tag its bridge: block names (802.1Q by default).
func (Feature) CheckNode(_ *topo.Topology, n *topo.Node, r topo.Reporter) {
	spec, s, given := topo.SpecOf[*BridgeSpec](n.Specs, "bridge")
	if given && !n.Switch {
		r.Errorf(s.Key, "node %q: bridge: is for bridge nodes (a %s node has no bridge)", n.Name, n.Kind)
		return
	}
	b := &Bridge{Protocol: vlan.Dot1Q}
	if given && spec != nil && spec.VLANProtocol != "" {
		switch proto, ok := vlan.ParseProtocol(spec.VLANProtocol); {
		case !ok:
			r.Errorf(spec.Pos, "node %q: bridge: vlan-protocol %q: 802.1Q (a VLAN switch) or 802.1ad (a provider bridge)", n.Name, spec.VLANProtocol)
		default:
			b.Protocol = proto
		}
	}
	for _, i := range n.Interfaces {
		if OfPort(i) != nil {
			n.Ext[Name] = b
			return
		}
	}
}
