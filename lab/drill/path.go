package drill

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/probe"
)

// A path expectation is measured, not guessed: while a drill runs, each
// node an expectation names counts, in its forward hook, the packets of
// that flow (to the receiver's address and the flow's UDP port) it
// forwards, out of the named interface or any. The counters are read at
// every step's end, so that a window (a step in effect) has its own count.
//
//	nft add table inet erlab_drill_path
//	nft add chain inet erlab_drill_path fwd '{ type filter hook forward priority -300; }'
//	nft add rule inet erlab_drill_path fwd [oifname IFACE] ip daddr DST udp dport PORT counter

const pathTable = "erlab_drill_path"

// pathRule is one expectation's counter on a node.
type pathRule struct {
	id    int // the expectation's index in the drill
	iface string
	dst   netip.Addr
	port  int
}

func pathTab() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: pathTable}
}

func pathChain(t *nftables.Table) *nftables.Chain {
	prio := nftables.ChainPriority(-300)
	return &nftables.Chain{Name: "fwd", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: &prio}
}

// installPath puts a node's counters in place.
func installPath(netns string, rules []pathRule) error {
	c, done, err := nftIn(netns)
	if err != nil {
		return err
	}
	defer done()
	tab := c.AddTable(pathTab())
	ch := c.AddChain(pathChain(tab))
	for _, r := range rules {
		var ex []expr.Any
		if r.iface != "" {
			name := make([]byte, unix.IFNAMSIZ)
			copy(name, r.iface)
			ex = append(ex, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name})
		}
		proto, off := byte(unix.NFPROTO_IPV4), uint32(16)
		if r.dst.Is6() {
			proto, off = unix.NFPROTO_IPV6, 24
		}
		port := binary.BigEndian.AppendUint16(nil, uint16(r.port))
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(r.dst.BitLen() / 8)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: r.dst.AsSlice()},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
			&expr.Counter{})
		c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: ex, UserData: []byte(strconv.Itoa(r.id))})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("path counters: %w", err)
	}
	return nil
}

// readPath reads a node's counters: packets by expectation index.
func readPath(netns string) (map[int]uint64, error) {
	c, done, err := nftIn(netns)
	if err != nil {
		return nil, err
	}
	defer done()
	tab := pathTab()
	rules, err := c.GetRules(tab, pathChain(tab))
	if err != nil {
		return nil, fmt.Errorf("path counters: %w", err)
	}
	out := map[int]uint64{}
	for _, r := range rules {
		id, err := strconv.Atoi(string(r.UserData))
		if err != nil {
			continue
		}
		for _, e := range r.Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				out[id] = ctr.Packets
			}
		}
	}
	return out, nil
}

// removePath removes a node's counters.
func removePath(netns string) error {
	c, done, err := nftIn(netns)
	if err != nil {
		return err
	}
	defer done()
	c.DelTable(pathTab())
	if err := c.Flush(); err != nil && !isNoEnt(err) {
		return err
	}
	return nil
}

// snapshot is every path counter at one moment of a run.
type snapshot struct {
	at     time.Duration
	counts map[int]uint64
}

// pathCounters are a run's path counters: the nodes that hold them, and
// their readings at each step's end (by step index; -1 is the flows'
// start, len(steps) their end).
type pathCounters struct {
	ns    map[string]string // node → namespace
	snaps map[int]snapshot
	err   error
}

// startPaths installs the counters the drill's path expectations need.
func startPaths(l Lab, d *Drill) (*pathCounters, error) {
	pc := &pathCounters{ns: map[string]string{}, snaps: map[int]snapshot{}}
	byNode := map[string][]pathRule{}
	t := l.Topology()
	for k, e := range d.Expect {
		if e.Path == nil {
			continue
		}
		for i, f := range d.Flows {
			if f.Label != e.Flow {
				continue
			}
			dst, _, err := probe.Target(t, f.To)
			if err != nil {
				return pc, err
			}
			byNode[e.Path.Node] = append(byNode[e.Path.Node], pathRule{id: k, iface: e.Path.Iface, dst: dst, port: FirstPort + i})
		}
	}
	for node, rules := range byNode {
		ns, err := l.NetNS(node)
		if err != nil {
			return pc, err
		}
		pc.ns[node] = ns
		if err := installPath(ns, rules); err != nil {
			return pc, fmt.Errorf("node %s: %w", node, err)
		}
	}
	return pc, nil
}

// take reads every counter, as the reading after step i.
func (pc *pathCounters) take(i int, start time.Time) {
	if len(pc.ns) == 0 {
		return
	}
	s := snapshot{at: time.Since(start), counts: map[int]uint64{}}
	for node, ns := range pc.ns {
		counts, err := readPath(ns)
		if err != nil && pc.err == nil {
			pc.err = fmt.Errorf("node %s: %w", node, err)
		}
		for id, n := range counts {
			s.counts[id] = n
		}
	}
	pc.snaps[i] = s
}

func (pc *pathCounters) remove() {
	for _, ns := range pc.ns {
		removePath(ns)
	}
}

// evaluate checks the path expectations: in the window, the node
// forwarded at least PathShare of the flow's packets that arrived.
func (pc *pathCounters) evaluate(d *Drill, flows []FlowResult) []Check {
	var out []Check
	for k, e := range d.Expect {
		if e.Path == nil {
			continue
		}
		what := "path " + e.Path.Node
		if e.Path.Iface != "" {
			what += ":" + e.Path.Iface
		}
		from, to := -1, len(d.Steps)
		if e.During > 0 {
			what += fmt.Sprintf(" during step %d", e.During)
			from, to = e.During-1, e.During
		}
		c := Check{Flow: e.Flow, Line: e.Line, What: what}
		s0, ok0 := pc.snaps[from]
		s1, ok1 := pc.snaps[to]
		var f *FlowResult
		for i := range flows {
			if flows[i].Flow == e.Flow {
				f = &flows[i]
			}
		}
		switch {
		case pc.err != nil:
			c.Measured = "counters unreadable: " + pc.err.Error()
		case !ok0 || !ok1 || f == nil:
			c.Measured = "the run did not get that far"
		default:
			crossed := s1.counts[k] - s0.counts[k]
			arrived := receivedBetween(f, s0.at, s1.at)
			c.Pass = arrived > 0 && float64(crossed) >= PathShare*float64(arrived)
			c.Measured = fmt.Sprintf("%d packets crossed it, for %d of the flow's that arrived between %.2fs and %.2fs", crossed, arrived, s0.at.Seconds(), s1.at.Seconds())
		}
		out = append(out, c)
	}
	return out
}

// PathShare is how much of a flow must cross a path's node in its window:
// the counters are read at the window's edges and the arrivals are
// counted in 50 ms buckets, so not quite all of it.
const PathShare = 0.9

// receivedBetween counts a flow's packets sent in [from, to) that arrived,
// from its timeline: a bucket the window cuts counts for the share of it
// inside the window.
func receivedBetween(f *FlowResult, from, to time.Duration) int {
	n := 0.0
	for k, got := range f.TimelineReceived {
		at := f.Offset + time.Duration(k)*f.Bucket
		if in := min(at+f.Bucket, to) - max(at, from); in > 0 {
			n += float64(got) * float64(in) / float64(f.Bucket)
		}
	}
	return int(n + 0.5)
}
