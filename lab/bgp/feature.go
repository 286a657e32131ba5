// Package bgp is the BGP routing feature: a node's bgp: block, run by
// erlab's routing agent (package agent beside it) — an embedded GoBGP v4
// speaker with BFD whose best paths go into the node's kernel. It holds the
// model and its ExpressRoute rules, the agent's start at deploy, the AGENT
// table of inspect, and the queries erlab bgp makes (sessions, routes).
package bgp

import (
	"github.com/erlab-dev/erlab/lab/topo"
)

// Name is the feature's name.
const Name = "bgp"

// Of returns a node's BGP configuration, nil when it speaks no BGP.
func Of(n *topo.Node) *Config { c, _ := n.Ext[Name].(*Config); return c }

// Feature is the BGP routing feature.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// Keys implements topo.KeysHook.
func (Feature) Keys() []topo.Key {
	return append([]topo.Key{{Scope: topo.ScopeNode, Name: "bgp", Spec: (*Spec)(nil)}}, actionKeys()...)
}

// CheckNode implements topo.NodeHook: the bgp: block, once the node's
// subnets are known (a neighbour given by interface: takes the other
// address of its /30).
func (Feature) CheckNode(_ *topo.Topology, n *topo.Node, r topo.Reporter) {
	spec, s, ok := topo.SpecOf[*Spec](n.Specs, "bgp")
	if !ok || spec == nil {
		return
	}
	if n.Switch {
		r.Errorf(s.Key, "node %q: bgp: a %s node is a layer-2 switch and speaks no BGP", n.Name, n.Kind)
		return
	}
	if c := resolve(n, spec, r); c != nil {
		n.Ext[Name] = c
	}
}

// CheckTopology implements topo.TopologyHook: once every node's sessions
// are known, one end of each session between two erlab routers is made
// passive (see passiveRule).
func (Feature) CheckTopology(t *topo.Topology, _ topo.Reporter) { passiveRule(t) }
