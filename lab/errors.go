package lab

import (
	"fmt"
	"strings"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// UnknownError says that a name given on the command line names nothing
// in a lab, and what it may have meant: a typo never reads as success.
type UnknownError struct {
	Lab   string
	What  string   // "node", "link end (NODE:IFACE)", ...
	Name  string   // what was given
	Known []string // what there is
}

func (e *UnknownError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s has no %s %q", e.Lab, e.What, e.Name)
	if c := topo.Closest(e.Name, e.Known); c != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", c)
	}
	switch {
	case len(e.Known) == 0:
		b.WriteString("; it has none")
	case len(e.Known) <= 12:
		fmt.Fprintf(&b, "; it has: %s", strings.Join(e.Known, ", "))
	default:
		fmt.Fprintf(&b, "; it has %d, such as %s", len(e.Known), strings.Join(e.Known[:8], ", "))
	}
	return b.String()
}

// deployedNode finds a node of a deployed lab — in its state, or, when the
// state is gone, among its namespaces — and says what there is when it is
// not there.
func (o *Options) deployedNode(labName, node string) (*NodeState, error) {
	st, err := o.readState(labName)
	if err != nil {
		st = &State{Name: labName}
		nss, _ := kernel.NetNSList(labNetNSPrefix(labName))
		for _, ns := range nss {
			_, n, _ := splitNetNSName(ns)
			st.Nodes = append(st.Nodes, NodeState{Name: n, NetNS: ns})
		}
		if len(st.Nodes) == 0 {
			return nil, &NotDeployedError{Name: labName}
		}
	}
	var names []string
	for i, n := range st.Nodes {
		if n.Name == node {
			if !kernel.NetNSExists(n.NetNS) {
				return nil, fmt.Errorf("lab %s: node %s has no namespace (%s): the lab is half-built or half-destroyed; destroy it and deploy again", labName, node, n.NetNS)
			}
			return &st.Nodes[i], nil
		}
		names = append(names, n.Name)
	}
	return nil, &UnknownError{Lab: labName, What: "node", Name: node, Known: names}
}
