package web

import (
	"sort"
	"sync"

	"github.com/erlab-dev/erlab/lab"
)

// hub fans the lab's events out to the pages watching, and keeps the
// latest state of each object, so that a page that opens later starts
// from what is, not from nothing.
type hub struct {
	mu     sync.Mutex
	subs   map[chan lab.Event]bool
	state  map[stateKey]lab.Event
	closed bool
}

type stateKey struct{ node, kind, object string }

// subscriberBuffer is how far a page may fall behind before it misses
// events (a stalled page must not stall the watch).
const subscriberBuffer = 1024

func newHub() *hub {
	return &hub{subs: map[chan lab.Event]bool{}, state: map[stateKey]lab.Event{}}
}

// publish keeps e as its object's state and sends it to every page.
func (h *hub) publish(e lab.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := stateKey{e.Node, e.Kind, e.Object}
	switch {
	case e.Kind == "drill" || e.Kind == lab.EventAction:
		// Not a state: what happened, once.
	case e.State == "removed" && e.Kind != lab.EventInterface, e.State == "gone", e.State == "cleared":
		// An interface removed stays a state: a link end that is not
		// there (its node stopped) is a link down.
		delete(h.state, k)
	default:
		s := e
		s.Initial = true
		h.state[k] = s
	}
	for c := range h.subs {
		select {
		case c <- e:
		default: // the page is too slow; it gets the next ones
		}
	}
}

// subscribe returns a new page's channel and the state now, in a stable
// order.
func (h *hub) subscribe() (chan lab.Event, []lab.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan lab.Event, subscriberBuffer)
	if h.closed {
		close(c)
	} else {
		h.subs[c] = true
	}
	snap := make([]lab.Event, 0, len(h.state))
	for _, e := range h.state {
		snap = append(snap, e)
	}
	sort.Slice(snap, func(i, j int) bool { return snap[i].Time.Before(snap[j].Time) })
	return c, snap
}

func (h *hub) unsubscribe(c chan lab.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[c] {
		delete(h.subs, c)
		close(c)
	}
}

// close ends every page's stream (the watch ended).
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.subs {
		close(c)
	}
	h.subs = map[chan lab.Event]bool{}
}
