package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fakeKernel is a routing table for the fib to write instead of the
// kernel's. It keeps the routes, refuses what the kernel would refuse of
// them (a delete of a route it does not have is ESRCH), and records every
// write as the `ip route` command that makes it.
type fakeKernel struct {
	mu     sync.Mutex
	routes map[string]*netlink.Route // by destination
	ops    []string
}

func newFakeKernel() *fakeKernel { return &fakeKernel{routes: map[string]*netlink.Route{}} }

func (k *fakeKernel) RouteReplace(r *netlink.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ops = append(k.ops, "ip route replace "+routeLine(r))
	if r.Priority != RouteMetric {
		return unix.EINVAL // would clobber a connected route (see RouteMetric)
	}
	if r.Dst == nil || (r.Gw == nil) == (len(r.MultiPath) == 0) {
		return unix.EINVAL // a route has one next hop or a multipath set
	}
	c := *r
	k.routes[r.Dst.String()] = &c
	return nil
}

func (k *fakeKernel) RouteDel(r *netlink.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ops = append(k.ops, "ip route del "+routeLine(r))
	had, ok := k.routes[r.Dst.String()]
	if !ok || (r.Protocol != 0 && r.Protocol != had.Protocol) {
		return unix.ESRCH
	}
	delete(k.routes, r.Dst.String())
	return nil
}

// table lists the routes as `ip route` would, sorted.
func (k *fakeKernel) table() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := []string{}
	for _, r := range k.routes {
		out = append(out, routeLine(r))
	}
	slices.Sort(out)
	return out
}

// opsOn lists the writes to a destination, in order.
func (k *fakeKernel) opsOn(dst string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, op := range k.ops {
		if strings.Contains(op, " "+dst+" ") {
			out = append(out, op)
		}
	}
	return out
}

// routeLine renders a route as iproute2 writes it, with the next hops of a
// multipath route sorted: their order is not the test's concern.
func routeLine(r *netlink.Route) string {
	s := fmt.Sprintf("%s proto %s", r.Dst, r.Protocol)
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	var nhs []string
	for _, nh := range r.MultiPath {
		nhs = append(nhs, "nexthop via "+nh.Gw.String())
	}
	slices.Sort(nhs)
	for _, nh := range nhs {
		s += " " + nh
	}
	return s
}

// runFIB runs the agent's FIB for a speaker against a fake kernel, fed as
// runSpeaker feeds it: every best-path change marks its prefix.
func runFIB(t *testing.T, sp *testSpeaker) (*fib, *fakeKernel) {
	t.Helper()
	k := newFakeKernel()
	f := &fib{routes: k, log: slog.New(slog.DiscardHandler), pending: map[netip.Prefix]bool{}, wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.run(ctx, sp.client, sp.cfg.Multipath)
	}()
	t.Cleanup(func() { cancel(); <-done })
	if err := sp.s.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnBestPath: func(paths []*apiutil.Path, _ time.Time) {
			for _, p := range paths {
				if pre, ok := nlriPrefix(p); ok {
					f.changed(pre)
				}
			}
		},
	}, server.WatchBestPath(true)); err != nil {
		t.Fatal(err)
	}
	return f, k
}

// TestFIBSyncMultipath follows a router with multipath on (r, AS 65001)
// and two eBGP peers in one AS (s1, s2, AS 65002) through announcements
// and withdrawals, and checks the kernel routes its FIB writes: one path
// gives a route via its next hop, two equal ones an ECMP route via both,
// a withdrawal shrinks or removes the route, and the router's own network
// never reaches the kernel, though a peer announces it too.
func TestFIBSyncMultipath(t *testing.T) {
	sp := startSpeakers(t,
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Multipath: true, Networks: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")},
			Neighbors: []Neighbor{neighbor("127.0.0.2", 65002, false), neighbor("127.0.0.3", 65002, false)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.2"), Multipath: true, Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.3"), Multipath: true, Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
	)
	r, s1, s2 := sp[0], sp[1], sp[2]
	f, k := runFIB(t, r)

	s1.announce(t, "10.1.0.0/24", "10.2.0.0/24", "10.9.0.0/24")
	s2.announce(t, "10.2.0.0/24")
	waitFor(t, routeWait, "a route via s1, an ECMP route via s1 and s2", func() string {
		return diff([]string{
			"10.1.0.0/24 proto bgp via 127.0.0.2",
			"10.2.0.0/24 proto bgp nexthop via 127.0.0.2 nexthop via 127.0.0.3",
		}, k.table())
	})

	// r's own network, originated before its sessions came up (as the
	// agent does): once the RIB holds both r's path and s1's, a sync reads
	// them back, and neither may have been installed, then or before.
	waitFor(t, routeWait, "r's RIB holds its own path to 10.9.0.0/24 and s1's", func() string {
		return diff([]string{"0.0.0.0", "127.0.0.2"}, nextHops(r.paths(t, "10.9.0.0/24")))
	})
	if err := f.sync(context.Background(), r.client, netip.MustParsePrefix("10.9.0.0/24"), true); err != nil {
		t.Fatalf("sync 10.9.0.0/24 (a missing route's delete must not be an error): %v", err)
	}
	for _, op := range k.opsOn("10.9.0.0/24") {
		if strings.HasPrefix(op, "ip route replace") {
			t.Errorf("the router's own network was installed: %s", op)
		}
	}

	s2.withdraw(t, "10.2.0.0/24")
	waitFor(t, routeWait, "s2's withdrawal leaves the route via s1 alone", func() string {
		return diff([]string{"10.1.0.0/24 proto bgp via 127.0.0.2", "10.2.0.0/24 proto bgp via 127.0.0.2"}, k.table())
	})
	s1.withdraw(t, "10.1.0.0/24")
	waitFor(t, routeWait, "s1's withdrawal removes 10.1.0.0/24", func() string {
		return diff([]string{"10.2.0.0/24 proto bgp via 127.0.0.2"}, k.table())
	})
	if ops := k.opsOn("10.1.0.0/24"); ops[len(ops)-1] != "ip route del 10.1.0.0/24 proto bgp" {
		t.Errorf("writes to 10.1.0.0/24: %q, want the last to delete the bgp route, and that only", ops)
	}
}

