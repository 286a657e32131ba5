package vlan

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// MakeDevice implements feature.DeviceHook: ip link add link PARENT name
// NAME type vlan protocol PROTO id ID.
func (Feature) MakeDevice(_ context.Context, n *nodes.Node, i *topo.Interface) error {
	t := Of(i)
	cmd := fmt.Sprintf("link add link %s name %s type vlan protocol %s id %d", i.Parent, i.Name, t.Protocol, t.ID)
	return n.Netlink(cmd, func(h *netlink.Handle) error {
		parent, err := h.LinkByName(i.Parent)
		if err != nil {
			return fmt.Errorf("find parent %s: %w", i.Parent, err)
		}
		proto := netlink.VLAN_PROTOCOL_8021Q
		if t.Protocol == Dot1ad {
			proto = netlink.VLAN_PROTOCOL_8021AD
		}
		v := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: i.Name, ParentIndex: parent.Attrs().Index}, VlanId: t.ID, VlanProtocol: proto}
		if err := h.LinkAdd(v); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create VLAN %d (%s) on %s: %w", t.ID, t.Protocol, i.Parent, err)
		}
		return nil
	})
}

// Detail implements feature.DetailHook: "802.1Q 100 on eth1".
func (Feature) Detail(l netlink.Link, byIndex map[int]string) (string, bool) {
	v, ok := l.(*netlink.Vlan)
	if !ok {
		return "", false
	}
	proto := Dot1Q
	if v.VlanProtocol == netlink.VLAN_PROTOCOL_8021AD {
		proto = Dot1ad
	}
	return fmt.Sprintf("%s %d on %s", proto, v.VlanId, byIndex[v.Attrs().ParentIndex]), true
}

// GraphLabel implements feature.GraphHook: "vlan 100", or "vlan 10.100"
// for a C-tag inside an S-tag.
func (Feature) GraphLabel(n *topo.Node, i *topo.Interface) (string, bool) {
	if Of(i) == nil {
		return "", false
	}
	tags := ""
	for cur := i; cur != nil && Of(cur) != nil; cur = n.Interface(cur.Parent) {
		if tags == "" {
			tags = strconv.Itoa(Of(cur).ID)
		} else {
			tags = strconv.Itoa(Of(cur).ID) + "." + tags
		}
	}
	return "vlan " + tags, true
}
