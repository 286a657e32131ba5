package netem

import (
	"context"
	"fmt"
	"strconv"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
)

// Info is one impaired interface as inspect shows it: what its root qdisc
// holds, read back from the kernel (so an impairment changed on the live
// lab shows as it is, not as the topology says).
type Info struct {
	Node      string `json:"node"`
	Interface string `json:"interface"`
	Qdisc     string `json:"qdisc"` // netem or tbf
	Params
}

// Inspect implements feature.InspectHook: every interface of the lab with
// a netem or tbf root qdisc.
func (Feature) Inspect(_ context.Context, l feature.Lab) (*feature.Section, error) {
	sec := &feature.Section{Header: []string{"IMPAIRED", "QDISC", "DELAY", "JITTER", "LOSS", "CORRUPT", "DUPLICATE", "REORDER", "RATE"}}
	var infos []Info
	for _, node := range l.Nodes() {
		ns, err := l.NetNS(node)
		if err != nil {
			continue // not there: the engine's table says so
		}
		links, err := l.Links(node)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", node, err)
		}
		found, err := readNode(ns, links)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", node, err)
		}
		for _, in := range found {
			in.Node = node
			infos = append(infos, in)
			sec.Rows = append(sec.Rows, []string{node + ":" + in.Interface, in.Qdisc, dur(in.Delay.String(), in.Delay > 0), dur(in.Jitter.String(), in.Jitter > 0),
				pct(in.Loss), pct(in.Corrupt), pct(in.Duplicate), pct(in.Reorder), dur(FormatRate(in.Rate), in.Rate > 0)})
		}
	}
	if len(infos) == 0 {
		return nil, nil
	}
	sec.Data = infos
	return sec, nil
}

// readNode reads the impairments of a namespace's interfaces.
func readNode(ns string, links []netlink.Link) ([]Info, error) {
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	// One dump of every qdisc of the namespace.
	qs, err := kernel.Dump(func() ([]netlink.Qdisc, error) { return h.QdiscList(nil) })
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, lk := range links {
		if p, qdisc := fromQdiscs(qs, lk.Attrs().Index); qdisc != "" {
			out = append(out, Info{Interface: lk.Attrs().Name, Qdisc: qdisc, Params: p})
		}
	}
	return out, nil
}
func dur(s string, set bool) string {
	if !set {
		return "-"
	}
	return s
}

func pct(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "%"
}
