package nodes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	mdnetlink "github.com/mdlayher/netlink"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// BridgeDevice is the name of the bridge inside a bridge node's namespace.
const BridgeDevice = "br0"

// Bridge is a Linux bridge in a namespace of its own: a switch between the
// nodes linked to it (in ExpressRoute labs, the provider's layer-2 hop).
// Every link interface of the node is a port of the bridge.
type Bridge struct{}

// Name implements Kind.
func (Bridge) Name() string { return "bridge" }

// Check implements Kind. A port carries frames, not addresses; the bridge's
// own device is not addressable either, so that the node stays a pure
// layer-2 hop.
func (Bridge) Check(n *topo.Node, r topo.Reporter) {
	refuseContainerFields(n, r)
	for _, i := range n.Interfaces {
		if i.Name == BridgeDevice {
			r.Errorf(i.Pos, "node %q: %s is the bridge itself and cannot be declared", n.Name, BridgeDevice)
		}
		if len(i.Addresses) > 0 {
			r.Errorf(i.Pos, "node %q: interface %q: a bridge port has no addresses (a %s node is a layer-2 switch)", n.Name, i.Name, n.Kind)
		}
	}
	if len(n.Routes) > 0 {
		r.Errorf(n.Pos, "node %q: a bridge node has no routes (it switches, it does not route)", n.Name)
	}
}

// vlanAware reports whether any port of the bridge has VLANs.
func vlanAware(n *topo.Node) bool {
	for _, i := range n.Interfaces {
		if i.Access != 0 || len(i.Trunk) > 0 {
			return true
		}
	}
	return false
}

// Create makes the bridge: ip link add br0 type bridge; with VLANs on its
// ports, VLAN filtering on, no default VLAN, and the node's tag protocol:
// ip link add br0 type bridge vlan_filtering 1 vlan_protocol 802.1ad
// vlan_default_pvid 0. An 802.1ad bridge is a provider bridge: what enters
// an access (customer) port, tagged or not, leaves its trunks inside an S-tag.
func (Bridge) Create(_ context.Context, n *Node) error {
	if !vlanAware(n.Spec) {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeDevice}}
		if err := n.NL.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s in %s: %w", BridgeDevice, n.NetNS, err)
		}
		return nil
	}
	proto := uint16(unix.ETH_P_8021Q)
	if n.Spec.BridgeVLANProtocol == topo.Dot1ad {
		proto = unix.ETH_P_8021AD
	}
	// vishvananda/netlink sets no bridge VLAN protocol: this one message
	// is written by hand.
	ae := mdnetlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, BridgeDevice)
	ae.Nested(unix.IFLA_LINKINFO, func(li *mdnetlink.AttributeEncoder) error {
		li.String(unix.IFLA_INFO_KIND, "bridge")
		li.Nested(unix.IFLA_INFO_DATA, func(d *mdnetlink.AttributeEncoder) error {
			d.Uint8(unix.IFLA_BR_VLAN_FILTERING, 1)
			d.Bytes(unix.IFLA_BR_VLAN_PROTOCOL, binary.BigEndian.AppendUint16(nil, proto))
			d.Uint16(unix.IFLA_BR_VLAN_DEFAULT_PVID, 0)
			return nil
		})
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	return kernel.Do(n.NetNS, func() error {
		conn, err := mdnetlink.Dial(unix.NETLINK_ROUTE, nil)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Execute(mdnetlink.Message{
			Header: mdnetlink.Header{Type: unix.RTM_NEWLINK, Flags: mdnetlink.Request | mdnetlink.Acknowledge | mdnetlink.Create | mdnetlink.Excl},
			Data:   append(make([]byte, unix.SizeofIfInfomsg), attrs...),
		})
		if err != nil {
			return fmt.Errorf("create VLAN-aware bridge %s (%s) in %s: %w", BridgeDevice, n.Spec.BridgeVLANProtocol, n.NetNS, err)
		}
		return nil
	})
}

// Wire enslaves every link interface and brings the bridge up:
// ip link set PORT master br0.
func (Bridge) Wire(_ context.Context, n *Node) error {
	br, err := n.NL.LinkByName(BridgeDevice)
	if err != nil {
		return fmt.Errorf("find bridge %s in %s: %w", BridgeDevice, n.NetNS, err)
	}
	for _, i := range n.Spec.Interfaces {
		if i.Type != topo.TypeVeth {
			continue
		}
		port, err := n.NL.LinkByName(i.Name)
		if err != nil {
			return fmt.Errorf("find port %s: %w", i.Name, err)
		}
		if err := n.NL.LinkSetMasterByIndex(port, br.Attrs().Index); err != nil {
			return fmt.Errorf("add port %s to %s: %w", i.Name, BridgeDevice, err)
		}
		// bridge vlan add dev PORT vid V pvid untagged (access), or
		// bridge vlan add dev PORT vid V (each trunk VLAN).
		if i.Access != 0 {
			if err := n.NL.BridgeVlanAdd(port, uint16(i.Access), true, true, false, true); err != nil {
				return fmt.Errorf("port %s: access VLAN %d: %w", i.Name, i.Access, err)
			}
		}
		for _, v := range i.Trunk {
			if err := n.NL.BridgeVlanAdd(port, uint16(v), false, false, false, true); err != nil {
				return fmt.Errorf("port %s: trunk VLAN %d: %w", i.Name, v, err)
			}
		}
	}
	if err := n.NL.LinkSetUp(br); err != nil {
		return fmt.Errorf("set %s up: %w", BridgeDevice, err)
	}
	return nil
}
