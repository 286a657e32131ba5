package lab

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// makeHostLink makes a host link: a veth pair from the node's interface to
// one in the host's namespace, which it brings up (with the link's MTU)
// and marks with whose it is. Destroy, and the node's stop, remove the
// pair (removeHostEnds); start makes it again.
func (d *deployment) makeHostLink(hl *topo.HostLink) error {
	n := d.nodes[hl.End.Node]
	host, err := kernel.HostNetNS()
	if err != nil {
		return err
	}
	cmd := fmt.Sprintf("link add %s type veth peer name %s netns 1", hl.End.Iface, hl.HostIface)
	if err := n.Netlink(cmd, func(h *netlink.Handle) error {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: hl.End.Iface},
			PeerName:      hl.HostIface,
			PeerNamespace: netlink.NsFd(host),
		}
		err := kernel.Retry(func() error { return h.LinkAdd(veth) })
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("host link %s: the host has an interface %s already: name the host's end otherwise, or remove it", hl.End, hl.HostIface)
		}
		if err != nil {
			return fmt.Errorf("create host link %s<->host:%s: %w", hl.End, hl.HostIface, err)
		}
		return nil
	}); err != nil {
		return err
	}
	up := "ip link set " + hl.HostIface + " up alias " + hostLinkAlias(d.t.Name, hl)
	if hl.MTU != 0 {
		up += fmt.Sprintf(" mtu %d", hl.MTU)
	}
	return d.opts.ops().Host(up, func() error {
		h, err := netlink.NewHandleAt(host)
		if err != nil {
			return err
		}
		defer h.Close()
		link, err := h.LinkByName(hl.HostIface)
		if err != nil {
			return fmt.Errorf("host link %s: the host's end %s: %w", hl.End, hl.HostIface, err)
		}
		if hl.MTU != 0 {
			if err := h.LinkSetMTU(link, hl.MTU); err != nil {
				return fmt.Errorf("host link %s: mtu %d on %s: %w", hl.End, hl.MTU, hl.HostIface, err)
			}
		}
		if err := h.LinkSetAlias(link, hostLinkAlias(d.t.Name, hl)); err != nil {
			return fmt.Errorf("host link %s: %w", hl.End, err)
		}
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("host link %s: set %s up: %w", hl.End, hl.HostIface, err)
		}
		return nil
	})
}

// hostLinkAlias marks the host's end of a host link, for whoever lists the
// host's interfaces: erlab:LAB:NODE:IFACE.
func hostLinkAlias(lab string, hl *topo.HostLink) string {
	return "erlab:" + lab + ":" + hl.End.Node + ":" + hl.End.Iface
}

// removeHostEnds deletes the host's ends of a lab's host links (of one
// node, or of all when node is ""), found by their marks: a namespace
// goes only once nothing holds it, and its veths with it, so stop and
// destroy do not wait for that. It says how many it removed.
func removeHostEnds(lab, node string) (int, error) {
	host, err := kernel.HostNetNS()
	if err != nil {
		return 0, err
	}
	h, err := netlink.NewHandleAt(host)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	links, err := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
	if err != nil {
		return 0, fmt.Errorf("list the host's interfaces: %w", err)
	}
	mark := "erlab:" + lab + ":"
	if node != "" {
		mark += node + ":"
	}
	var errs []error
	removed := 0
	for _, link := range links {
		if link.Type() != "veth" || !strings.HasPrefix(link.Attrs().Alias, mark) {
			continue
		}
		if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("remove the host's end %s: %w", link.Attrs().Name, err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
