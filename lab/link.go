package lab

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
)

// LinkSet pulls (up=false) or restores an interface of a deployed node:
// ip -n NS link set IFACE down|up. On a veth end, the peer then loses (or
// regains) carrier, as the far side of a pulled cable does. The kernel
// flushes the routes of an interface set down (and of the VLANs on it);
// restoring it puts the node's static routes back.
func LinkSet(labName, node, iface string, up bool, opts Options) error {
	ns := NetNSName(labName, node)
	if !kernel.NetNSExists(ns) {
		return fmt.Errorf("lab %q has no node %q deployed", labName, node)
	}
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("node %s has no interface %s: %w", node, iface, err)
	}
	if up {
		err = h.LinkSetUp(link)
	} else {
		err = h.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("set %s:%s %s: %w", node, iface, map[bool]string{true: "up", false: "down"}[up], err)
	}
	if up {
		return restoreRoutes(h, labName, node, opts)
	}
	return nil
}

// restoreRoutes puts back the node's static routes. Routes through links
// that are still down cannot be added yet; they come back with their link.
func restoreRoutes(h *netlink.Handle, labName, node string, opts Options) error {
	st, err := opts.readState(labName)
	if err != nil {
		return fmt.Errorf("read lab state to restore routes: %w", err)
	}
	for _, n := range st.Nodes {
		if n.Name != node {
			continue
		}
		for _, r := range n.Routes {
			if err := addRoute(h, r); err != nil && !errors.Is(err, unix.ENETDOWN) && !errors.Is(err, unix.ENETUNREACH) {
				return fmt.Errorf("restore route %s on %s: %w", r.Dst, node, err)
			}
		}
	}
	return nil
}
