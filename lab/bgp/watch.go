package bgp

import (
	"context"
	"fmt"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
)

// WatchPoll is how often erlab events asks each router for its sessions:
// GoBGP's API has no notification of BFD's state, so sessions and BFD are
// read, and an event may come up to this long after its change.
const WatchPoll = 500 * time.Millisecond

// Watch implements feature.WatchHook: each router's sessions (bgp: their
// state, why one is held down, the prefixes accepted) and their BFD (bfd),
// and a speaker that does not answer (bgp, object "speaker").
func (Feature) Watch(ctx context.Context, l feature.Lab, w feature.Watcher) error {
	t := l.Topology()
	if t == nil {
		return nil
	}
	var routers []string
	for _, n := range t.Nodes {
		if Of(n) != nil {
			routers = append(routers, n.Name)
		}
	}
	if len(routers) == 0 {
		return nil
	}
	feature.Poll(ctx, WatchPoll, "gone", w, func(ctx context.Context) []feature.Event {
		var out []feature.Event
		for _, node := range routers {
			if l.Stopped(node) {
				out = append(out, feature.Event{Node: node, Kind: "bgp", Object: "speaker", State: "stopped", Detail: "the node is stopped"})
				continue
			}
			nbs, err := Neighbors(ctx, l, node)
			if err != nil {
				out = append(out, feature.Event{Node: node, Kind: "bgp", Object: "speaker", State: "unreachable", Detail: err.Error()})
				continue
			}
			out = append(out, feature.Event{Node: node, Kind: "bgp", Object: "speaker", State: "running"})
			for _, nb := range nbs {
				detail := fmt.Sprintf("AS %d, %d accepted", nb.RemoteAS, nb.Accepted)
				if nb.Down != "" {
					detail = fmt.Sprintf("AS %d, held down (%s)", nb.RemoteAS, nb.Down)
				}
				if nb.Description != "" {
					detail += ", " + nb.Description
				}
				out = append(out, feature.Event{Node: node, Kind: "bgp", Object: nb.Address, State: nb.State, Detail: detail,
					Values: map[string]float64{"received": float64(nb.Received), "accepted": float64(nb.Accepted)}})
				if nb.BFD != "" {
					out = append(out, feature.Event{Node: node, Kind: "bfd", Object: nb.Address, State: nb.BFD})
				}
			}
		}
		return out
	})
	return nil
}
