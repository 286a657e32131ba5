package bridgevlan

import (
	"context"
	"encoding/binary"
	"fmt"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/lab/vlan"
	"github.com/erlab-dev/erlab/nodes"
)

// KernelBridgeVLAN is the kernel feature a VLAN-aware bridge needs.
var KernelBridgeVLAN = &kernel.Feature{Name: "bridge VLAN filtering", Option: "CONFIG_BRIDGE_VLAN_FILTERING", Probe: func(h *netlink.Handle) error {
	on := true
	return h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: kernel.ProbeName("pb")}, VlanFiltering: &on})
}}

// KernelFeatures implements feature.KernelHook.
func (Feature) KernelFeatures() []*kernel.Feature { return []*kernel.Feature{KernelBridgeVLAN} }

// Needs implements feature.KernelHook: each VLAN port needs VLAN
// filtering, and on a provider bridge 802.1ad too.
func (Feature) Needs(t *topo.Topology) []kernel.Need {
	where := map[*kernel.Feature][]string{}
	for _, n := range t.Nodes {
		b := OfNode(n)
		if b == nil {
			continue
		}
		for _, i := range n.Interfaces {
			if OfPort(i) == nil {
				continue
			}
			where[KernelBridgeVLAN] = append(where[KernelBridgeVLAN], n.Name+":"+i.Name)
			if b.Protocol == vlan.Dot1ad {
				where[vlan.KernelDot1ad] = append(where[vlan.KernelDot1ad], n.Name+":"+i.Name)
			}
		}
	}
	return kernel.Needs(where, KernelBridgeVLAN, vlan.KernelDot1ad)
}

// Steps implements feature.StepsHook: on each VLAN-aware switch, VLAN
// filtering before the ports join (so that they get no default VLAN), and
// the ports' VLANs once they have.
func (Feature) Steps(d feature.Deployment) []feature.Step {
	var out []feature.Step
	for _, spec := range d.Topology().Nodes {
		b := OfNode(spec)
		if b == nil {
			continue
		}
		node := spec.Name
		out = append(out,
			feature.Step{ID: "bridge-vlan/filter/" + node, Group: "Creating node devices", Node: node,
				After: []string{feature.DevicesStep(node)}, Before: []string{feature.WiredStep(node)},
				Run: func(context.Context) error { return filter(d.Node(node), b.Protocol) }},
			feature.Step{ID: "bridge-vlan/ports/" + node, Group: "Wiring bridges", Node: node,
				After: []string{feature.WiredStep(node)}, Before: []string{feature.UpStep(node)},
				Run: func(context.Context) error { return ports(d.Node(node)) }},
		)
	}
	return out
}

// filter makes the node's bridge VLAN-aware, with the node's tag protocol
// and no default VLAN: ip link set br0 type bridge vlan_filtering 1
// vlan_protocol 802.1ad vlan_default_pvid 0. An 802.1ad bridge is a
// provider bridge: what enters an access (customer) port, tagged or not,
// leaves its trunks inside an S-tag.
func filter(n *nodes.Node, proto vlan.Protocol) error {
	eth := uint16(unix.ETH_P_8021Q)
	if proto == vlan.Dot1ad {
		eth = unix.ETH_P_8021AD
	}
	cmd := fmt.Sprintf("link set %s type bridge vlan_filtering 1 vlan_protocol %s vlan_default_pvid 0", nodes.BridgeDevice, proto)
	return n.Netlink(cmd, func(*netlink.Handle) error {
		// vishvananda/netlink sets no bridge VLAN protocol: this one
		// message is written by hand, on a socket of the namespace.
		ae := mdnetlink.NewAttributeEncoder()
		ae.String(unix.IFLA_IFNAME, nodes.BridgeDevice)
		ae.Nested(unix.IFLA_LINKINFO, func(li *mdnetlink.AttributeEncoder) error {
			li.String(unix.IFLA_INFO_KIND, "bridge")
			li.Nested(unix.IFLA_INFO_DATA, func(d *mdnetlink.AttributeEncoder) error {
				d.Uint8(unix.IFLA_BR_VLAN_FILTERING, 1)
				d.Bytes(unix.IFLA_BR_VLAN_PROTOCOL, binary.BigEndian.AppendUint16(nil, eth))
				d.Uint16(unix.IFLA_BR_VLAN_DEFAULT_PVID, 0)
				return nil
			})
			return nil
		})
		attrs, err := ae.Encode()
		if err != nil {
			return err
		}
		fd, err := kernel.Open(n.NetNS)
		if err != nil {
			return err
		}
		defer fd.Close()
		conn, err := mdnetlink.Dial(unix.NETLINK_ROUTE, &mdnetlink.Config{NetNS: int(fd)})
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.Execute(mdnetlink.Message{
			Header: mdnetlink.Header{Type: unix.RTM_NEWLINK, Flags: mdnetlink.Request | mdnetlink.Acknowledge},
			Data:   append(make([]byte, unix.SizeofIfInfomsg), attrs...),
		}); err != nil {
			return fmt.Errorf("make %s VLAN-aware (%s) in %s: %w", nodes.BridgeDevice, proto, n.NetNS, err)
		}
		return nil
	})
}

// ports gives each port its VLANs: bridge vlan add dev PORT vid V pvid
// untagged (access), or bridge vlan add dev PORT vid V (each trunk VLAN).
func ports(n *nodes.Node) error {
	for _, i := range n.Spec.Interfaces {
		p := OfPort(i)
		if p == nil {
			continue
		}
		type add struct {
			vid    int
			access bool
		}
		var adds []add
		if p.Access != 0 {
			adds = append(adds, add{p.Access, true})
		}
		for _, v := range p.Trunk {
			adds = append(adds, add{v, false})
		}
		for _, a := range adds {
			cmd := fmt.Sprintf("bridge vlan add dev %s vid %d", i.Name, a.vid)
			if a.access {
				cmd += " pvid untagged"
			}
			if err := n.Netlink(cmd, func(h *netlink.Handle) error {
				port, err := h.LinkByName(i.Name)
				if err != nil {
					return fmt.Errorf("find port %s: %w", i.Name, err)
				}
				if err := h.BridgeVlanAdd(port, uint16(a.vid), a.access, a.access, false, true); err != nil {
					return fmt.Errorf("port %s: VLAN %d: %w", i.Name, a.vid, err)
				}
				return nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}
