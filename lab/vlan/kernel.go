package vlan

import (
	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// The kernel features VLAN subinterfaces need: 802.1Q, and 802.1ad for
// QinQ S-tags (one option gives both).
var (
	KernelDot1Q  = &kernel.Feature{Name: "802.1Q VLAN", Option: "CONFIG_VLAN_8021Q", Probe: probe(netlink.VLAN_PROTOCOL_8021Q)}
	KernelDot1ad = &kernel.Feature{Name: "802.1ad VLAN (QinQ)", Option: "CONFIG_VLAN_8021Q", Probe: probe(netlink.VLAN_PROTOCOL_8021AD)}
)

func probe(proto netlink.VlanProtocol) func(h *netlink.Handle) error {
	return func(h *netlink.Handle) error {
		parent, err := kernel.ProbeParent(h)
		if err != nil {
			return err
		}
		return h.LinkAdd(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: kernel.ProbeName("pq"), ParentIndex: parent.Attrs().Index}, VlanId: 10, VlanProtocol: proto})
	}
}

// KernelFeatures implements feature.KernelHook.
func (Feature) KernelFeatures() []*kernel.Feature {
	return []*kernel.Feature{KernelDot1Q, KernelDot1ad}
}

// Needs implements feature.KernelHook: each subinterface needs its tag's.
func (Feature) Needs(t *topo.Topology) []kernel.Need {
	where := map[*kernel.Feature][]string{}
	for _, n := range t.Nodes {
		for _, i := range n.Interfaces {
			if tag := Of(i); tag != nil {
				f := KernelDot1Q
				if tag.Protocol == Dot1ad {
					f = KernelDot1ad
				}
				where[f] = append(where[f], n.Name+":"+i.Name)
			}
		}
	}
	return kernel.Needs(where, KernelDot1Q, KernelDot1ad)
}
