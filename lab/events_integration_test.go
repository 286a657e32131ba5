package lab_test

import (
	"context"
	"strings"
	"sync"
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

// events collects what Watch emits, for a test to wait on.
type events struct {
	mu  sync.Mutex
	all []lab.Event
}

func (e *events) add(ev lab.Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

// wait returns the first event (from index from on) that match accepts.
func (e *events) wait(t *testing.T, within time.Duration, what string, from int, match func(lab.Event) bool) lab.Event {
	t.Helper()
	var found lab.Event
	labtest.Eventually(t, within, what, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, ev := range e.all[min(from, len(e.all)):] {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

func (e *events) len() int { e.mu.Lock(); defer e.mu.Unlock(); return len(e.all) }

func is(node, kind, object, state string) func(lab.Event) bool {
	return func(e lab.Event) bool {
		return e.Node == node && e.Kind == kind && e.Object == object && (state == "" || e.State == state)
	}
}

// TestIntegrationEvents: erlab events' stream on a live lab. The state
// first (interfaces, sessions, BFD), marked initial; then a link pulled:
// the kernel's interface events at both ends within milliseconds of the
// pull, the journal's note of who pulled it, the session and BFD down,
// the route withdrawn at the far router (and the one the kernel flushed
// with the interface, which it sends no word of); an impairment set and
// cleared; a drill's steps and verdict; and the traffic counters.
func TestIntegrationEvents(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, eventsLab)
	l := labtest.Deploy(t, top)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bgp.WaitConverged(ctx, l, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	var evs events
	done := make(chan error, 1)
	go func() {
		done <- l.Watch(ctx, lab.WatchOptions{Initial: true, Counters: 200 * time.Millisecond}, evs.add)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	for _, m := range []func(lab.Event) bool{is("r1", "interface", "eth1", "up"), is("h", "interface", "eth1", "up"),
		is("r1", "bgp", "10.0.0.2", "established"), is("r2", "bfd", "10.0.0.1", "up"), is("r2", "route", "10.1.0.0/24", "added")} {
		if e := evs.wait(t, 10*time.Second, "the initial state", 0, m); !e.Initial {
			t.Errorf("%+v: not marked initial", e)
		}
	}
	from := evs.len()
	pulled := time.Now()
	if err := l.LinkSet(ctx, "r1", "eth1", false); err != nil {
		t.Fatal(err)
	}
	down := evs.wait(t, 5*time.Second, "r1:eth1 down", from, is("r1", "interface", "eth1", "down"))
	if d := down.Time.Sub(pulled); d < 0 || d > 500*time.Millisecond || down.Initial {
		t.Errorf("r1:eth1 down reported %s after the pull (initial %v); the kernel's notification comes within milliseconds", d, down.Initial)
	}
	evs.wait(t, 5*time.Second, "r2:eth1 no-carrier", from, is("r2", "interface", "eth1", "no-carrier"))
	evs.wait(t, 5*time.Second, "the journal's note", from, func(e lab.Event) bool {
		return is("r1", "action", "eth1", "link-down")(e) && e.Detail == "erlab link down"
	})
	evs.wait(t, 5*time.Second, "r1's route of the link flushed", from, is("r1", "route", "10.0.0.0/30", "removed"))
	evs.wait(t, 10*time.Second, "r2's session down", from, func(e lab.Event) bool { return is("r2", "bgp", "10.0.0.1", "")(e) && e.State != "established" })
	evs.wait(t, 10*time.Second, "r2's BFD down", from, func(e lab.Event) bool { return is("r2", "bfd", "10.0.0.1", "")(e) && e.State != "up" })
	evs.wait(t, 10*time.Second, "r2's route to h's subnet withdrawn", from, is("r2", "route", "10.1.0.0/24", "removed"))
	if err := l.LinkSet(ctx, "r1", "eth1", true); err != nil {
		t.Fatal(err)
	}
	evs.wait(t, 30*time.Second, "r2's session back", from, is("r2", "bgp", "10.0.0.1", "established"))

	// An impairment (a rate: tbf, which the host kernel has), set and
	// cleared.
	from = evs.len()
	if err := netem.Impair(ctx, l, "r1", "eth2", netem.Params{Rate: 10_000_000}); err != nil {
		t.Fatal(err)
	}
	evs.wait(t, 5*time.Second, "the impairment set", from, func(e lab.Event) bool {
		return is("r1", "impair", "eth2", "set")(e) && strings.Contains(e.Detail, "10mbit")
	})
	if err := netem.Impair(ctx, l, "r1", "eth2", netem.Params{}); err != nil {
		t.Fatal(err)
	}
	evs.wait(t, 5*time.Second, "the impairment cleared", from, is("r1", "impair", "eth2", "cleared"))

	// A drill, as erlab drill run (another process) would run it: its
	// steps and its verdict come through the journal; its flow through
	// the counters.
	from = evs.len()
	res := drill.Run(ctx, l, drill.Of(top)[0], nil)
	if !res.Pass {
		t.Fatalf("the drill: %+v", res)
	}
	evs.wait(t, 5*time.Second, "the drill started", from, is("", "drill", "flap", "started"))
	step := evs.wait(t, 5*time.Second, "the drill's link-down step", from, func(e lab.Event) bool {
		return is("", "drill", "flap", "step")(e) && strings.HasPrefix(e.Detail, "step 2: link-down r1:eth1")
	})
	if step.Values["step"] != 2 {
		t.Errorf("step event: %+v", step)
	}
	evs.wait(t, 5*time.Second, "the drill's verdict", from, func(e lab.Event) bool {
		return is("", "drill", "flap", "pass")(e) && e.Detail == "1 of 1 expectations met"
	})
	moving := evs.wait(t, 5*time.Second, "r1:eth2 carrying the flow", from, is("r1", "counters", "eth2", "moving"))
	if rx := moving.Values["rx_pps"]; rx < 50 || rx > 200 {
		t.Errorf("r1:eth2 received %.0f pps of a 100 pps flow", rx)
	}
}
