package ike

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/topo"
)

// EstablishTimeout bounds how long deploy waits for an IKE tunnel.
const EstablishTimeout = 60 * time.Second

// startStep is the step that starts a node's charon.
func startStep(node string) string { return "ike/start/" + node }

// Steps implements feature.StepsHook: a charon in each node with IKE
// tunnel ends, once the node's routes are in (it must reach the peer's
// outer address); then each tunnel waits, at its initiator, until its
// CHILD SA is installed.
func (Feature) Steps(d feature.Deployment) []feature.Step {
	t := d.Topology()
	var out []feature.Step
	for _, n := range t.Nodes {
		if len(NodeConns(t, n.Name, "", "").Conns) == 0 {
			continue
		}
		node := n.Name
		out = append(out, feature.Step{ID: startStep(node), Group: "Starting IKE (strongSwan)", Node: node,
			After: []string{feature.RoutesStep(node)},
			Run: func(ctx context.Context) error {
				rn := d.Node(node)
				if err := rn.MakeDir(); err != nil {
					return err
				}
				in := NodeConns(t, node, rn.NetNS, rn.Dir)
				return rn.Exec("charon-systemd (vici load-shared, load-conn)", func() error {
					if err := Start(ctx, in); err != nil {
						return fmt.Errorf("node %s: %w", node, err)
					}
					return nil
				})
			}})
	}
	for _, tu := range ipsec.Tunnels(t) {
		if Of(t, tu) == nil {
			continue
		}
		// The wait comes after both nodes' processes have started: the
		// ends of a tunnel over routed paths (IPsec over ExpressRoute)
		// reach each other only once the routers' agents have converged,
		// and those start after a node's exec step, which otherwise waits
		// for every step of the node.
		out = append(out, feature.Step{ID: "ike/wait/" + tu.Name, Group: "Waiting for IKE to establish tunnels", Node: tu.A.Node,
			After: []string{startStep(tu.A.Node), startStep(tu.B.Node), feature.ExecStep(tu.A.Node), feature.ExecStep(tu.B.Node)},
			Run: func(ctx context.Context) error {
				rn := d.Node(tu.A.Node) // the initiator
				return rn.Wait("IKE tunnel "+tu.Name+" established", func() error {
					return WaitEstablished(ctx, NodeConns(t, tu.A.Node, rn.NetNS, rn.Dir), tu.Name, EstablishTimeout)
				})
			}})
	}
	return out
}

// State implements feature.StateHook: the node's IKE connections, without
// their pre-shared keys.
func (Feature) State(t *topo.Topology, node string) any {
	in := NodeConns(t, node, "", "")
	if len(in.Conns) == 0 {
		return nil
	}
	for i := range in.Conns {
		in.Conns[i].PSK = nil
	}
	return in.Conns
}

// conns is a deployed node's charon, as its state records it.
func conns(l feature.Lab, node string) (Node, bool) {
	var cs []Conn
	if !l.State(Name, node, &cs) {
		return Node{}, false
	}
	ns, err := l.NetNS(node)
	if err != nil {
		return Node{}, false
	}
	return Node{NetNS: ns, Dir: l.NodeDir(node), Conns: cs}, true
}

// TunnelInfo is one end of an IKE tunnel as inspect shows it.
type TunnelInfo struct {
	Node string `json:"node"`
	ConnInfo
	Error string `json:"error,omitempty"`
}

