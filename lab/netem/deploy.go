package netem

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// The kernel features impairments need: netem, or, for a rate alone, tbf
// (which minimal kernels have where they lack netem: the host erlab is
// built on has tbf and htb, not netem).
var (
	KernelNetem = &kernel.Feature{Name: "netem", Option: "CONFIG_NET_SCH_NETEM", Probe: func(h *netlink.Handle) error {
		return probeQdisc(h, func(idx int) netlink.Qdisc {
			return netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}, netlink.NetemQdiscAttrs{Latency: 1000})
		})
	}}
	KernelTBF = &kernel.Feature{Name: "tbf (rate limits)", Option: "CONFIG_NET_SCH_TBF", Probe: func(h *netlink.Handle) error {
		return probeQdisc(h, func(idx int) netlink.Qdisc { return tbf(idx, 10_000_000) })
	}}
)

func probeQdisc(h *netlink.Handle, q func(ifindex int) netlink.Qdisc) error {
	parent, err := kernel.ProbeParent(h)
	if err != nil {
		return err
	}
	return h.QdiscAdd(q(parent.Attrs().Index))
}

// KernelFeatures implements feature.KernelHook.
func (Feature) KernelFeatures() []*kernel.Feature { return []*kernel.Feature{KernelNetem, KernelTBF} }

// Needs implements feature.KernelHook: netem for each impaired interface,
// tbf for one with a rate alone.
func (Feature) Needs(t *topo.Topology) []kernel.Need {
	where := map[*kernel.Feature][]string{}
	for _, n := range t.Nodes {
		for _, i := range n.Interfaces {
			if p := Of(i); p != nil {
				f := KernelNetem
				if p.RateOnly() {
					f = KernelTBF
				}
				where[f] = append(where[f], n.Name+":"+i.Name)
			}
		}
	}
	return kernel.Needs(where, KernelNetem, KernelTBF)
}

// Steps implements feature.StepsHook: a node's impairments once its
// interfaces are up.
func (Feature) Steps(d feature.Deployment) []feature.Step {
	var out []feature.Step
	for _, n := range d.Topology().Nodes {
		var impaired []*topo.Interface
		for _, i := range n.Interfaces {
			if Of(i) != nil {
				impaired = append(impaired, i)
			}
		}
		if len(impaired) == 0 {
			continue
		}
		node := n.Name
		out = append(out, feature.Step{ID: "netem/" + node, Group: "Impairing links", Node: node,
			After: []string{feature.InterfacesStep(node)},
			Run: func(context.Context) error {
				for _, i := range impaired {
					if err := Apply(d.Node(node), i.Name, *Of(i)); err != nil {
						return fmt.Errorf("node %s: %w", node, err)
					}
				}
				return nil
			}})
	}
	return out
}

// Apply puts an impairment on an interface's egress, replacing what is
// there: tc qdisc replace dev IFACE root netem delay D JITTER loss L% ...
// (or tbf rate R burst B latency 50ms, for a rate alone). A zero
// impairment removes it: tc qdisc del dev IFACE root.
func Apply(n *nodes.Node, iface string, p Params) error {
	return n.Netlink(Command(iface, p), func(h *netlink.Handle) error { return apply(h, iface, p) })
}

// Command is what Apply does, as tc would.
func Command(iface string, p Params) string {
	switch {
	case p.Zero():
		return "tc qdisc del dev " + iface + " root"
	case p.RateOnly():
		return fmt.Sprintf("tc qdisc replace dev %s root tbf rate %s burst %d latency 50ms", iface, FormatRate(p.Rate), burst(p.Rate))
	default:
		return "tc qdisc replace dev " + iface + " root netem " + netemArgs(p)
	}
}

