package feature

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type recStatus struct {
	mu    sync.Mutex
	lines []string
}

func (r *recStatus) Start(msg string) {
	r.mu.Lock()
	r.lines = append(r.lines, "start "+msg)
	r.mu.Unlock()
}
func (r *recStatus) End(ok bool) {
	r.mu.Lock()
	r.lines = append(r.lines, map[bool]string{true: "ok", false: "failed"}[ok])
	r.mu.Unlock()
}

// TestPlanOrder: with one worker the steps run in plan order, each after
// what it waits for (After) and before what it precedes (Before), and the
// progress shows each group once.
func TestPlanOrder(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	step := func(id, group string, after, before []string) Step {
		return Step{ID: id, Group: group, After: after, Before: before, Run: func(context.Context) error {
			mu.Lock()
			ran = append(ran, id)
			mu.Unlock()
			return nil
		}}
	}
	var p Plan
	p.Add(
		step("c", "Configuring", []string{"a", "b"}, nil),
		step("a", "Creating", nil, nil),
		step("b", "Creating", nil, nil),
		step("x", "Extra", []string{"a"}, []string{"c"}), // a feature's step, ahead of c
		step("d", "Configuring", []string{"c"}, nil),
	)
	st := &recStatus{}
	if err := p.Run(context.Background(), 1, st); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "x", "c", "d"}, ran); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"start Creating", "ok", "start Extra", "ok", "start Configuring", "ok"}, st.lines); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

func TestPlanRefusesBadPlans(t *testing.T) {
	for _, c := range []struct {
		steps []Step
		want  string
	}{
		{[]Step{{ID: "a", After: []string{"nope"}}}, `step "a" waits for "nope", which is no step`},
		{[]Step{{ID: "a", Before: []string{"nope"}}}, `step "a" goes before "nope", which is no step`},
		{[]Step{{ID: "a"}, {ID: "a"}}, `two steps are named "a"`},
		{[]Step{{ID: "a", After: []string{"b"}}, {ID: "b", After: []string{"a"}}}, "cycle: a, b"},
	} {
		var p Plan
		p.Add(c.steps...)
		if err := p.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.steps, err, c.want)
		}
		if err := p.Run(context.Background(), 2, &recStatus{}); err == nil {
			t.Errorf("%+v ran", c.steps)
		}
	}
}

// TestPlanPrune: a plan of some nodes' steps drops what they wait for of
// the others, and keeps the order among its own.
func TestPlanPrune(t *testing.T) {
	var order []string
	step := func(id string, after ...string) Step {
		return Step{ID: id, After: after, Before: []string{"gone/before"}, Run: func(context.Context) error { order = append(order, id); return nil }}
	}
	var p Plan
	p.Add(step("b", "a", "other/1"), step("a", "other/2"))
	if err := p.Check(); err == nil {
		t.Fatal("a plan waiting for steps it lacks passed its check")
	}
	p.Prune()
	if err := p.Run(context.Background(), 1, &recStatus{}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, " ") != "a b" {
		t.Errorf("order %v, want a b", order)
	}
}

// TestPlanFailure: a failing step fails the run with its error; what waits
// for it never runs; what is independent and already running finishes.
func TestPlanFailure(t *testing.T) {
	var ranDependent atomic.Bool
	var p Plan
	p.Add(
		Step{ID: "slow", Group: "A", Run: func(ctx context.Context) error { time.Sleep(50 * time.Millisecond); return nil }},
		Step{ID: "bad", Group: "A", Run: func(context.Context) error { return errors.New("boom") }},
		Step{ID: "after-bad", Group: "B", After: []string{"bad"}, Run: func(context.Context) error { ranDependent.Store(true); return nil }},
	)
	st := &recStatus{}
	err := p.Run(context.Background(), 4, st)
	if err == nil || err.Error() != "boom" {
		t.Fatalf("err = %v", err)
	}
	if ranDependent.Load() {
		t.Error("a step that waits for a failed one ran")
	}
	if diff := cmp.Diff([]string{"start A", "failed"}, st.lines); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

// TestPlanBoundedAndConcurrent: independent steps run at once, never more
// than the workers; a long wait in one chain does not hold up another.
func TestPlanBoundedAndConcurrent(t *testing.T) {
	var running, most atomic.Int32
	var p Plan
	for i := range 20 {
		p.Add(Step{ID: string(rune('a' + i)), Run: func(context.Context) error {
			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
			running.Add(-1)
			return nil
		}})
	}
	if err := p.Run(context.Background(), 4, &recStatus{}); err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m != 4 {
		t.Errorf("at most %d ran at once, want 4", m)
	}

	// Chain 1 waits on a gate; chain 2 must finish meanwhile.
	gate := make(chan struct{})
	var q Plan
	q.Add(
		Step{ID: "slow", Run: func(context.Context) error { <-gate; return nil }},
		Step{ID: "slow-next", After: []string{"slow"}},
		Step{ID: "fast", Run: func(context.Context) error { return nil }},
		Step{ID: "fast-next", After: []string{"fast"}, Run: func(context.Context) error { close(gate); return nil }},
	)
	done := make(chan error)
	go func() { done <- q.Run(context.Background(), 2, &recStatus{}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a slow step held up an independent chain")
	}
}

func TestPlanCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var p Plan
	p.Add(Step{ID: "a", Run: func(context.Context) error { cancel(); return nil }}, Step{ID: "b", After: []string{"a"}, Run: func(context.Context) error {
		t.Error("ran after the caller gave up")
		return nil
	}})
	if err := p.Run(ctx, 1, &recStatus{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}
