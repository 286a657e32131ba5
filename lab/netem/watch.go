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
func (Feature) Watch(ctx context.Context, l feature.Lab, initial bool, emit func(feature.Event)) error {
	feature.Poll(ctx, WatchPoll, initial, "cleared", emit, func(context.Context) []feature.Event {
		var out []feature.Event
		for _, node := range l.Nodes() {
			if l.Stopped(node) {
				continue
			}
			ns, err := l.NetNS(node)
			if err != nil {
				continue
			}
			h, err := kernel.RouteHandle(ns)
			if err != nil {
				continue
			}
			links, err := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
			h.Close()
			if err != nil {
				continue
			}
			infos, err := readNode(ns, links)
			if err != nil {
				continue
			}
			for _, in := range infos {
				out = append(out, feature.Event{Node: node, Kind: "impair", Object: in.Interface, State: "set", Detail: in.Qdisc + " " + in.Params.String()})
			}
		}
		return out
	})
	return nil
}
