package kernel_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest/tier"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestIntegrationHandlesReuseAndBound(t *testing.T) {
	tier.Integration(t)
	var names []string
	for i := range 20 {
		name := fmt.Sprintf("erlabtest-handles-%d.n%d", os.Getpid(), i)
		if err := kernel.NetNSAdd(name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kernel.NetNSDel(name) })
		names = append(names, name)
	}
	before := openFDs(t)
	c := &kernel.Handles{Max: 2}

	// The same namespace gets the same handle back while it is cached,
	// and the handle is bound to that namespace.
	h1, release, err := c.Get(names[0], unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := h1.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	release()
	h1again, release, err := c.Get(names[0], unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if h1again != h1 {
		t.Error("a second Get of a cached namespace opened a new handle")
	}
	fresh, err := kernel.RouteHandle(names[0])
	if err != nil {
		t.Fatal(err)
	}
	lo, err = fresh.LinkByName("lo")
	fresh.Close()
	if err != nil || lo.Attrs().Flags&unix.IFF_UP == 0 {
		t.Fatalf("lo in %s is not up after setting it up through the cached handle (err %v)", names[0], err)
	}

	// Handles in use are never closed; idle ones beyond Max are.
	var releases []func()
	for _, n := range names {
		_, rel, err := c.Get(n, unix.NETLINK_ROUTE)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, rel)
	}
	if got := openFDs(t) - before; got < len(names) {
		t.Errorf("%d handles in use hold %d descriptors; want at least one each", len(names), got)
	}
	for _, rel := range releases {
		rel()
	}
	if got := openFDs(t) - before; got > c.Max {
		t.Errorf("with every handle released, %d descriptors stay open; want at most Max = %d", got, c.Max)
	}
	h, release, err := c.Get(names[0], unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("lo"); err != nil {
		t.Errorf("a handle reopened after eviction does not work: %v", err)
	}
	c.Close() // closes the idle ones now, the one in use on release
	if got := openFDs(t) - before; got != 1 {
		t.Errorf("after Close with one handle in use, %d descriptors are open; want 1", got)
	}
	release()
	if got := openFDs(t) - before; got != 0 {
		t.Errorf("after Close and the last release, %d descriptors are open; want 0", got)
	}
}

func TestIntegrationWithHandleWithoutCache(t *testing.T) {
	tier.Integration(t)
	name := fmt.Sprintf("erlabtest-handles-%d.solo", os.Getpid())
	if err := kernel.NetNSAdd(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.NetNSDel(name) })
	before := openFDs(t)
	var links []netlink.Link
	if err := kernel.WithHandle(kernel.Real{}, name, func(h *netlink.Handle) (err error) {
		links, err = h.LinkList()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Errorf("links of a new namespace: %v; want lo alone", links)
	}
	if got := openFDs(t) - before; got > 0 {
		t.Errorf("WithHandle without a cache left %d descriptors open", got)
	}
}
