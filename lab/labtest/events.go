package labtest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
)

// Events is what a lab's Watch emitted, for a test to wait on.
type Events struct {
	mu  sync.Mutex
	all []lab.Event
}

// Watch watches a deployed lab until the test ends, and returns once the
// watch is ready (a change from then on is reported); a watch that fails
// fails the test.
func Watch(t testing.TB, l *lab.Lab, opts lab.WatchOptions) *Events {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &Events{}
	done := make(chan error, 1)
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	go func() { done <- l.Watch(ctx, opts, e.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("watch ended before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("watch not ready within 30s")
	}
	return e
}

func (e *Events) add(ev lab.Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

// Len is how many events have come: where a later Wait starts to look.
func (e *Events) Len() int { e.mu.Lock(); defer e.mu.Unlock(); return len(e.all) }

// Since is every event from index from on.
func (e *Events) Since(from int) []lab.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.all[min(from, len(e.all)):])
}

// Wait returns the first event, from index from on, that match accepts,
// failing the test when none has come within the time given.
func (e *Events) Wait(t testing.TB, within time.Duration, what string, from int, match func(lab.Event) bool) lab.Event {
	t.Helper()
	var found lab.Event
	Eventually(t, within, what, func() bool {
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

// Is matches an event of a node's object of a kind, in a state (any
// state when empty).
func Is(node, kind, object, state string) func(lab.Event) bool {
	return func(e lab.Event) bool {
		return e.Node == node && e.Kind == kind && e.Object == object && (state == "" || e.State == state)
	}
}
