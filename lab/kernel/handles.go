package kernel

import (
	"container/list"
	"fmt"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
)

// Handles keeps netlink handles open for a while, one per namespace and
// set of netlink families, for a deploy whose steps on one node follow
// each other (make its links, configure them, wait for them): opening a
// handle enters the namespace twice, and a lab of thousands of nodes
// opens one per step otherwise. At most Max handles stay open when no
// step uses them, the least recently used closed first, so that the
// descriptors a deploy holds do not grow with the lab (a handle per node
// for the whole deploy ran out of them at 10,000 nodes).
//
// A handle from Get may be used by several goroutines at once (each
// request holds the socket's lock) and must not be kept past release.
type Handles struct {
	Max int

	mu    sync.Mutex
	byKey map[string]*cached
	idle  list.List // of *cached with no user, most recently used last
}

type cached struct {
	key   string
	h     *netlink.Handle
	users int
	elem  *list.Element // in idle, when users == 0
}

// Get returns a handle bound to the namespace for the families, and the
// function that releases it.
func (c *Handles) Get(ns string, families ...int) (*netlink.Handle, func(), error) {
	key := ns + "\x00" + fmt.Sprint(slices.Sorted(slices.Values(families)))
	c.mu.Lock()
	if e := c.byKey[key]; e != nil {
		defer c.mu.Unlock()
		return c.take(e)
	}
	c.mu.Unlock()
	h, err := handleIn(ns, families...)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byKey[key]; e != nil { // another step opened one meanwhile
		h.Close()
		return c.take(e)
	}
	if c.byKey == nil {
		c.byKey = map[string]*cached{}
	}
	e := &cached{key: key, h: h}
	c.byKey[key] = e
	return c.take(e)
}

// take lends a cached handle out (c.mu held).
func (c *Handles) take(e *cached) (*netlink.Handle, func(), error) {
	if e.elem != nil {
		c.idle.Remove(e.elem)
		e.elem = nil
	}
	e.users++
	return e.h, func() { c.release(e) }, nil
}

func (c *Handles) release(e *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.users--; e.users > 0 {
		return
	}
	if c.byKey[e.key] != e { // dropped by Close meanwhile
		e.h.Close()
		return
	}
	e.elem = c.idle.PushBack(e)
	for c.idle.Len() > max(c.Max, 0) {
		old := c.idle.Remove(c.idle.Front()).(*cached)
		delete(c.byKey, old.key)
		old.h.Close()
	}
}

// Close closes every handle; those in use are closed when released. The
// cache may be used again after.
func (c *Handles) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.byKey {
		c.drop(e)
	}
}

func (c *Handles) drop(e *cached) {
	delete(c.byKey, e.key)
	if e.elem != nil {
		c.idle.Remove(e.elem)
		e.elem = nil
	}
	if e.users == 0 {
		e.h.Close()
	}
}

// open returns the handle fn needs in the namespace: from the cache when
// there is one, else one of its own, closed when fn returns.
func (c *Handles) open(ns string, families ...int) (*netlink.Handle, func(), error) {
	if c != nil {
		return c.Get(ns, families...)
	}
	h, err := handleIn(ns, families...)
	if err != nil {
		return nil, nil, err
	}
	return h, h.Close, nil
}

// WithHandle runs fn with a netlink handle (rtnetlink) in the namespace,
// from ops's cache when ops is Real with one: for reads a step makes of
// what it changed (a wait's first look), which record nothing.
func WithHandle(ops Ops, ns string, fn func(h *netlink.Handle) error) error {
	var c *Handles
	if r, ok := ops.(Real); ok {
		c = r.Handles
	}
	h, release, err := c.open(ns, unixRoute)
	if err != nil {
		return err
	}
	defer release()
	return fn(h)
}
