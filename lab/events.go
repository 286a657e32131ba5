package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
)

// Event is one change in a running lab (feature.Event): what erlab events
// prints and erlab serve streams.
type Event = feature.Event

// The kinds of event the engine reports itself; features report their
// own (feature.WatchHook) and the journal what erlab did (drill,
// action).
const (
	EventInterface = "interface"
	EventAddress   = "address"
	EventRoute     = "route"
	EventCounters  = "counters"
	EventAction    = "action"
)

// WatchOptions says what Watch reports besides changes.
type WatchOptions struct {
	// Initial reports every object's state when the watch begins first,
	// as events marked Initial.
	Initial bool
	// Counters, when set, reports each interface's packet and byte rates
	// at that interval (for a page that shows traffic move); only
	// interfaces that carried something, and each once more when it
	// stops.
	Counters time.Duration
	// Ready, when set, is called once, when every node's namespace is
	// watched and every feature has read its state: a change made after
	// it is reported. (erlab events prints its table's header then.)
	Ready func()
}

// Watch reports the lab's changes to emit until ctx is done: in each
// node's namespace, interfaces going up, down or losing carrier, addresses
// and routes added and removed (the kernel's own notifications, so each
// event carries the moment the kernel made the change); what the features
// watch (feature.WatchHook); and what erlab did
// to the lab meanwhile, from its journal (drill steps and results, links
// pulled). emit is called from one goroutine at a time.
func (l *Lab) Watch(ctx context.Context, opts WatchOptions, emit func(Event)) error {
	if _, err := l.state(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	out := func(e Event) {
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		if e.Kind == EventAction && e.Object == "node" {
			// A node stopped or started, perhaps by another erlab: the
			// features' watches read which nodes run from the state.
			l.forget()
		}
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() == nil {
			emit(e)
		}
	}
	// The journal first, so that nothing erlab does from here on is missed.
	journal, err := l.tailJournal(ctx, out)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(l.Nodes())+8)
	run := func(fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
	}
	nodes, watchHooks := l.Nodes(), hooks[feature.WatchHook](&l.opts)
	var pending sync.WaitGroup // the node and feature watches not yet ready
	pending.Add(len(nodes) + len(watchHooks))
	readyOnce := func() func() {
		var once sync.Once
		return func() { once.Do(pending.Done) }
	}
	run(journal)
	for _, node := range nodes {
		ns, err := l.NetNS(node)
		if err != nil {
			return err
		}
		ready := readyOnce()
		run(func() error { defer ready(); return followNode(ctx, node, ns, opts, out, ready) })
	}
	for _, h := range watchHooks {
		ready := readyOnce()
		run(func() error {
			defer ready()
			return h.Watch(ctx, l, feature.Watcher{Initial: opts.Initial, Emit: out, Ready: ready})
		})
	}
	if opts.Ready != nil {
		// Every watch's ready is told by the time it returns, so this
		// ends before Watch does.
		wg.Add(1)
		go func() {
			defer wg.Done()
			pending.Wait()
			if ctx.Err() == nil {
				opts.Ready()
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err = <-errs:
		cancel()
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return nil
}

// nodeCheck is how often a watch looks whether a node's namespace is
// still the one it watches.
const nodeCheck = time.Second

// followNode watches a node's namespace for as long as the watch runs,
// through stops and starts: a stopped node has none, and a node started
// again (by erlab start, a drill, or Docker restarting a container) has
// a new one under the same name, whose state is then reported as
// changes.
//
// ready is told once the first namespace's state is read, or at once
// when the node has none (stopped): a change after it is reported.
func followNode(ctx context.Context, node, ns string, opts WatchOptions, emit func(Event), ready func()) error {
	report, initial := opts.Initial, opts.Initial
	for {
		if ino, err := kernel.NetNSInode(ns); err == nil {
			wctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- watchNode(wctx, node, ns, report, initial, opts.Counters, emit, ready) }()
			err := waitReplaced(ctx, ns, ino, done)
			cancel()
			if err != nil {
				return err
			}
		}
		ready()
		report, initial = true, false
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(nodeCheck):
		}
	}
}

// waitReplaced waits until ctx is done or the namespace at ns is no
// longer ino, and then for its watch to end (done); a watch that fails
// while its namespace is still there is an error.
func waitReplaced(ctx context.Context, ns string, ino uint64, done chan error) error {
	tick := time.NewTicker(nodeCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			if now, nerr := kernel.NetNSInode(ns); err != nil && nerr == nil && now == ino {
				return err
			}
			return nil
		case <-tick.C:
			if now, err := kernel.NetNSInode(ns); err != nil || now != ino {
				return nil
			}
		}
	}
}