func apply(h *netlink.Handle, iface string, p Params) error {
	link, err := h.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("%s: %w", iface, err)
	}
	if p.Zero() {
		qs, err := kernel.Dump(func() ([]netlink.Qdisc, error) { return h.QdiscList(link) })
		if err != nil {
			return err
		}
		for _, q := range qs {
			if q.Attrs().Parent == netlink.HANDLE_ROOT && (q.Type() == "netem" || q.Type() == "tbf") {
				if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) {
					return fmt.Errorf("clear %s: %w", iface, err)
				}
			}
		}
		return nil
	}
	var q netlink.Qdisc
	f := KernelNetem
	if p.RateOnly() {
		q, f = tbf(link.Attrs().Index, p.Rate), KernelTBF
	} else {
		q = netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}, netlink.NetemQdiscAttrs{
			Latency: uint32(p.Delay / time.Microsecond), Jitter: uint32(p.Jitter / time.Microsecond),
			Loss: float32(p.Loss), CorruptProb: float32(p.Corrupt), Duplicate: float32(p.Duplicate), ReorderProb: float32(p.Reorder),
			Rate64: p.Rate / 8, Limit: limit(p),
		})
	}
	if err := h.QdiscReplace(q); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("impair %s (%s): this kernel has no %s (%s): %w", iface, p, f.Name, f.Option, err)
		}
		return fmt.Errorf("impair %s (%s): %w", iface, p, err)
	}
	return nil
}

// netemArgs is an impairment as tc netem takes it.
func netemArgs(p Params) string {
	var s string
	if p.Delay > 0 {
		s += " delay " + p.Delay.String()
		if p.Jitter > 0 {
			s += " " + p.Jitter.String()
		}
	}
	for _, x := range []struct {
		name string
		v    float64
	}{{"loss", p.Loss}, {"corrupt", p.Corrupt}, {"duplicate", p.Duplicate}, {"reorder", p.Reorder}} {
		if x.v > 0 {
			s += fmt.Sprintf(" %s %g%%", x.name, x.v)
		}
	}
	if p.Rate > 0 {
		s += " rate " + FormatRate(p.Rate)
	}
	return strings.TrimPrefix(s, " ") + fmt.Sprintf(" limit %d", limit(p))
}

// limit is netem's queue, in packets: enough for the delay at the rate
// (or at 1 Gbit/s of full-size frames), or the queue drops what the delay
// holds back and the loss is erlab's, not the impairment's.
func limit(p Params) uint32 {
	rate := float64(p.Rate)
	if rate == 0 {
		rate = 1e9
	}
	pkts := rate / 8 / 1500 * (p.Delay + p.Jitter).Seconds() * 2
	return uint32(max(1000, math.Ceil(pkts)))
}

// burst is tbf's bucket, in bytes: at least one full-size frame and a
// tick's worth of the rate (HZ 250 here: 4 ms), as tc's man page asks.
func burst(rateBits uint64) uint32 {
	return uint32(max(16*1024, rateBits/8/250))
}

// tbf is a token bucket at rate (bits per second) with a 50 ms queue.
func tbf(ifindex int, rateBits uint64) *netlink.Tbf {
	bytes := rateBits / 8
	b := burst(rateBits)
	return &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       bytes,
		Buffer:     netlink.Xmittime(bytes, b),
		Limit:      uint32(bytes/20) + b, // 50 ms of queue, as tc's latency 50ms
	}
}

// fromQdiscs finds an interface's impairment among a dump of qdiscs.
func fromQdiscs(qs []netlink.Qdisc, ifindex int) (Params, string) {
	for _, q := range qs {
		if q.Attrs().Parent != netlink.HANDLE_ROOT || q.Attrs().LinkIndex != ifindex {
			continue
		}
		switch q := q.(type) {
		case *netlink.Netem:
			tick := netlink.TickInUsec()
			pct := func(v uint32) float64 { return math.Round(float64(v)/math.MaxUint32*100*1e4) / 1e4 }
			return Params{
				Delay:  time.Duration(float64(q.Latency)/tick) * time.Microsecond,
				Jitter: time.Duration(float64(q.Jitter)/tick) * time.Microsecond,
				Loss:   pct(q.Loss), Corrupt: pct(q.CorruptProb), Duplicate: pct(q.Duplicate), Reorder: pct(q.ReorderProb),
				Rate: q.Rate64 * 8,
			}, "netem"
		case *netlink.Tbf:
			return Params{Rate: q.Rate * 8}, "tbf"
		}
	}
	return Params{}, ""
}
