package lab_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/drill"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/netem"
)

const eventsLab = `name: ev
topology:
  nodes:
    r1:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
        eth2: {addresses: [10.1.0.1/24]}
      bgp: {asn: 65001, networks: [10.1.0.0/24], neighbors: [{address: 10.0.0.2, remote-as: 65002, bfd: {}}]}
    r2:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
      bgp: {asn: 65002, neighbors: [{address: 10.0.0.1, remote-as: 65001, bfd: {}}]}
    h:
      interfaces:
        eth1: {addresses: [10.1.0.2/24]}
      routes: [{dst: default, via: 10.1.0.1}]
  links:
    - endpoints: [r1:eth1, r2:eth1]
    - endpoints: [r1:eth2, h:eth1]
drills:
  flap:
    description: r1's link to r2 goes down for a second.
    flows:
      - {from: h, to: 10.0.0.2, rate: 100}
    steps:
      - {wait: converged, timeout: 60s}
      - {after: 1s, do: {link-down: r1:eth1}}
      - {after: 1s, do: {link-up: r1:eth1}}
      - {wait: established, session: r1, timeout: 30s}
    expect:
      - {flow: h->10.0.0.2, max-outage: 10s}
`

// TestIntegrationEvents: erlab events' stream on a live lab. The state
// first (interfaces, sessions, BFD), marked initial; then a link pulled:
// the kernel's interface events at both ends within milliseconds of the
// pull, the journal's note of who pulled it, the session and BFD down,
// the route withdrawn at the far router (and the one the kernel flushed
// with the interface, which it sends no word of); an impairment set and
// cleared; a drill's steps and verdict; and the traffic counters.
func TestIntegrationEvents(t *testing.T) {
	labtest.Integration(t)
	if labtest.KernelTier() {
		t.Skip("the host tier runs it: events of links, routes, BGP and tbf need nothing this host's kernel lacks (the MKA and IKE tests watch theirs in the kernel tier)")
	}
	top := labtest.Parse(t, eventsLab)
	l := labtest.Deploy(t, top)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bgp.WaitConverged(ctx, l, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	evs := labtest.Watch(t, l, lab.WatchOptions{Initial: true, Counters: 200 * time.Millisecond})
	for _, m := range []func(lab.Event) bool{labtest.Is("r1", "interface", "eth1", "up"), labtest.Is("h", "interface", "eth1", "up"),
		labtest.Is("r1", "bgp", "10.0.0.2", "established"), labtest.Is("r2", "bfd", "10.0.0.1", "up"), labtest.Is("r2", "route", "10.1.0.0/24", "added")} {
		// Watch returns once the watch is ready: the state is read by then.
		if e := evs.Wait(t, 0, "the initial state, when the watch is ready", 0, m); !e.Initial {
			t.Errorf("%+v: not marked initial", e)
		}
	}
	from := evs.Len()
	pulled := time.Now()
	if err := l.LinkSet(ctx, "r1", "eth1", false); err != nil {
		t.Fatal(err)
	}
	down := evs.Wait(t, 5*time.Second, "r1:eth1 down", from, labtest.Is("r1", "interface", "eth1", "down"))
	if d := down.Time.Sub(pulled); d < 0 || d > 500*time.Millisecond || down.Initial {
		t.Errorf("r1:eth1 down reported %s after the pull (initial %v); the kernel's notification comes within milliseconds", d, down.Initial)
	}
	evs.Wait(t, 5*time.Second, "r2:eth1 no-carrier", from, labtest.Is("r2", "interface", "eth1", "no-carrier"))
	evs.Wait(t, 5*time.Second, "the journal's note", from, func(e lab.Event) bool {
		return labtest.Is("r1", "action", "eth1", "link-down")(e) && e.Detail == "erlab link down"
	})
	evs.Wait(t, 5*time.Second, "r1's route of the link flushed", from, labtest.Is("r1", "route", "10.0.0.0/30", "removed"))
	evs.Wait(t, 10*time.Second, "r2's session down", from, func(e lab.Event) bool { return labtest.Is("r2", "bgp", "10.0.0.1", "")(e) && e.State != "established" })
	evs.Wait(t, 10*time.Second, "r2's BFD down", from, func(e lab.Event) bool { return labtest.Is("r2", "bfd", "10.0.0.1", "")(e) && e.State != "up" })
	evs.Wait(t, 10*time.Second, "r2's route to h's subnet withdrawn", from, labtest.Is("r2", "route", "10.1.0.0/24", "removed"))
	if err := l.LinkSet(ctx, "r1", "eth1", true); err != nil {
		t.Fatal(err)
	}
	evs.Wait(t, 30*time.Second, "r2's session back", from, labtest.Is("r2", "bgp", "10.0.0.1", "established"))

	// An impairment (a rate: tbf, which the host kernel has), set and
	// cleared.
	from = evs.Len()
	if err := netem.Impair(ctx, l, "r1", "eth2", netem.Params{Rate: 10_000_000}); err != nil {
		t.Fatal(err)
	}
	evs.Wait(t, 5*time.Second, "the impairment set", from, func(e lab.Event) bool {
		return labtest.Is("r1", "impair", "eth2", "set")(e) && strings.Contains(e.Detail, "10mbit")
	})
	if err := netem.Impair(ctx, l, "r1", "eth2", netem.Params{}); err != nil {
		t.Fatal(err)
	}
	evs.Wait(t, 5*time.Second, "the impairment cleared", from, labtest.Is("r1", "impair", "eth2", "cleared"))

	// A drill, as erlab drill run (another process) would run it: its
	// steps and its verdict come through the journal; its flow through
	// the counters.
	from = evs.Len()
	drillFrom := from
	res := drill.Run(ctx, l, drill.Of(top)[0], nil)
	if !res.Pass {
		t.Fatalf("the drill: %+v", res)
	}
	evs.Wait(t, 5*time.Second, "the drill started", from, labtest.Is("", "drill", "flap", "started"))
	step := evs.Wait(t, 5*time.Second, "the drill's link-down step", from, func(e lab.Event) bool {
		return labtest.Is("", "drill", "flap", "step")(e) && strings.HasPrefix(e.Detail, "step 2: link-down r1:eth1")
	})
	if step.Values["step"] != 2 {
		t.Errorf("step event: %+v", step)
	}
	evs.Wait(t, 5*time.Second, "the drill's verdict", from, func(e lab.Event) bool {
		return labtest.Is("", "drill", "flap", "pass")(e) && e.Detail == "1 of 1 expectations met"
	})
	// r2 stopped and started again by another erlab (another handle on
	// the lab): its link end goes (parked), the speaker is stopped, and
	// the node's new namespace is watched once it starts: its interface
	// up, its session back.
	from = evs.Len()
	other := lab.FromTopology(top, l.Options())
	if _, err := other.StopNodes(ctx, []string{"r2"}, false); err != nil {
		t.Fatal(err)
	}
	evs.Wait(t, 5*time.Second, "r2:eth1 removed (parked)", from, labtest.Is("r2", "interface", "eth1", "removed"))
	evs.Wait(t, 5*time.Second, "r2's speaker stopped", from, labtest.Is("r2", "bgp", "speaker", "stopped"))
	started := time.Now()
	if _, err := other.StartNodes(ctx, []string{"r2"}); err != nil {
		t.Fatal(err)
	}
	up := evs.Wait(t, 10*time.Second, "r2:eth1 up in its new namespace", from, func(e lab.Event) bool {
		return labtest.Is("r2", "interface", "eth1", "up")(e) && e.Time.After(started)
	})
	if up.Initial {
		t.Errorf("r2:eth1 up after the start is marked initial: %+v", up)
	}
	evs.Wait(t, 30*time.Second, "r2's session back", from, func(e lab.Event) bool {
		return labtest.Is("r2", "bgp", "10.0.0.1", "established")(e) && e.Time.After(started)
	})

	// The counters while the flow ran (a sample may hold part of an
	// interval: its start, its end): their median is the flow's rate.
	evs.Wait(t, 5*time.Second, "r1:eth2 carrying the flow", drillFrom, labtest.Is("r1", "counters", "eth2", "moving"))
	var rx []float64
	for _, e := range evs.Since(drillFrom) {
		if labtest.Is("r1", "counters", "eth2", "moving")(e) {
			rx = append(rx, e.Values["rx_pps"])
		}
	}
	slices.Sort(rx)
	if len(rx) < 10 || rx[len(rx)/2] < 80 || rx[len(rx)/2] > 125 {
		t.Errorf("r1:eth2 received %v pps of a 100 pps flow, sampled every 200 ms", rx)
	}
}