// watchNode follows one namespace's interfaces, addresses and routes. It
// subscribes first and reads the state after, so that a change made in
// between is reported (perhaps as well as read) rather than missed. With
// report it first says what there is (marked initial with initial).
// It tells ready once the state is read.
func watchNode(ctx context.Context, node, ns string, report, initial bool, counterEvery time.Duration, emit func(Event), ready func()) error {
	nsh, err := kernel.Open(ns)
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	defer nsh.Close()
	done := make(chan struct{})
	defer close(done)
	var subErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { subErr = err }) }
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 256)
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{Namespace: &nsh, ErrorCallback: fail}); err != nil {
		return fmt.Errorf("node %s: watch interfaces: %w", node, err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: &nsh, ErrorCallback: fail}); err != nil {
		return fmt.Errorf("node %s: watch addresses: %w", node, err)
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: &nsh, ErrorCallback: fail}); err != nil {
		return fmt.Errorf("node %s: watch routes: %w", node, err)
	}
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	defer h.Close()
	w := &nodeWatch{node: node, emit: emit, h: h, names: map[int]string{}, states: map[string]string{}, routes: map[string]string{}}
	if err := w.readState(report, initial); err != nil {
		return err
	}
	ready()
	var tick <-chan time.Time
	if counterEvery > 0 {
		t := time.NewTicker(counterEvery)
		defer t.Stop()
		tick = t.C
	}
	counters := &counterWatch{node: node, moving: map[string]bool{}}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-links:
			if !ok {
				return subError(node, subErr)
			}
			if w.link(u) {
				// Linux sends no notification for the IPv4 routes it
				// flushes with an interface that goes down: read them.
				w.resync()
			}
		case u, ok := <-addrs:
			if !ok {
				return subError(node, subErr)
			}
			w.addr(u, false)
		case u, ok := <-routes:
			if !ok {
				return subError(node, subErr)
			}
			w.route(u.Route, u.Type == unix.RTM_DELROUTE, false)
		case <-tick:
			for _, e := range counters.sample(h) {
				emit(e)
			}
		}
	}
}

// readState reads the interfaces (their names and states, which the
// changes are told against) and the routes, and with report says what
// there is now (marked initial with initial).
func (w *nodeWatch) readState(report, initial bool) error {
	h := w.h
	links, err := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
	if err != nil {
		return fmt.Errorf("node %s: %w", w.node, err)
	}
	sort.Slice(links, func(i, j int) bool { return naturalLess(links[i].Attrs().Name, links[j].Attrs().Name) })
	for _, l := range links {
		a := l.Attrs()
		w.names[a.Index] = a.Name
		w.states[a.Name] = linkState(a)
		if report && a.Name != "lo" {
			w.emit(w.linkEvent(a, initial))
		}
	}
	if report {
		all, err := kernel.Dump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
		if err != nil {
			return fmt.Errorf("node %s: %w", w.node, err)
		}
		for _, ad := range all {
			w.addr(netlink.AddrUpdate{LinkAddress: *ad.IPNet, LinkIndex: ad.LinkIndex, NewAddr: true}, initial)
		}
	}
	rs, err := w.routeList()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if report {
			w.route(r, false, initial)
		} else if dst, detail, ok := w.describe(r); ok {
			w.routes[dst] = detail
		}
	}
	return nil
}

