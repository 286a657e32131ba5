package feature

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Step is one small piece of a deploy: make a namespace, a link, configure
// a node's interfaces, start a daemon, wait for it. A step declares what it
// waits for, by ID, and runs as soon as those are done, on a bounded pool:
// a slow wait on one node holds up only what depends on it.
type Step struct {
	// ID names the step, unique in the plan; other steps wait for it by
	// this name. The engine's own steps are named by the functions below
	// (NamespaceStep, InterfacesStep, ...); a feature names its own
	// "FEATURE/WHAT/NODE".
	ID string
	// Group is the progress line the step shows under ("Creating links").
	Group string
	// Node is the node the step acts on, "" when none (a link).
	Node string
	// After lists the steps that must be done before this one starts.
	After []string
	// Before lists steps that must wait for this one: a feature puts its
	// step ahead of one of the engine's without the engine knowing it.
	Before []string
	// Run does the work.
	Run func(ctx context.Context) error
}

// The engine's steps, which features' steps wait for (After) or precede
// (Before). Each is one per node, or per link.
func NamespaceStep(node string) string  { return "namespace/" + node }       // the node's namespace exists
func DevicesStep(node string) string    { return "devices/" + node }         // the kind's own devices (a bridge) exist
func LinkStep(i int) string             { return fmt.Sprintf("link/%d", i) } // the i-th link's veth pair exists
func WiredStep(node string) string      { return "wired/" + node }           // the kind has wired its ports
func InterfacesStep(node string) string { return "interfaces/" + node }      // every interface made, addressed and up
func RoutesStep(node string) string     { return "routes/" + node }          // the static routes are in
func UpStep(node string) string         { return "up/" + node }              // its links carry traffic (operationally up)
func ExecStep(node string) string       { return "exec/" + node }            // its exec commands ran

// Plan is a deploy's steps. Add steps in any order; Run orders them.
type Plan struct {
	steps []*Step
	ids   map[string]int
}

// Add adds steps to the plan. A second step with an ID already taken is a
// programming error, reported by Check.
func (p *Plan) Add(steps ...Step) {
	if p.ids == nil {
		p.ids = map[string]int{}
	}
	for _, s := range steps {
		s := s
		if _, dup := p.ids[s.ID]; dup {
			s.ID = "\x00duplicate " + s.ID
		}
		p.ids[s.ID] = len(p.steps)
		p.steps = append(p.steps, &s)
	}
}

// Has says whether the plan has a step of that ID.
func (p *Plan) Has(id string) bool { _, ok := p.ids[id]; return ok }

// Len is the number of steps.
func (p *Plan) Len() int { return len(p.steps) }

// graph resolves After and Before into, for each step, the steps it waits
// for; it refuses references to no step, duplicates and cycles.
func (p *Plan) graph() (waits [][]int, order []int, err error) {
	waits = make([][]int, len(p.steps))
	for i, s := range p.steps {
		if rest, dup := strings.CutPrefix(s.ID, "\x00duplicate "); dup {
			return nil, nil, fmt.Errorf("plan: two steps are named %q", rest)
		}
		for _, a := range s.After {
			j, ok := p.ids[a]
			if !ok {
				return nil, nil, fmt.Errorf("plan: step %q waits for %q, which is no step", s.ID, a)
			}
			waits[i] = append(waits[i], j)
		}
		for _, b := range s.Before {
			j, ok := p.ids[b]
			if !ok {
				return nil, nil, fmt.Errorf("plan: step %q goes before %q, which is no step", s.ID, b)
			}
			waits[j] = append(waits[j], i)
		}
	}
	// Kahn's algorithm, always taking the lowest-numbered ready step, so
	// that the order is the same on every run.
	indeg := make([]int, len(p.steps))
	next := make([][]int, len(p.steps))
	for i, w := range waits {
		indeg[i] = len(w)
		for _, j := range w {
			next[j] = append(next[j], i)
		}
	}
	ready := &minHeap{key: func(i int) int { return i }}
	for i := range p.steps {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, i)
		for _, k := range next[i] {
			if indeg[k]--; indeg[k] == 0 {
				heap.Push(ready, k)
			}
		}
	}
	if len(order) != len(p.steps) {
		var stuck []string
		for i := range p.steps {
			if indeg[i] > 0 {
				stuck = append(stuck, p.steps[i].ID)
			}
		}
		return nil, nil, fmt.Errorf("plan: steps wait for each other in a cycle: %s", strings.Join(stuck, ", "))
	}
	return waits, order, nil
}

