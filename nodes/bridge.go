package nodes

import (
	"context"
	"errors"
	"fmt"

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

// Prepare implements Preparer: a bridge node is a switch.
func (Bridge) Prepare(n *topo.Node) { n.Switch = true }

// Needs implements Needer.
func (Bridge) Needs(*topo.Node) []*kernel.Feature { return []*kernel.Feature{kernel.Bridge} }

// Shape implements Shaper.
func (Bridge) Shape() string { return "switch" }

// Create makes the bridge: ip link add br0 type bridge. (A VLAN-aware
// bridge is the bridge VLAN feature's: it turns VLAN filtering on before
// the ports join.)
func (Bridge) Create(_ context.Context, n *Node) error {
	return n.Netlink("link add "+BridgeDevice+" type bridge", func(h *netlink.Handle) error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeDevice}}
		if err := h.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s in %s: %w", BridgeDevice, n.NetNS, err)
		}
		return nil
	})
}

// Wire enslaves every link interface and brings the bridge up:
// ip link set PORT master br0.
func (Bridge) Wire(_ context.Context, n *Node) error {
	for _, i := range n.Spec.Interfaces {
		if i.Type != topo.TypeVeth && i.Type != topo.TypeHostVeth {
			continue
		}
		if err := n.Netlink("link set "+i.Name+" master "+BridgeDevice, func(h *netlink.Handle) error {
			br, err := h.LinkByName(BridgeDevice)
			if err != nil {
				return fmt.Errorf("find bridge %s in %s: %w", BridgeDevice, n.NetNS, err)
			}
			port, err := h.LinkByName(i.Name)
			if err != nil {
				return fmt.Errorf("find port %s: %w", i.Name, err)
			}
			if err := h.LinkSetMasterByIndex(port, br.Attrs().Index); err != nil {
				return fmt.Errorf("add port %s to %s: %w", i.Name, BridgeDevice, err)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return n.Netlink("link set "+BridgeDevice+" up", func(h *netlink.Handle) error {
		br, err := h.LinkByName(BridgeDevice)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(br); err != nil {
			return fmt.Errorf("set %s up: %w", BridgeDevice, err)
		}
		return nil
	})
}
