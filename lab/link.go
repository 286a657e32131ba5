package lab

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
)

// LinkSet pulls (up=false) or restores an interface of a deployed node:
// ip -n NS link set IFACE down|up. On a veth end, the peer then loses (or
// regains) carrier, as the far side of a pulled cable does.
func LinkSet(labName, node, iface string, up bool) error {
	ns := NetNSName(labName, node)
	if !kernel.NetNSExists(ns) {
		return fmt.Errorf("lab %q has no node %q deployed", labName, node)
	}
	fd, err := kernel.Open(ns)
	if err != nil {
		return err
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
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
	return nil
}
