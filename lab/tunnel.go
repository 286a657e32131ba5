package lab

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/ike"
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
		if !ok {
			continue
		}
		if tu.IKE != nil {
			// strongSwan installs the SAs and policies; the interface is
			// ours, so that it has its addresses before anything routes.
			if tu.Mode == ipsec.RouteBased {
				x := &netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: self.Interface}, Ifid: tu.IfID}
				if err := rn.NL.LinkAdd(x); err != nil && !errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("tunnel %s: create xfrm interface %s (if_id %d): %w", tu.Name, self.Interface, tu.IfID, err)
				}
				if err := configureInterface(rn.NL, n.Interface(self.Interface)); err != nil {
					return fmt.Errorf("tunnel %s: interface %s: %w", tu.Name, self.Interface, err)
				}
			}
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

// ikeNode is what a node's charon runs: a connection per IKE tunnel end.
func ikeNode(t *topo.Topology, node, ns, dir string) ike.Node {
	in := ike.Node{NetNS: ns, Dir: dir}
	for _, tu := range t.Tunnels {
		self, peer, ok := tu.End(node)
		if !ok || tu.IKE == nil {
			continue
		}
		c := ike.Conn{Name: tu.Name, Local: self.Local, Remote: peer.Local, PSK: ike.Secret(tu.IKE.PSK), Algorithm: tu.Algorithm,
			Initiator: node == tu.A.Node, DPDDelay: tu.IKE.DPD, RekeyTime: tu.IKE.Rekey, LifeTime: tu.IKE.Lifetime, Encap: tu.NATT}
		if tu.Mode == ipsec.RouteBased {
			c.IfID = tu.IfID
		} else {
			c.LocalTS, c.RemoteTS = self.Nets, peer.Nets
		}
		in.Conns = append(in.Conns, c)
	}
	return in
}

// IKEEstablishTimeout bounds how long deploy waits for an IKE tunnel.
const IKEEstablishTimeout = 60 * time.Second

// TunnelInfo is one end of an IPsec tunnel as inspect shows it: never a
// key.
type TunnelInfo struct {
	Name   string `json:"name"`
	Keying string `json:"keying"` // static or ike
	// Mode is route or policy; Interface the route-based end's xfrm
	// interface, whatever keys the tunnel.
	Mode      string      `json:"mode"`
	Interface string      `json:"interface,omitempty"`
	IPsec  *ipsec.Info `json:"ipsec,omitempty"` // static keying: the SAs erlab installed
	// IKE is the connection's IKE and CHILD SAs as strongSwan reports them
	// (IKE keying).
	IKE   *ike.ConnInfo `json:"ike,omitempty"`
	Error string        `json:"error,omitempty"`
}

// inspectTunnels reads a node's tunnel ends back from its kernel.
func inspectTunnels(ns, dir string, tunnels []TunnelState) []TunnelInfo {
	if len(tunnels) == 0 {
		return nil
	}
	var out []TunnelInfo
	var ikeConns []ike.ConnInfo
	var ikeErr error
	in := ike.Node{NetNS: ns, Dir: dir}
	for _, ts := range tunnels {
		if ts.IKE != nil {
			in.Conns = append(in.Conns, *ts.IKE)
		}
	}
	if len(in.Conns) > 0 {
		ikeConns, ikeErr = ike.Status(in)
	}
	h, err := kernel.XfrmHandle(ns)
	if err != nil {
		for _, ts := range tunnels {
			out = append(out, TunnelInfo{Name: ts.IPsec.Name, Keying: ts.Keying, Error: err.Error()})
		}
		return out
	}
	defer h.Close()
	for _, ts := range tunnels {
		ti := TunnelInfo{Name: ts.IPsec.Name, Keying: ts.Keying, Mode: string(ts.IPsec.Mode), Interface: ts.IPsec.Interface}
		if ts.Keying == "ike" {
			if ikeErr != nil {
				ti.Error = ikeErr.Error()
			}
			for _, c := range ikeConns {
				if c.Name == ti.Name {
					ti.IKE = &c
				}
			}
			if ti.IKE == nil && ti.Error == "" {
				ti.Error = "strongSwan has no SA for it"
			}
			out = append(out, ti)
			continue
		}
		info, err := ipsec.Status(h, ts.IPsec)
		ti.IPsec = &info
		if err != nil {
			ti.Error = err.Error()
		}
		out = append(out, ti)
	}
	return out
}
