package ipsec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// The kernel features tunnels need.
var (
	KernelESP = &kernel.Feature{Name: "ESP with AES-GCM", Option: "CONFIG_INET_ESP, CONFIG_CRYPTO_GCM", Probe: func(h *netlink.Handle) error {
		// The same state `ip xfrm state add ... aead 'rfc4106(gcm(aes))'`
		// makes: it needs both ESP and the GCM template.
		return h.XfrmStateAdd(&netlink.XfrmState{
			Src: net.ParseIP("192.0.2.1"), Dst: net.ParseIP("192.0.2.2"),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Spi: 0x100,
			Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: make([]byte, 20), ICVLen: 128},
		})
	}}
	KernelXfrmi = &kernel.Feature{Name: "XFRM interfaces", Option: "CONFIG_XFRM_INTERFACE", Probe: func(h *netlink.Handle) error {
		return h.LinkAdd(&netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: kernel.ProbeName("px")}, Ifid: 7})
	}}
)

// KernelFeatures implements feature.KernelHook.
func (Feature) KernelFeatures() []*kernel.Feature { return []*kernel.Feature{KernelESP, KernelXfrmi} }

// Needs implements feature.KernelHook: ESP for every tunnel, XFRM
// interfaces for route-based ones.
func (Feature) Needs(t *topo.Topology) []kernel.Need {
	where := map[*kernel.Feature][]string{}
	for _, tu := range Tunnels(t) {
		where[KernelESP] = append(where[KernelESP], "tunnel "+tu.Name)
	}
	for _, n := range t.Nodes {
		for _, i := range n.Interfaces {
			if i.Type == TypeXfrm {
				where[KernelXfrmi] = append(where[KernelXfrmi], n.Name+":"+i.Name)
			}
		}
	}
	return kernel.Needs(where, KernelXfrmi, KernelESP)
}

// MakeDevice implements feature.DeviceHook: a route-based tunnel's xfrm
// interface, whatever keys the tunnel, so that it has its addresses before
// anything routes into it: ip link add NAME type xfrm if_id N.
func (Feature) MakeDevice(_ context.Context, n *nodes.Node, i *topo.Interface) error {
	tu := OfInterface(i)
	return n.Netlink(fmt.Sprintf("link add %s type xfrm if_id %d", i.Name, tu.IfID), func(h *netlink.Handle) error {
		x := &netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: i.Name}, Ifid: tu.IfID}
		if err := h.LinkAdd(x); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("tunnel %s: create xfrm interface %s (if_id %d): %w", tu.Name, i.Name, tu.IfID, err)
		}
		return nil
	})
}

// Steps implements feature.StepsHook: each node's ends of static-key
// tunnels, once its interfaces are up: the SAs of both directions and the
// policies. (An IKE tunnel's are strongSwan's: package ike.)
func (Feature) Steps(d feature.Deployment) []feature.Step {
	var out []feature.Step
	for _, n := range d.Topology().Nodes {
		var ends []*Tunnel
		for _, tu := range Tunnels(d.Topology()) {
			if _, _, ok := tu.End(n.Name); ok && tu.Static() {
				ends = append(ends, tu)
			}
		}
		if len(ends) == 0 {
			continue
		}
		node := n.Name
		out = append(out, feature.Step{ID: "ipsec/sa/" + node, Group: "Configuring interfaces, addresses and routes", Node: node,
			After: []string{feature.InterfacesStep(node)},
			Run: func(context.Context) error {
				rn := d.Node(node)
				for _, tu := range ends {
					x := tu.XFRM(node)
					if err := rn.Netlink(saCommand(x), func(h *netlink.Handle) error { return xfrm.Apply(h, x) }); err != nil {
						return fmt.Errorf("node %s: %w", node, err)
					}
				}
				return nil
			}})
	}
	return out
}

// saCommand is what xfrm.Apply does, as ip xfrm would: never the keys.
func saCommand(x xfrm.Tunnel) string {
	sel := ""
	if x.Mode == xfrm.RouteBased {
		sel = fmt.Sprintf(" if_id %d", x.IfID)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "xfrm state add src %s dst %s proto esp spi %#x reqid %d mode tunnel%s %s [key]\n", x.Local, x.Remote, x.SPIOut, x.ReqID, sel, x.Algorithm)
	fmt.Fprintf(&b, "xfrm state add src %s dst %s proto esp spi %#x reqid %d mode tunnel%s %s [key]\n", x.Remote, x.Local, x.SPIIn, x.ReqID, sel, x.Algorithm)
	if x.Mode == xfrm.RouteBased {
		fmt.Fprintf(&b, "xfrm policy add dir out tmpl src %s dst %s proto esp reqid %d mode tunnel%s\n", x.Local, x.Remote, x.ReqID, sel)
		fmt.Fprintf(&b, "xfrm policy add dir in tmpl src %s dst %s proto esp reqid %d mode tunnel%s", x.Remote, x.Local, x.ReqID, sel)
		return b.String()
	}
	for _, l := range x.LocalNets {
		for _, r := range x.RemoteNets {
			fmt.Fprintf(&b, "xfrm policy add src %s dst %s dir out tmpl src %s dst %s proto esp reqid %d mode tunnel\n", l, r, x.Local, x.Remote, x.ReqID)
			fmt.Fprintf(&b, "xfrm policy add src %s dst %s dir in tmpl src %s dst %s proto esp reqid %d mode tunnel\n", r, l, x.Remote, x.Local, x.ReqID)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// End is what the feature records of one tunnel end: the tunnel as
// package xfrm describes it, never its keys.
type End struct {
	Keying string      `json:"keying"` // static or ike
	XFRM   xfrm.Tunnel `json:"xfrm"`   // its keys are never marshaled
}

// State implements feature.StateHook: the node's tunnel ends.
func (Feature) State(t *topo.Topology, node string) any {
	var ends []End
	for _, tu := range Tunnels(t) {
		if _, _, ok := tu.End(node); ok {
			x := tu.XFRM(node)
			x.KeyOut, x.KeyIn = xfrm.Key{}, xfrm.Key{}
			ends = append(ends, End{Keying: tu.Keying(), XFRM: x})
		}
	}
	if len(ends) == 0 {
		return nil
	}
	return ends
}
