package lab

import (
	"errors"
	"fmt"
	"slices"
	"strings"

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
	n, err := opts.deployedNode(labName, node)
	if err != nil {
		return err
	}
	h, err := kernel.RouteHandle(n.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := linkEnd(h, labName, node, iface, opts)
	if err != nil {
		return err
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

// linkEnd finds the interface a link pull acts on: an end of one of the
// lab's links, or a device stacked on one (a VLAN, a MACsec device). Any
// other interface — the loopback, a tunnel's interface, a bridge — is no
// link to pull, and setting it down would break the node itself (its
// agent's API listens on lo).
func linkEnd(h *netlink.Handle, labName, node, iface string, opts Options) (netlink.Link, error) {
	var ends []string
	if st, err := opts.readState(labName); err == nil {
		for _, l := range st.Links {
			for _, e := range []string{l.A, l.B} {
				if n, _, _ := strings.Cut(e, ":"); n == node {
					ends = append(ends, e)
				}
			}
		}
	}
	notEnd := func() error {
		return &UnknownError{Lab: labName, What: "link end", Name: node + ":" + iface, Known: ends}
	}
	link, err := h.LinkByName(iface)
	if err != nil {
		return nil, notEnd()
	}
	for cur := link; cur != nil; {
		if slices.Contains(ends, node+":"+cur.Attrs().Name) {
			return link, nil
		}
		// Only stacked devices have their parent in this namespace (a
		// veth's IFLA_LINK is its peer's index, in the other one).
		p := cur.Attrs().ParentIndex
		if (cur.Type() != "vlan" && cur.Type() != "macsec") || p == 0 {
			break
		}
		if cur, err = h.LinkByIndex(p); err != nil {
			break
		}
	}
	return nil, notEnd()
}
