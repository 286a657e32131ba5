package lab

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// configureTunnels installs a node's ends of its static-key IPsec tunnels:
// for each, the SAs of both directions, the policies and, route-based, the
// xfrm interface, which then gets its addresses and MTU like any other.
func configureTunnels(rn *nodes.Node, t *topo.Topology, n *topo.Node) error {
	var h *netlink.Handle
	for _, tu := range t.Tunnels {
		self, _, ok := tu.End(n.Name)
		if !ok || tu.IKE != nil {
			continue
		}
		if h == nil {
			var err error
			if h, err = kernel.XfrmHandle(rn.NetNS); err != nil {
				return err
			}
			defer h.Close()
		}
		if err := ipsec.Apply(h, tu.IPsec(n.Name)); err != nil {
			return err
		}
		if tu.Mode == ipsec.RouteBased {
			if err := configureInterface(rn.NL, n.Interface(self.Interface)); err != nil {
				return fmt.Errorf("tunnel %s: interface %s: %w", tu.Name, self.Interface, err)
			}
		}
	}
	return nil
}

// TunnelInfo is one end of an IPsec tunnel as inspect shows it: never a
// key.
type TunnelInfo struct {
	Name   string      `json:"name"`
	Keying string      `json:"keying"` // static or ike
	IPsec  *ipsec.Info `json:"ipsec,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// inspectTunnels reads a node's tunnel ends back from its kernel.
func inspectTunnels(ns string, tunnels []TunnelState) []TunnelInfo {
	if len(tunnels) == 0 {
		return nil
	}
	var out []TunnelInfo
	h, err := kernel.XfrmHandle(ns)
	if err != nil {
		for _, ts := range tunnels {
			out = append(out, TunnelInfo{Name: ts.IPsec.Name, Keying: ts.Keying, Error: err.Error()})
		}
		return out
	}
	defer h.Close()
	for _, ts := range tunnels {
		ti := TunnelInfo{Name: ts.IPsec.Name, Keying: ts.Keying}
		info, err := ipsec.Status(h, ts.IPsec)
		ti.IPsec = &info
		if err != nil {
			ti.Error = err.Error()
		}
		out = append(out, ti)
	}
	return out
}