// Prune drops what steps wait for, or go before, that is no step of the
// plan: a plan of some of the lab's nodes (a node started again) keeps
// their steps only, and the other nodes' are done already.
func (p *Plan) Prune() {
	known := func(ids []string) []string {
		var out []string
		for _, id := range ids {
			if _, ok := p.ids[id]; ok {
				out = append(out, id)
			}
		}
		return out
	}
	for _, s := range p.steps {
		s.After, s.Before = known(s.After), known(s.Before)
	}
}

// Check verifies that the plan can run: every step it names exists, no
// step is named twice, and nothing waits for itself through others.
func (p *Plan) Check() error {
	_, _, err := p.graph()
	return err
}

// Status reports progress the way kind does: Start("Creating links") then
// End(true) or End(false).
type Status interface {
	Start(msg string)
	End(ok bool)
}

// Run runs the plan's steps, each as soon as what it waits for is done, at
// most workers at a time. The first failure cancels the steps not yet
// started; every failure is returned. Progress goes to st one group at a
// time, in the order the groups' first steps come in the plan's order.
// workers 1 runs the steps one by one in that order.
func (p *Plan) Run(ctx context.Context, workers int, st Status) error {
	waits, order, err := p.graph()
	if err != nil {
		return err
	}
	if len(p.steps) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Groups, in the order their first step comes.
	type group struct {
		title string
		left  int
		ok    bool
		done  chan struct{}
	}
	var groups []*group
	byTitle := map[string]*group{}
	for _, i := range order {
		t := p.steps[i].Group
		g := byTitle[t]
		if g == nil {
			g = &group{title: t, ok: true, done: make(chan struct{})}
			byTitle[t] = g
			groups = append(groups, g)
		}
		g.left++
	}
	shown := make(chan struct{})
	go func() {
		defer close(shown)
		for _, g := range groups {
			if g.title != "" {
				st.Start(g.title)
			}
			<-g.done
			if g.title != "" {
				st.End(g.ok)
			}
			if !g.ok {
				return
			}
		}
	}()

	var (
		mu      sync.Mutex
		errs    []error
		pending = make([]int, len(p.steps))
		left    = len(p.steps)
		rank    = make([]int, len(p.steps))
	)
	for r, i := range order {
		rank[i] = r
	}
	next := make([][]int, len(p.steps))
	for i, w := range waits {
		pending[i] = len(w)
		for _, j := range w {
			next[j] = append(next[j], i)
		}
	}
	// Ready steps wait in a queue kept in plan order (a heap: a plan of
	// 10,000 nodes has as many ready at once), so that with one worker the
	// run is the plan's order exactly.
	queue := &minHeap{key: func(i int) int { return rank[i] }}
	cond := sync.NewCond(&mu)
	for _, i := range order {
		if pending[i] == 0 {
			heap.Push(queue, i)
		}
	}
	finish := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		g := byTitle[p.steps[i].Group]
		if err != nil {
			errs = append(errs, err)
			g.ok = false
			cancel()
		}
		g.left--
		if g.left == 0 {
			close(g.done)
		}
		left--
		for _, k := range next[i] {
			if pending[k]--; pending[k] == 0 {
				heap.Push(queue, k)
			}
		}
		cond.Broadcast()
	}
	var wg sync.WaitGroup
	for range max(1, min(workers, len(p.steps))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				for queue.Len() == 0 && left > 0 && ctx.Err() == nil {
					cond.Wait()
				}
				if left == 0 || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				i := heap.Pop(queue).(int)
				mu.Unlock()
				s := p.steps[i]
				var err error
				if s.Run != nil {
					err = s.Run(ctx)
				}
				finish(i, err)
			}
		}()
	}
	// A cancelled context must wake the workers waiting for work.
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	wg.Wait()
	stop()
	// Groups that never finished (the run was cut short) end as failed.
	for _, g := range groups {
		select {
		case <-g.done:
		default:
			g.ok = false
			close(g.done)
		}
	}
	<-shown
	if len(errs) == 0 && ctx.Err() != nil && left > 0 {
		return context.Cause(ctx)
	}
	return errors.Join(errs...)
}

// minHeap is a heap of step indexes, smallest key first.
type minHeap struct {
	items []int
	key   func(int) int
}

func (h *minHeap) Len() int           { return len(h.items) }
func (h *minHeap) Less(a, b int) bool { return h.key(h.items[a]) < h.key(h.items[b]) }
func (h *minHeap) Swap(a, b int)      { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *minHeap) Push(x any)         { h.items = append(h.items, x.(int)) }
func (h *minHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}
