package labtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/drill"
	"github.com/erlab-dev/erlab/lab/topo"
)

// RunDrills runs a topology's shipped drills (those named, or all) once
// each on a deployed lab and fails the test for each that does not pass.
// A drill that passes is checked again with every outage bound tightened
// just below what it measured, which must fail: a bound that cannot fail
// proves nothing. It returns the results by drill name.
func RunDrills(t testing.TB, l *lab.Lab, top *topo.Topology, names ...string) map[string]drill.RunResult {
	t.Helper()
	out := map[string]drill.RunResult{}
	ran := 0
	for _, d := range drill.Of(top) {
		if len(names) > 0 && !slices.Contains(names, d.Name) {
			continue
		}
		ran++
		res := drill.Run(context.Background(), l, d, nil)
		out[d.Name] = res
		for _, s := range res.Steps {
			t.Logf("%s: %7.3fs step %d: %s (%s)", d.Name, s.At.Seconds(), s.Step, s.What, s.Took.Round(time.Millisecond))
		}
		for _, f := range res.Flows {
			t.Logf("%s: %s: %s", d.Name, f.Flow, f.Report)
		}
		for _, c := range res.Check {
			t.Logf("%s: %s %s: %s (pass %v)", d.Name, c.Flow, c.What, c.Measured, c.Pass)
		}
		if !res.Pass {
			t.Errorf("drill %s failed: %s", d.Name, res.Error)
			continue
		}
		tight := *d
		tight.Expect = nil
		for _, e := range d.Expect {
			for _, f := range res.Flows {
				if e.MaxOutage != nil && f.Flow == e.Flow && f.Outage > 2*time.Millisecond {
					below := f.Outage - time.Millisecond
					tight.Expect = append(tight.Expect, drill.Expect{Flow: e.Flow, MaxOutage: &below})
				}
			}
		}
		for _, c := range drill.Evaluate(&tight, res.Flows) {
			if c.Pass {
				t.Errorf("%s: %s %s passed at a bound below what was measured (%s)", d.Name, c.Flow, c.What, c.Measured)
			}
		}
	}
	if ran == 0 || (len(names) > 0 && ran != len(names)) {
		t.Errorf("ran %d drills of %s, want %v", ran, top.Name, names)
	}
	return out
}
