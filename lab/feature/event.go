package feature

import (
	"context"
	"time"
)

// Event is one change in a running lab, as erlab events prints it and
// erlab serve streams it. JSON lines of it are a contract (README,
// "Events"): fields are added, never renamed or removed.
type Event struct {
	Time time.Time `json:"time"`
	// Node is the node the change is in; empty for the lab's own (a
	// drill).
	Node string `json:"node,omitempty"`
	// Kind is what changed: interface, address, route, counters (the
	// engine's), a feature's own kinds (its WatchHook's), drill, action
	// (what erlab did, from the lab's journal).
	Kind string `json:"kind"`
	// Object is the thing that changed within the node: an interface, a
	// prefix, a neighbour's address, a tunnel, a drill.
	Object string `json:"object"`
	// State is its state now: up, down, no-carrier, added, removed,
	// established, idle, secured, step, pass, fail, ...
	State string `json:"state"`
	// Detail says more, for people: a route's next hop, a counter's
	// rates, a drill step's action.
	Detail string `json:"detail,omitempty"`
	// Initial marks the state as it was when the watch began (erlab
	// events --initial-state), not a change.
	Initial bool `json:"initial,omitempty"`
	// Values carries numbers a page or a script reads without parsing
	// Detail: a counter's rx_pps and tx_pps, a session's received and
	// accepted prefixes.
	Values map[string]float64 `json:"values,omitempty"`
}

// WatchHook is a feature's part of erlab events: it reports its objects'
// changes (a routing session, a keying protocol's state) to w until ctx
// is done.
// With w.Initial, it first reports what each is now. A feature without a
// kernel notification for its state polls; its events then say when it
// saw the change, which may be up to its poll interval after it happened.
type WatchHook interface {
	Watch(ctx context.Context, l Lab, w Watcher) error
}

// Watcher is where a WatchHook reports.
type Watcher struct {
	// Initial asks for every object's state first, marked Initial.
	Initial bool
	// Emit reports an event.
	Emit func(Event)
	// Ready, when set, is told once the hook has read its objects' state,
	// which later changes are told against: a change after it is
	// reported. A hook that returns is taken as ready too.
	Ready func()
}

// ready tells w's Ready, if it has one.
func (w Watcher) ready() {
	if w.Ready != nil {
		w.Ready()
	}
}

// Poll reports the changes of a state that has no notification of its
// own: every interval it reads the objects' current events, and emits
// those whose state or detail differ from what the last read gave (all of
// them, marked Initial, on the first read when w.Initial is set), and for
// an object the last read had and this one lacks, the same event with
// State gone. The first read done, it tells w it is ready. It returns
// when ctx is done.
func Poll(ctx context.Context, every time.Duration, gone string, w Watcher, read func(context.Context) []Event) {
	type key struct{ node, kind, object string }
	last := map[key]Event{}
	first := true
	for {
		now := map[key]Event{}
		evs := read(ctx)
		if ctx.Err() != nil {
			return // a read cut short says nothing of what is gone
		}
		for _, e := range evs {
			k := key{e.Node, e.Kind, e.Object}
			now[k] = e
			old, seen := last[k]
			switch {
			case first && !w.Initial:
			case first:
				e.Initial = true
				w.Emit(e)
			case !seen || old.State != e.State || old.Detail != e.Detail:
				w.Emit(e)
			}
		}
		if !first {
			for k, e := range last {
				if _, ok := now[k]; !ok {
					e.State, e.Detail, e.Values, e.Time = gone, "", nil, time.Time{}
					w.Emit(e)
				}
			}
		} else {
			w.ready()
		}
		last, first = now, false
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// PollNodes is Poll over the nodes of the lab that run: read gives one
// node's events (nil for a node the feature has nothing on), and a stopped
// node gives none, so that its objects are reported gone.
func PollNodes(ctx context.Context, l Lab, every time.Duration, gone string, w Watcher, read func(ctx context.Context, node string) []Event) {
	Poll(ctx, every, gone, w, func(ctx context.Context) []Event {
		var out []Event
		for _, node := range l.Nodes() {
			if !l.Stopped(node) {
				out = append(out, read(ctx, node)...)
			}
		}
		return out
	})
}
