package nodes

import "github.com/erlab-dev/erlab/lab/topo"

// Router is a namespace that routes: forwarding is always on. With a bgp:
// block (the BGP feature) it also runs erlab's routing agent, as any node
// with one does.
type Router struct{}

// Name implements Kind.
func (Router) Name() string { return "router" }

// Prepare implements Preparer. A router forwards, whatever the defaults
// say.
func (Router) Prepare(n *topo.Node) { n.Forward = true }

// Check implements Kind.
func (Router) Check(n *topo.Node, r topo.Reporter) { refuseContainerFields(n, r) }
