package netem

import (
	"context"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
)

// WatchPoll is how often erlab events reads the nodes' impairments: tc
// changes have no notification erlab subscribes to.
const WatchPoll = time.Second

// Watch implements feature.WatchHook: an impairment set on an interface
// (impair, "set", what it is) or taken off it ("cleared"), whoever did it,
// read from the kernel as inspect reads it.
func (Feature) Watch(ctx context.Context, l feature.Lab, w feature.Watcher) error {
	feature.PollNodes(ctx, l, WatchPoll, "cleared", w, func(_ context.Context, node string) []feature.Event {
		ns, err := l.NetNS(node)
		if err != nil {
			return nil
		}
		// Read afresh, not through l.Links: that keeps what an Inspect on
		// this handle read, and a node restarted since has new interfaces.
		h, err := kernel.RouteHandle(ns)
		if err != nil {
			return nil
		}
		links, err := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
		h.Close()
		if err != nil {
			return nil
		}
		infos, err := readNode(ns, links)
		if err != nil {
			return nil
		}
		var out []feature.Event
		for _, in := range infos {
			out = append(out, feature.Event{Node: node, Kind: "impair", Object: in.Interface, State: "set", Detail: in.Qdisc + " " + in.Params.String()})
		}
		return out
	})
	return nil
}
