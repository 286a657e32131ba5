package drill_test

import (
	"context"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/drill"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/labtest/tier"
)

// within says whether a measured outage is within tol packets of want at
// rate pps.
func within(got, want time.Duration, rate, tol int) bool {
	slack := time.Duration(tol) * time.Second / time.Duration(rate)
	return got >= want-slack && got <= want+slack
}

// The probe's own accuracy through a drill: a link blackholed for a known
// time (no carrier change) must be reported within a few packets of it,
// both ways, with the losses where the steps put them; and a bound below
// the outage fails the drill.
func TestIntegrationDrillBlackholeMeasuredExactly(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, twoNodes+`drills:
  hole:
    flows:
      - {from: a, to: b, rate: 1000, both: true}
    steps:
      - {after: 1s, do: {blackhole: a:eth1}}
      - {after: 500ms, do: {restore: a:eth1}}
      - {after: 1s}
    expect:
      - {flow: a->b, max-outage: 600ms}
      - {flow: b->a, max-outage: 100ms}
`)
	l := labtest.Deploy(t, top)
	res := drill.Run(context.Background(), l, drill.Of(top)[0], nil)
	if res.Error != "" || len(res.Flows) != 2 || len(res.Check) != 2 {
		t.Fatalf("run: %+v", res)
	}
	// An action takes effect somewhere within its step (the first
	// blackhole of a boot loads nftables' modules, slowly in the microVM):
	// the hole lasted from shortest to longest.
	s0, s1 := res.Steps[0], res.Steps[1]
	on, off := s0.At, s1.At+s1.Took
	shortest, longest := s1.At-(s0.At+s0.Took), off-on
	for _, f := range res.Flows {
		if !within(f.Outage, shortest, 1000, 10) && !within(f.Outage, longest, 1000, 10) && (f.Outage < shortest || f.Outage > longest) {
			t.Errorf("%s: outage %s for a blackhole of %s to %s; want it within 10 packets of that", f.Flow, f.Outage, shortest, longest)
		}
		if f.FirstLoss < res.Steps[0].At-10*time.Millisecond || f.LastLoss > off+20*time.Millisecond {
			t.Errorf("%s: losses from %s to %s, outside the blackhole (%s to %s)", f.Flow, f.FirstLoss, f.LastLoss, on, off)
		}
		if f.Received == 0 || f.Reordered > 0 {
			t.Errorf("%s: received %d, reordered %d", f.Flow, f.Received, f.Reordered)
		}
	}
	if !res.Check[0].Pass || res.Check[1].Pass || res.Pass {
		t.Errorf("max-outage 600ms should pass and 100ms fail, and so the drill: %+v", res.Check)
	}
}

// A drill that ends with the link pulled and blackholed leaves the lab
// as it found it; a link pulled and put back costs at least its time down.
func TestIntegrationDrillPutsTheLabBack(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, twoNodes+`drills:
  flap:
    flows:
      - {from: a, to: b, rate: 1000}
    steps:
      - {after: 500ms, do: {link-down: a:eth1}}
      - {after: 500ms, do: {link-up: a:eth1}}
      - {after: 1s}
    expect:
      - {flow: a->b, max-outage: 2s}
  leave-broken:
    flows:
      - {from: a, to: b, rate: 200}
    steps:
      - {after: 300ms, do: {blackhole: b:eth1}}
      - {after: 100ms, do: {link-down: a:eth1}}
      - {after: 300ms}
    expect:
      - {flow: a->b, max-loss: 100%}
`)
	l := labtest.Deploy(t, top)
	ds := drill.Of(top)
	flap := drill.Run(context.Background(), l, ds[0], nil)
	if !flap.Pass {
		t.Fatalf("flap: %+v", flap)
	}
	down := flap.Steps[1].At + flap.Steps[1].Took - (flap.Steps[0].At + flap.Steps[0].Took)
	if f := flap.Flows[0]; f.Outage < down-10*time.Millisecond || f.Outage > down+time.Second {
		t.Errorf("link down for %s cost %s; want at least the time down, and under a second more", down, f.Outage)
	}
	broken := drill.Run(context.Background(), l, ds[1], nil)
	if broken.Error != "" || broken.Flows[0].Lost == 0 {
		t.Fatalf("leave-broken: %+v", broken)
	}
	// Put back: the link is up and nothing drops; the next run starts alike.
	labtest.WaitPing(t, l, "a", "10.9.0.2", 5*time.Second)
	again := drill.Run(context.Background(), l, ds[0], nil)
	if !again.Pass || again.Flows[0].Received == 0 {
		t.Errorf("a second flap after the lab was put back: %+v", again)
	}
}

// The drills er-bgp.yml ships pass as a user runs them, measure what BFD
// and fast external failover give, and fail once a bound is tightened
// below what they measured.
func TestIntegrationShippedDrillsERBGP(t *testing.T) {
	labtest.Integration(t)
	if tier.KernelTier() {
		t.Skip("the host tier runs it: the lab needs nothing this host's kernel lacks, and each drill takes 16 s")
	}
	top := labtest.Load(t, "../../topologies/er-bgp.yml")
	l := labtest.Deploy(t, top)
	if ds := drill.Of(top); len(ds) < 5 {
		t.Fatalf("er-bgp.yml ships %d drills, want 5", len(ds))
	}
	labtest.RunDrills(t, l, top)
}

// A path is read from counters in the node: the router forwards a->b out
// of its eth2, never out of its eth1; a window during a step counts that
// step's time only.
func TestIntegrationDrillPath(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, `name: p
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.9.1.2/24]}
      routes: [{dst: default, via: 10.9.1.1}]
    r:
      forward: true
      interfaces:
        eth1: {addresses: [10.9.1.1/24]}
        eth2: {addresses: [10.9.2.1/24]}
    b:
      interfaces:
        eth1: {addresses: [10.9.2.2/24]}
      routes: [{dst: default, via: 10.9.2.1}]
  links:
    - endpoints: [a:eth1, r:eth1]
    - endpoints: [r:eth2, b:eth1]
drills:
  via-r:
    flows:
      - {from: a, to: b, rate: 1000}
    steps:
      - {after: 500ms, do: {exec: {node: r, cmd: "true"}}}
      - {after: 1s}
      - {after: 500ms}
    expect:
      - {flow: a->b, path: r}
      - {flow: a->b, path: r:eth2, during: 1}
      - {flow: a->b, path: r:eth1}
`)
	l := labtest.Deploy(t, top)
	res := drill.Run(context.Background(), l, drill.Of(top)[0], nil)
	if res.Error != "" || len(res.Check) != 3 {
		t.Fatalf("run: %+v", res)
	}
	for i, want := range []bool{true, true, false} {
		if c := res.Check[i]; c.Pass != want {
			t.Errorf("%s %s: pass %v, want %v (%s)", c.Flow, c.What, c.Pass, want, c.Measured)
		}
	}
	t.Log(res.Check)
}
