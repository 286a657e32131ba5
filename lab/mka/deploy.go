package mka

import (
	"context"
	"fmt"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/topo"
)

// DefersInterface implements feature.DeferHook: an MKA link's MACsec device
// and everything above it are its keeper's to make and configure, once
// wpa_supplicant has adopted the device.
func (Feature) DefersInterface(n *topo.Node, i *topo.Interface) bool { return mkaOwned(n, i) }

// DefersRoute implements feature.DeferHook: routes through those too.
func (Feature) DefersRoute(n *topo.Node, r topo.Route) bool { return mkaRoute(n, r) }

// devices returns the MKA devices of a node: its ends of MKA links.
func devices(n *topo.Node) []*topo.Interface {
	var out []*topo.Interface
	for _, i := range n.Interfaces {
		if m := macsec.OfDevice(i); m != nil && !m.Static() {
			out = append(out, i)
		}
	}
	return out
}

// Steps implements feature.StepsHook: each end's keeper starts once its
// port is configured; each end waits until it is secured, which needs the
// other end's keeper too.
func (Feature) Steps(d feature.Deployment) []feature.Step {
	var out []feature.Step
	startID := func(node, port string) string { return "mka/start/" + node + "/" + port }
	for _, spec := range d.Topology().Nodes {
		for _, dev := range devices(spec) {
			node, port := spec.Name, dev.Parent
			var peer macsec.End
			for _, e := range macsec.Ends(dev.Link) {
				if e.Node != node || e.Lower != port {
					peer = e
				}
			}
			out = append(out,
				feature.Step{ID: startID(node, port), Group: "Starting MKA (wpa_supplicant)", Node: node,
					After: []string{feature.InterfacesStep(node)},
					Run: func(context.Context) error {
						rn := d.Node(node)
						return rn.Exec(fmt.Sprintf("erlab mka keeper for %s (wpa_supplicant -D macsec_linux -i %s)", port, port), func() error {
							if err := startMKA(rn, dev); err != nil {
								return fmt.Errorf("node %s: MKA on %s: %w", node, port, err)
							}
							return nil
						})
					}},
				feature.Step{ID: "mka/wait/" + node + "/" + port, Group: "Waiting for MKA to secure links", Node: node,
					After: []string{startID(node, port), startID(peer.Node, peer.Lower)},
					Run: func(ctx context.Context) error {
						rn := d.Node(node)
						return rn.Wait("MKA on "+port+" secured", func() error {
							if err := waitMKA(ctx, rn, dev); err != nil {
								return fmt.Errorf("node %s: %w", node, err)
							}
							return nil
						})
					}},
			)
		}
	}
	return out
}

// state is what the feature records of a node: its MKA ends.
type state struct {
	Ends []stateEnd `json:"ends"`
}

type stateEnd struct {
	Port   string `json:"port"`   // the device MACsec sits on
	Device string `json:"device"` // the MACsec device
}

// State implements feature.StateHook.
func (Feature) State(t *topo.Topology, node string) any {
	var s state
	for _, dev := range devices(t.Node(node)) {
		s.Ends = append(s.Ends, stateEnd{Port: dev.Parent, Device: dev.Name})
	}
	if len(s.Ends) == 0 {
		return nil
	}
	return s
}

// Session is one end's MKA session, as inspect shows it.
type Session struct {
	Node   string `json:"node"`
	Port   string `json:"port"`
	Device string `json:"device"`
	Info
}

// Inspect implements feature.InspectHook: the MKA table — CKN, key server or
// member, live peers, restarts, and SECURED or why not.
func (Feature) Inspect(_ context.Context, l feature.Lab) (*feature.Section, error) {
	sec := &feature.Section{Header: []string{"MKA", "CKN", "ROLE", "PEERS", "RESTARTS", "STATE"}}
	var sessions []Session
	for _, node := range l.Nodes() {
		var s state
		if !l.State(Name, node, &s) {
			continue
		}
		for _, e := range s.Ends {
			mi, err := mkaState(l.NodeDir(node), e.Port)
			if l.Stopped(node) {
				mi, err = &Info{Problem: "node stopped"}, nil
			}
			if err != nil {
				mi = &Info{Problem: "no keeper: " + err.Error()}
			}
			sessions = append(sessions, Session{Node: node, Port: e.Port, Device: e.Device, Info: *mi})
			st, role := "SECURED", "member"
			if !mi.Secured {
				st = "NOT SECURED: " + mi.Problem
			}
			if mi.KeyServer {
				role = "key server"
			}
			sec.Rows = append(sec.Rows, []string{node + ":" + e.Device, mi.CKN, role, fmt.Sprint(mi.LivePeers), fmt.Sprint(mi.Restarts), st})
		}
	}
	if len(sessions) == 0 {
		return nil, nil
	}
	sec.Data = sessions
	return sec, nil
}
