package ike

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/strongswan/govici/vici"
)

// watcher receives a node's charon's events about a connection's SAs.
type watcher struct {
	c      *client
	conn   string
	events chan vici.Event
}

// watch subscribes to the named events (ike-updown, child-updown,
// ike-rekey, child-rekey) on a session of its own. Subscribe before
// looking at the SAs or starting an exchange: then no change between the
// look and the wait goes unnoticed.
func watch(ctx context.Context, n Node, conn string, events ...string) (*watcher, error) {
	c, err := dial(ctx, n)
	if err != nil {
		return nil, err
	}
	// A few events per exchange; govici drops those that find the
	// channel full, and the waits look at the SAs again anyway.
	w := &watcher{c: c, conn: conn, events: make(chan vici.Event, 64)}
	c.s.NotifyEvents(w.events)
	if err := c.s.Subscribe(events...); err != nil {
		c.Close()
		return nil, c.fail("subscribe "+strings.Join(events, " "), err)
	}
	return w, nil
}

// Close ends the watch; a nil watcher is fine.
func (w *watcher) Close() {
	if w != nil {
		w.c.Close()
	}
}

// pause waits until an event about the connection arrives, d passes or ctx
// ends. It returns false when charon closed the session (it stopped or
// restarted): the watch is over. A nil watcher only waits for d or ctx.
func (w *watcher) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var events <-chan vici.Event
	if w != nil {
		events = w.events
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return false
			}
			if w.about(ev) {
				return true
			}
		case <-t.C:
			return true
		case <-ctx.Done():
			return true
		}
	}
}

// about reports an event about the watched connection: its IKE SA section
// is named after the connection.
func (w *watcher) about(ev vici.Event) bool {
	_, ok := ev.Message.Get(w.conn).(*vici.Message)
	return ok
}

// wait waits for an event about the connection that match accepts, until
// ctx ends.
func (w *watcher) wait(ctx context.Context, match func(vici.Event) bool) error {
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return errors.New("charon closed the vici session (it stopped or restarted)")
			}
			if w.about(ev) && match(ev) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