// TestFIBSyncBestPathOnly: with multipath off, of two equal paths only
// the best reaches the kernel.
func TestFIBSyncBestPathOnly(t *testing.T) {
	sp := startSpeakers(t,
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Neighbors: []Neighbor{neighbor("127.0.0.2", 65002, false), neighbor("127.0.0.3", 65002, false)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.2"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.3"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
	)
	r, s1, s2 := sp[0], sp[1], sp[2]
	f, k := runFIB(t, r)

	s1.announce(t, "10.2.0.0/24")
	s2.announce(t, "10.2.0.0/24")
	var best string
	waitFor(t, routeWait, "r's RIB holds both paths, one of them best", func() string {
		paths := r.paths(t, "10.2.0.0/24")
		best = ""
		for _, p := range paths {
			if p.Best {
				best += p.NextHop.String()
			}
		}
		if d := diff([]string{"127.0.0.2", "127.0.0.3"}, nextHops(paths)); d != "" {
			return d
		}
		if best != "127.0.0.2" && best != "127.0.0.3" {
			return "best path via " + best
		}
		return ""
	})
	settled(t, f, k, r, "10.2.0.0/24", []string{"10.2.0.0/24 proto bgp via " + best})
}

// settled waits until the fake kernel holds want for prefix, then has the
// FIB sync prefix once more and checks again. A test calls it once the
// speaker's RIB holds every path of prefix; the kernel may have held want
// before that, and a sync that reads them all back must keep it so. The
// FIB's own syncs cannot hide the result: those that read every path write
// what this one writes, and one that read fewer had written by the time the
// kernel first held want, as the FIB syncs one prefix at a time.
func settled(t *testing.T, f *fib, k *fakeKernel, sp *testSpeaker, prefix string, want []string) {
	t.Helper()
	waitFor(t, routeWait, "the kernel routes for "+prefix, func() string { return diff(want, k.table()) })
	if err := f.sync(context.Background(), sp.client, netip.MustParsePrefix(prefix), sp.cfg.Multipath); err != nil {
		t.Fatal(err)
	}
	if d := diff(want, k.table()); d != "" {
		t.Errorf("after a sync of every path of %s: %s", prefix, d)
	}
}

// TestFIBSyncMultipathTwoASes: with multipath on, of two paths equal but
// for their neighbouring AS only the best is installed (MarkMultipath's
// rule), and the best is the path GoBGP ranks first, the one it
// advertises.
func TestFIBSyncMultipathTwoASes(t *testing.T) {
	sp := startSpeakers(t,
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Multipath: true, Neighbors: []Neighbor{neighbor("127.0.0.2", 65002, false), neighbor("127.0.0.3", 65003, false)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.2"), Multipath: true, Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
		Config{ASN: 65003, RouterID: netip.MustParseAddr("127.0.0.3"), Multipath: true, Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
	)
	r, s1, s2 := sp[0], sp[1], sp[2]
	f, k := runFIB(t, r)
	s1.announce(t, "10.5.0.0/24")
	s2.announce(t, "10.5.0.0/24")
	var paths []PathInfo
	waitFor(t, routeWait, "r's RIB holds both paths", func() string {
		paths = r.paths(t, "10.5.0.0/24")
		return diff([]string{"127.0.0.2", "127.0.0.3"}, nextHops(paths))
	})
	settled(t, f, k, r, "10.5.0.0/24", []string{"10.5.0.0/24 proto bgp via " + paths[0].NextHop.String()})
}

// TestFIBSyncBurst: a burst of thousands of prefixes (a leak) is read
// back from the table in one pass, and every route reaches the kernel;
// their withdrawal, another burst, takes every one out again.
func TestFIBSyncBurst(t *testing.T) {
	sp := startSpeakers(t,
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Neighbors: []Neighbor{neighbor("127.0.0.2", 65002, false)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.2"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
	)
	r, s := sp[0], sp[1]
	_, k := runFIB(t, r)
	leak := Split(netip.MustParsePrefix("10.1.0.0/16"), 28)
	var names []string
	for _, p := range leak {
		names = append(names, p.String())
	}
	s.announce(t, names...)
	waitFor(t, 30*time.Second, "every leaked prefix in the kernel", func() string { return diff(len(leak), len(k.table())) })
	if got := k.opsOn("10.1.255.240/28"); len(got) != 1 || got[0] != "ip route replace 10.1.255.240/28 proto bgp via 127.0.0.2" {
		t.Errorf("writes to the last prefix: %q", got)
	}
	s.withdraw(t, names...)
	waitFor(t, 30*time.Second, "every leaked prefix out of the kernel", func() string { return diff(0, len(k.table())) })
}
