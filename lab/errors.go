package lab

import (
	"fmt"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// UnknownError says that a name given on the command line names nothing
// in a lab (see topo.UnknownError).
type UnknownError = topo.UnknownError

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
			st.Nodes = append(st.Nodes, NodeState{Name: n, Kind: "?", NetNS: ns})
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
