package xfrm

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// This file turns a validated, normalized Tunnel into the netlink structs
// Apply, Remove and Status hand the kernel. Nothing here talks to the kernel,
// so the tests check it field by field.

// Policy priorities: the kernel prefers the lowest number and, between
// equals, the policy added first. Subtracting the selector's prefix lengths
// lets a more specific policy win over a broader one, whatever the order
// tunnels are applied in.
const basePriority = 1000

// Wildcard selectors, per inner family.
var (
	any4 = netip.MustParsePrefix("0.0.0.0/0")
	any6 = netip.MustParsePrefix("::/0")
)

func anyOf(f Family) netip.Prefix {
	if f == IPv6 {
		return any6
	}
	return any4
}

func ipOf(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

func ipNetOf(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: ipOf(p.Addr()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func xfrmMark(m *Mark) *netlink.XfrmMark {
	if m == nil {
		return nil
	}
	mask := m.Mask
	if mask == 0 {
		mask = ^uint32(0)
	}
	return &netlink.XfrmMark{Value: m.Value, Mask: mask}
}

// buildStates returns the two SAs of a tunnel end, outbound then inbound,
// keys included.
func buildStates(t Tunnel) []netlink.XfrmState {
	return []netlink.XfrmState{buildState(t, true, true), buildState(t, false, true)}
}

// buildState returns one SA: outbound (src local, dst remote, SPIOut, KeyOut)
// or inbound (src remote, dst local, SPIIn, KeyIn). Without keys it is the
// SA's identity, enough to get or delete it.
func buildState(t Tunnel, out, withKeys bool) netlink.XfrmState {
	src, dst, spi, key := t.Local, t.Remote, t.SPIOut, t.KeyOut
	if !out {
		src, dst, spi, key = t.Remote, t.Local, t.SPIIn, t.KeyIn
	}
	s := netlink.XfrmState{
		Src:          ipOf(src),
		Dst:          ipOf(dst),
		Proto:        netlink.XFRM_PROTO_ESP,
		Mode:         netlink.XFRM_MODE_TUNNEL,
		Spi:          int(spi),
		Reqid:        int(t.ReqID),
		ReplayWindow: t.replayWindow(),
		// The selector only names the inner family: the policies select.
		// The kernel picks an outbound SA only for packets of its
		// selector's family; without one it would take the outer family.
		// (A family-less selector needs the XFRM_STATE_AF_UNSPEC flag, which
		// the netlink library cannot set.)
		Selector: &netlink.XfrmPolicy{Src: ipNetOf(anyOf(t.innerFamily())), Dst: ipNetOf(anyOf(t.innerFamily()))},
	}
	if t.Mode == RouteBased {
		s.Ifid = int(t.IfID)
	}
	if out {
		s.Mark = xfrmMark(t.Mark)
	}
	if t.Encap != nil {
		local, remote := t.Encap.ports()
		sport, dport := local, remote
		if !out {
			sport, dport = remote, local
		}
		s.Encap = &netlink.XfrmStateEncap{Type: netlink.XFRM_ENCAP_ESPINUDP, SrcPort: int(sport), DstPort: int(dport)}
	}
	if withKeys {
		if t.Algorithm.AEAD() {
			s.Aead = &netlink.XfrmStateAlgo{Name: kernelGCM, Key: key.Enc, ICVLen: icvBits}
		} else {
			s.Crypt = &netlink.XfrmStateAlgo{Name: kernelCBC, Key: key.Enc}
			s.Auth = &netlink.XfrmStateAlgo{Name: kernelHMAC256, Key: key.Auth, TruncateLen: icvBits}
		}
	}
	return s
}

// buildPolicies returns a tunnel end's policies, for each selector pair an
// outbound one (local side to remote side, template local->remote) and an
// inbound and a forward one (remote side to local side, template
// remote->local), all in tunnel mode. Route-based, the selectors are the
// wildcards of the inner family and every policy carries the if_id.
func buildPolicies(t Tunnel) []netlink.XfrmPolicy {
	any := anyOf(t.innerFamily())
	pairs := [][2]netip.Prefix{{any, any}}
	if t.Mode == PolicyBased {
		pairs = t.subnetPairs()
	}
	tmpl := func(src, dst netip.Addr) []netlink.XfrmPolicyTmpl {
		return []netlink.XfrmPolicyTmpl{{
			Src: ipOf(src), Dst: ipOf(dst),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: int(t.ReqID),
		}}
	}
	var ifid int
	if t.Mode == RouteBased {
		ifid = int(t.IfID)
	}
	var ps []netlink.XfrmPolicy
	for _, pair := range pairs {
		local, remote := pair[0], pair[1]
		prio := basePriority - local.Bits() - remote.Bits()
		ps = append(ps,
			netlink.XfrmPolicy{Src: ipNetOf(local), Dst: ipNetOf(remote), Dir: netlink.XFRM_DIR_OUT, Priority: prio,
				Ifid: ifid, Mark: xfrmMark(t.Mark), Tmpls: tmpl(t.Local, t.Remote)},
			netlink.XfrmPolicy{Src: ipNetOf(remote), Dst: ipNetOf(local), Dir: netlink.XFRM_DIR_IN, Priority: prio,
				Ifid: ifid, Tmpls: tmpl(t.Remote, t.Local)},
			netlink.XfrmPolicy{Src: ipNetOf(remote), Dst: ipNetOf(local), Dir: netlink.XFRM_DIR_FWD, Priority: prio,
				Ifid: ifid, Tmpls: tmpl(t.Remote, t.Local)},
		)
	}
	return ps
}

// buildLink returns the xfrm interface of a route-based tunnel.
func buildLink(t Tunnel, parentIndex int) *netlink.Xfrmi {
	return &netlink.Xfrmi{
		LinkAttrs: netlink.LinkAttrs{Name: t.Interface, ParentIndex: parentIndex, MTU: t.MTU},
		Ifid:      t.IfID,
	}
}

// dirName is a policy direction as `ip xfrm policy` prints it.
func dirName(d netlink.Dir) string {
	switch d {
	case netlink.XFRM_DIR_OUT:
		return "out"
	case netlink.XFRM_DIR_IN:
		return "in"
	case netlink.XFRM_DIR_FWD:
		return "fwd"
	}
	return d.String()
}
