package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/nodes"
)

// LinkSet pulls or restores a link of a deployed lab by name (see
// Lab.LinkSet).
func LinkSet(ctx context.Context, labName, node, iface string, up bool, opts Options) error {
	l, err := OpenName(labName, opts)
	if err != nil {
		return err
	}
	return l.LinkSet(ctx, node, iface, up)
}

// LinkSet pulls (up=false) or restores an interface of a deployed node:
// ip -n NS link set IFACE down|up. On a veth end, the peer then loses (or
// regains) carrier, as the far side of a pulled cable does. The kernel
// flushes the routes of an interface set down (and of the devices on it);
// restoring it puts the node's static routes back.
func (l *Lab) LinkSet(ctx context.Context, node, iface string, up bool) error {
	n, err := l.deployedNode(node)
	if err != nil {
		return err
	}
	h, err := kernel.RouteHandle(n.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := l.linkEnd(h, node, iface)
	if err != nil {
		return err
	}
	word := map[bool]string{true: "up", false: "down"}[up]
	l.Log().Info("link set", "node", node, "interface", iface, "state", word)
	if up {
		err = h.LinkSetUp(link)
	} else {
		err = h.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("set %s:%s %s: %w", node, iface, word, err)
	}
	l.Record(Event{Node: node, Kind: EventAction, Object: iface, State: "link-" + word, Detail: "erlab link " + word})
	if up {
		return l.restoreRoutes(h, node)
	}
	return nil
}

// restoreRoutes puts back the node's static routes. Routes through links
// that are still down cannot be added yet; they come back with their link.
func (l *Lab) restoreRoutes(h *netlink.Handle, node string) error {
	st, err := l.state()
	if err != nil {
		return fmt.Errorf("read lab state to restore routes: %w", err)
	}
	for _, n := range st.Nodes {
		if n.Name != node {
			continue
		}
		for _, r := range n.Routes {
			if err := kernel.RouteReplace(h, nodes.KernelRoute(r)); err != nil && !errors.Is(err, unix.ENETDOWN) && !errors.Is(err, unix.ENETUNREACH) {
				return fmt.Errorf("restore route %s on %s: %w", r.Dst, node, err)
			}
		}
	}
	return nil
}

// linkEnd finds the interface a link pull acts on: an end of one of the
// lab's links, or a device stacked on one. Any other interface — the
// loopback, a bridge — is no link to pull, and setting it down would break the node itself (its
// agent's API listens on lo).
func (l *Lab) linkEnd(h *netlink.Handle, node, iface string) (netlink.Link, error) {
	var ends []string
	if st, err := l.state(); err == nil {
		for _, lk := range st.Links {
			for _, e := range []string{lk.A, lk.B} {
				if n, _, _ := strings.Cut(e, ":"); n == node {
					ends = append(ends, e)
				}
			}
		}
	}
	notEnd := func() error {
		return &UnknownError{Lab: l.name, What: "link end", Name: node + ":" + iface, Known: ends}
	}
	link, err := h.LinkByName(iface)
	if err != nil {
		return nil, notEnd()
	}
	for cur := link; cur != nil; {
		if slices.Contains(ends, node+":"+cur.Attrs().Name) {
			return link, nil
		}
		// A stacked device's parent is in this namespace; a veth's
		// IFLA_LINK is its peer's index, in the other one.
		p := cur.Attrs().ParentIndex
		if cur.Type() == "veth" || p == 0 || p == cur.Attrs().Index {
			break
		}
		if cur, err = h.LinkByIndex(p); err != nil {
			break
		}
	}
	return nil, notEnd()
}