func (w *nodeWatch) routeList() ([]netlink.Route, error) {
	rs, err := kernel.Dump(func() ([]netlink.Route, error) {
		return w.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", w.node, err)
	}
	return rs, nil
}

// resync reads the routes again and reports those gone without a word
// from the kernel.
func (w *nodeWatch) resync() {
	rs, err := w.routeList()
	if err != nil {
		return
	}
	now := map[string]bool{}
	for _, r := range rs {
		if dst, _, ok := w.describe(r); ok {
			now[dst] = true
		}
	}
	var gone []string
	for dst := range w.routes {
		if !now[dst] {
			gone = append(gone, dst)
		}
	}
	sort.Strings(gone)
	for _, dst := range gone {
		w.emit(Event{Node: w.node, Kind: EventRoute, Object: dst, State: "removed", Detail: w.routes[dst] + " (flushed with its interface)"})
		delete(w.routes, dst)
	}
}

func subError(node string, err error) error {
	if err == nil {
		err = errors.New("the kernel closed the subscription")
	}
	return fmt.Errorf("node %s: watch: %w", node, err)
}

type nodeWatch struct {
	node   string
	emit   func(Event)
	h      *netlink.Handle
	names  map[int]string    // interface names by index
	states map[string]string // the last state reported, by interface
	routes map[string]string // the routes, destination → as ip route shows it
}

// link reports an interface's state when it changes: up, down (set down),
// no-carrier (up, its peer or parent down), as inspect shows it, or
// removed; and an interface that appears. It says whether the interface
// stopped carrying traffic.
func (w *nodeWatch) link(u netlink.LinkUpdate) bool {
	a := u.Link.Attrs()
	if u.Header.Type == unix.RTM_DELLINK {
		delete(w.names, a.Index)
		delete(w.states, a.Name)
		w.emit(Event{Node: w.node, Kind: EventInterface, Object: a.Name, State: "removed"})
		return true
	}
	if was, ok := w.names[a.Index]; ok && was != a.Name {
		// Renamed (erlab stop renames a link end it parks): the name
		// the lab knows is gone.
		delete(w.states, was)
		w.emit(Event{Node: w.node, Kind: EventInterface, Object: was, State: "removed", Detail: "renamed " + a.Name})
	}
	w.names[a.Index] = a.Name
	state := linkState(a)
	if old, seen := w.states[a.Name]; (seen && old == state) || a.Name == "lo" {
		return false
	}
	w.states[a.Name] = state
	w.emit(w.linkEvent(a, false))
	return state != "up"
}

func (w *nodeWatch) linkEvent(a *netlink.LinkAttrs, initial bool) Event {
	return Event{Node: w.node, Kind: EventInterface, Object: a.Name, State: linkState(a), Initial: initial,
		Detail: fmt.Sprintf("admin %s, carrier %s", onOff(a.Flags&net.FlagUp != 0), onOff(a.RawFlags&unix.IFF_LOWER_UP != 0))}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// addr reports an address added to an interface or taken off it; not the
// kernel's own (IPv6 link-local, the loopback's).
func (w *nodeWatch) addr(u netlink.AddrUpdate, initial bool) {
	ip := u.LinkAddress.IP
	if (ip.IsLinkLocalUnicast() && ip.To4() == nil) || ip.IsLoopback() {
		return
	}
	state := "added"
	if !u.NewAddr {
		state = "removed"
	}
	ifname := w.names[u.LinkIndex]
	w.emit(Event{Node: w.node, Kind: EventAddress, Object: u.LinkAddress.String(), State: state, Initial: initial,
		Detail: "on " + ifname})
}

// route reports a route of the main table added, replaced or withdrawn:
// not the kernel's local and broadcast routes, nor its IPv6 link-local and
// multicast ones.
func (w *nodeWatch) route(r netlink.Route, removed, initial bool) {
	dst, detail, ok := w.describe(r)
	if !ok {
		return
	}
	state := "added"
	if removed {
		state = "removed"
		delete(w.routes, dst)
	} else {
		// A replace that changes nothing (a BGP agent installing the same
		// next hops again) is no change to report.
		if old, ok := w.routes[dst]; ok && old == detail && !initial {
			return
		}
		w.routes[dst] = detail
	}
	w.emit(Event{Node: w.node, Kind: EventRoute, Object: dst, State: state, Initial: initial, Detail: detail})
}

// describe names a route of the main table as events do, and says false
// for what they leave out.
func (w *nodeWatch) describe(r netlink.Route) (dst, detail string, ok bool) {
	if r.Table != unix.RT_TABLE_MAIN || r.Type != unix.RTN_UNICAST {
		return "", "", false
	}
	dst = "default"
	if r.Dst != nil {
		p, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			return "", "", false
		}
		ones, _ := r.Dst.Mask.Size()
		pre := netip.PrefixFrom(p.Unmap(), ones)
		if pre.Addr().Is6() && (pre.Addr().IsLinkLocalUnicast() || pre.Addr().IsMulticast()) {
			return "", "", false
		}
		dst = pre.String()
	} else if r.Family == unix.AF_INET6 {
		dst = "default6"
	}
	return dst, w.routeDetail(r), true
}

// routeDetail is a route as ip route shows it, after the destination.
func (w *nodeWatch) routeDetail(r netlink.Route) string {
	var parts []string
	if r.Gw != nil {
		parts = append(parts, "via "+r.Gw.String())
	}
	for _, nh := range r.MultiPath {
		parts = append(parts, "nexthop via "+nh.Gw.String())
	}
	if name := w.names[r.LinkIndex]; name != "" {
		parts = append(parts, "dev "+name)
	}
	if p := routeProto(r.Protocol); p != "" {
		parts = append(parts, "proto "+p)
	}
	return strings.Join(parts, " ")
}

func routeProto(p netlink.RouteProtocol) string {
	switch p {
	case unix.RTPROT_KERNEL:
		return "kernel"
	case unix.RTPROT_BOOT:
		return "boot"
	case unix.RTPROT_STATIC:
		return "static"
	case unix.RTPROT_BGP:
		return "bgp"
	}
	return ""
}

// counterWatch samples a namespace's interface counters and reports the
// rates of those that moved, and once more (at zero) those that stopped
// or are gone.
type counterWatch struct {
	node   string
	last   map[string]netlink.LinkStatistics
	at     time.Time
	moving map[string]bool
}

func (c *counterWatch) sample(h *netlink.Handle) []Event {
	links, err := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
	if err != nil {
		return nil
	}
	now := time.Now()
	cur := map[string]netlink.LinkStatistics{}
	for _, l := range links {
		if s := l.Attrs().Statistics; s != nil && l.Attrs().Name != "lo" {
			cur[l.Attrs().Name] = netlink.LinkStatistics(*s)
		}
	}
	var out []Event
	if c.last != nil {
		secs := now.Sub(c.at).Seconds()
		names := make([]string, 0, len(cur))
		for n := range cur {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			prev, ok := c.last[n]
			if !ok {
				continue
			}
			s := cur[n]
			rx, tx := float64(s.RxPackets-prev.RxPackets)/secs, float64(s.TxPackets-prev.TxPackets)/secs
			moving := rx > 0 || tx > 0
			if !moving && !c.moving[n] {
				continue
			}
			c.moving[n] = moving
			out = append(out, Event{Time: now, Node: c.node, Kind: EventCounters, Object: n, State: map[bool]string{true: "moving", false: "idle"}[moving],
				Detail: fmt.Sprintf("rx %.0f pps, tx %.0f pps", rx, tx),
				Values: map[string]float64{"rx_pps": rx, "tx_pps": tx, "rx_bps": float64(s.RxBytes-prev.RxBytes) * 8 / secs, "tx_bps": float64(s.TxBytes-prev.TxBytes) * 8 / secs}})
		}
		var gone []string
		for n, moving := range c.moving {
			if _, ok := cur[n]; !ok && moving {
				gone = append(gone, n)
			}
		}
		sort.Strings(gone)
		for _, n := range gone {
			delete(c.moving, n)
			out = append(out, Event{Time: now, Node: c.node, Kind: EventCounters, Object: n, State: "idle", Detail: "the interface is gone",
				Values: map[string]float64{"rx_pps": 0, "tx_pps": 0, "rx_bps": 0, "tx_bps": 0}})
		}
	}
	c.last, c.at = cur, now
	return out
}