// Inspect implements feature.InspectHook: the IKE table — IKE and CHILD
// state, negotiated transforms, SPIs and counters, as strongSwan reports
// them.
func (Feature) Inspect(_ context.Context, l feature.Lab) (*feature.Section, error) {
	sec := &feature.Section{Header: []string{"IKE", "NODE", "ROLE", "IKE SA", "CHILD SA", "ENCRYPTION", "OUTER", "SPI OUT/IN", "PKTS OUT/IN"}}
	var infos []TunnelInfo
	for _, node := range l.Nodes() {
		in, ok := conns(l, node)
		if !ok {
			continue
		}
		status, err := Status(in)
		for _, c := range in.Conns {
			ti := TunnelInfo{Node: node, ConnInfo: ConnInfo{Name: c.Name}}
			if err != nil {
				ti.Error = err.Error()
			}
			for _, ci := range status {
				if ci.Name == c.Name {
					ti.ConnInfo = ci
				}
			}
			role := "responder"
			if c.Initiator {
				role = "initiator"
			}
			enc, outer, spis, pkts := "-", c.Local.String()+" → "+c.Remote.String(), "-", "-"
			ikeState, childState := orDash(ti.IKEState), orDash(ti.ChildState)
			if ikeSA, child := ti.Active(); child != nil {
				enc, spis, pkts = child.Encryption, fmt.Sprintf("%#x/%#x", child.SPIOut, child.SPIIn), fmt.Sprintf("%d/%d", child.PacketsOut, child.PacketsIn)
				if ikeSA != nil {
					outer = ikeSA.Local.Addr().String() + " → " + ikeSA.Remote.Addr().String()
				}
			}
			if ti.Error != "" {
				ikeState = "BROKEN: " + ti.Error
			} else if len(ti.IKE) == 0 {
				ikeState = "no SA"
			}
			infos = append(infos, ti)
			sec.Rows = append(sec.Rows, []string{c.Name, node, role, ikeState, childState, enc, outer, spis, pkts})
		}
	}
	if len(infos) == 0 {
		return nil, nil
	}
	sec.Data = infos
	return sec, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// EncryptionTargets implements feature.EncryptionHook: the IKE tunnels.
func (Feature) EncryptionTargets(t *topo.Topology) []string {
	var out []string
	for _, tu := range ipsec.Tunnels(t) {
		if Of(t, tu) != nil {
			out = append(out, tu.Name)
		}
	}
	return out
}

// VerifyEncryption implements feature.EncryptionHook: each IKE tunnel (or
// each named), checked as a static one is, with the counters of the CHILD
// SA strongSwan has in use.
func (Feature) VerifyEncryption(ctx context.Context, l feature.Lab, only []string) ([]feature.EncryptionCheck, error) {
	t := l.Topology()
	var out []feature.EncryptionCheck
	for _, tu := range ipsec.Tunnels(t) {
		if Of(t, tu) == nil || len(only) > 0 && !slices.Contains(only, tu.Name) {
			continue
		}
		c, err := ipsec.VerifyTunnel(ctx, l, tu, func(context.Context) (ipsec.Counters, error) { return childCounters(l, tu) })
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// childCounters reads the CHILD SA in use at both ends: SPIs are
// negotiated, so strongSwan is asked.
func childCounters(l feature.Lab, tu *ipsec.Tunnel) (ipsec.Counters, error) {
	var c ipsec.Counters
	for k, node := range []string{tu.A.Node, tu.B.Node} {
		in, ok := conns(l, node)
		if !ok {
			return c, fmt.Errorf("tunnel %s on %s: no IKE state recorded", tu.Name, node)
		}
		status, err := Status(in)
		if err != nil {
			return c, fmt.Errorf("tunnel %s on %s: %w", tu.Name, node, err)
		}
		var child *ChildInfo
		for _, ci := range status {
			if ci.Name == tu.Name {
				_, child = ci.Active()
			}
		}
		if child == nil {
			return c, fmt.Errorf("tunnel %s on %s: no CHILD SA (IKE not established)", tu.Name, node)
		}
		if k == 0 {
			c.SPI, c.Out = child.SPIOut, child.PacketsOut
		} else {
			c.In = child.PacketsIn
		}
	}
	return c, nil
}

// tunnelOf finds an IKE tunnel of a deployed lab, and says what there is
// when it is not one.
func tunnelOf(t *topo.Topology, name string) (*ipsec.Tunnel, error) {
	tu := ipsec.Find(t, name)
	if tu == nil {
		var names []string
		for _, x := range ipsec.Tunnels(t) {
			names = append(names, x.Name)
		}
		return nil, &topo.UnknownError{Lab: t.Name, What: "tunnel", Name: name, Known: names}
	}
	if Of(t, tu) == nil {
		return nil, fmt.Errorf("tunnel %s has static keys: there is nothing to rekey (give it ike: to have strongSwan key it)", name)
	}
	return tu, nil
}
