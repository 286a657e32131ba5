package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/erlab-dev/erlab/lab/ike"
	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// verifyTunnel checks one IPsec tunnel on the wire: a flow carrying a
// unique marker goes from one end's inner address to the other's while the
// sender's underlay — the interface its route to the peer's outer address
// leaves by — is captured. (The sender's egress, not the receiver's port:
// the kernel hands a decrypted packet of a policy-based tunnel back to the
// device the ESP came in on, where a capture would see it in clear.) The
// capture keeps outgoing packets only. The tunnel passes only if every packet of the flow left as ESP (protocol 50,
// or in UDP 4500 with NAT-T) between the outer addresses with the SA's SPI,
// nothing else crossed in clear between them, the marker appears nowhere,
// and both ends' SA counters moved as much as the flow.
func verifyTunnel(ctx context.Context, t *topo.Topology, tu *topo.Tunnel, opts Options) (EncryptionCheck, error) {
	keying := "static"
	if tu.IKE != nil {
		keying = "IKEv2"
	}
	c := EncryptionCheck{Link: fmt.Sprintf("tunnel %s (%s — %s)", tu.Name, tu.A.Node, tu.B.Node),
		Declared: fmt.Sprintf("ipsec %s (%s)", tu.Algorithm, keying), Checked: true}
	src, dst, ok := tunnelFlowAddrs(t, tu)
	from := tu.A.Node
	if tu.VerifyNode != "" {
		from, dst, src, ok = tu.VerifyNode, tu.VerifyDst, tu.VerifySrc, true
		if !src.IsValid() {
			var err error
			if src, _, err = ProbeTarget(t, from); err != nil {
				return c, err
			}
		}
	}
	if !ok {
		c.Reason = "no inner addresses to send a flow through: give the tunnel interfaces addresses in one subnet (route-based), or the nodes addresses in the tunnel's nets (policy-based), or the tunnel a verify: {from, to}"
		return c, nil
	}
	nsS := NetNSName(t.Name, tu.A.Node)
	nsFlow := NetNSName(t.Name, from)
	egress, err := egressOf(nsS, tu.B.Local)
	if err != nil {
		return c, err
	}
	c.Layers = "ESP"
	if n := t.Node(tu.A.Node); n != nil {
		if i := n.Interface(egress); i != nil && i.Type == topo.TypeMACsec || i != nil && i.Type == topo.TypeVLAN && macsecBelow(n, i) {
			c.Layers = "ESP inside MACsec (the link's own check covers the MACsec layer)"
		}
	}
	before, err := tunnelCounters(t, tu, opts)
	if err != nil {
		return c, err
	}
	c.SPI = fmt.Sprintf("%#x", before.spi)
	pcap := filepath.Join(opts.labDir(t.Name), fmt.Sprintf("verify-tunnel-%s.pcap", tu.Name))
	c.Capture = pcap
	// Outgoing packets only: a policy-based tunnel's decrypted replies
	// (ICMP errors quoting the marker) come back on this device too.
	tag, sent, frames, err := markedFlow(ctx, nsS, egress, pcap, nsFlow, src, dst, "-Q", "out")
	c.Sent = sent
	if err != nil {
		return c, err
	}
	c.Frames = len(frames)
	for _, f := range frames {
		if bytes.Contains(f, tag) {
			c.MarkerHits++
		}
		p, ok := parseIP(f)
		if !ok || !(p.src == tu.A.Local && p.dst == tu.B.Local) {
			continue
		}
		switch {
		case p.proto == 50 && len(p.payload) >= 4:
			if binary.BigEndian.Uint32(p.payload) == before.spi {
				c.ESPPackets++
			}
		case p.proto == 17 && len(p.payload) >= 4 && (p.dport == 4500 || p.dport == 500):
			// ESP in UDP (the SPI right after the UDP header), or IKE (on
			// 4500 after a zero non-ESP marker).
			if spi := binary.BigEndian.Uint32(p.payload); p.dport == 4500 && spi == before.spi {
				c.ESPPackets++
			}
		default:
			c.ClearFrames++
		}
	}
	after, err := tunnelCounters(t, tu, opts)
	if err != nil {
		return c, err
	}
	c.EncryptedOut, c.ValidatedIn = after.out-before.out, after.in-before.in
	switch {
	case c.MarkerHits > 0:
		c.Reason = fmt.Sprintf("the marker crossed in clear in %d packets", c.MarkerHits)
	case c.ClearFrames > 0:
		c.Reason = fmt.Sprintf("%d packets between %s and %s were not ESP", c.ClearFrames, tu.A.Local, tu.B.Local)
	case c.ESPPackets < c.Sent:
		c.Reason = fmt.Sprintf("%d ESP packets with SPI %s for %d sent: the flow went another way", c.ESPPackets, c.SPI, c.Sent)
	case c.EncryptedOut < uint64(c.Sent) || c.ValidatedIn < uint64(c.Sent):
		c.Reason = fmt.Sprintf("SA counters moved less than the flow: %d out, %d in, for %d sent", c.EncryptedOut, c.ValidatedIn, c.Sent)
	default:
		c.Pass = true
		c.Reason = fmt.Sprintf("all %d flow packets left as ESP (SPI %s), the marker nowhere in %d packets", c.Sent, c.SPI, c.Frames)
	}
	return c, nil
}

// macsecBelow says whether a MACsec device lies under an interface.
func macsecBelow(n *topo.Node, i *topo.Interface) bool {
	for cur := n.Interface(i.Parent); cur != nil; cur = n.Interface(cur.Parent) {
		if cur.Type == topo.TypeMACsec {
			return true
		}
	}
	return false
}

// tunnelFlowAddrs finds an inner source on the first end and an inner
// destination on the second.
func tunnelFlowAddrs(t *topo.Topology, tu *topo.Tunnel) (src, dst netip.Addr, ok bool) {
	a, b := t.Node(tu.A.Node), t.Node(tu.B.Node)
	if tu.Mode == ipsec.RouteBased {
		for _, sp := range a.Interface(tu.A.Interface).Addresses {
			for _, dp := range b.Interface(tu.B.Interface).Addresses {
				if sp.Masked() == dp.Masked() {
					return sp.Addr(), dp.Addr(), true
				}
			}
		}
		return src, dst, false
	}
	within := func(n *topo.Node, nets []netip.Prefix) (netip.Addr, bool) {
		for _, i := range n.Interfaces {
			for _, p := range i.Addresses {
				for _, net := range nets {
					if net.Contains(p.Addr()) {
						return p.Addr(), true
					}
				}
			}
		}
		return netip.Addr{}, false
	}
	src, okS := within(a, tu.A.Nets)
	dst, okD := within(b, tu.B.Nets)
	return src, dst, okS && okD && src.Is4() == dst.Is4()
}

// egressOf names the interface a namespace's route to dst leaves by.
func egressOf(ns string, dst netip.Addr) (string, error) {
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return "", err
	}
	defer h.Close()
	routes, err := h.RouteGet(net.IP(dst.AsSlice()))
	if err != nil || len(routes) == 0 {
		return "", fmt.Errorf("no route to %s in %s: %v", dst, ns, err)
	}
	l, err := h.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "", err
	}
	return l.Attrs().Name, nil
}

type saCounters struct {
	spi     uint32 // of the first end's outbound SA
	out, in uint64 // packets: the first end's out, the second's in
}

func tunnelCounters(t *topo.Topology, tu *topo.Tunnel, opts Options) (saCounters, error) {
	var c saCounters
	for k, node := range []string{tu.A.Node, tu.B.Node} {
		ns := NetNSName(t.Name, node)
		if tu.IKE != nil {
			// SPIs are negotiated: ask strongSwan for the CHILD SA in use.
			conns, err := ike.Status(ikeNode(t, node, ns, filepath.Join(opts.labDir(t.Name), "nodes", node)))
			if err != nil {
				return c, fmt.Errorf("tunnel %s on %s: %w", tu.Name, node, err)
			}
			var child *ike.ChildInfo
			for _, ci := range conns {
				if ci.Name == tu.Name && len(ci.IKE) > 0 && len(ci.IKE[0].Children) > 0 {
					child = &ci.IKE[0].Children[0]
				}
			}
			if child == nil {
				return c, fmt.Errorf("tunnel %s on %s: no CHILD SA (IKE not established)", tu.Name, node)
			}
			if k == 0 {
				c.spi, c.out = child.SPIOut, child.PacketsOut
			} else {
				c.in = child.PacketsIn
			}
			continue
		}
		h, err := kernel.XfrmHandle(ns)
		if err != nil {
			return c, err
		}
		info, err := ipsec.Status(h, tu.IPsec(node))
		h.Close()
		if err != nil && (k == 0 && info.Out == nil || k == 1 && info.In == nil) {
			return c, fmt.Errorf("tunnel %s on %s: %w", tu.Name, node, err)
		}
		if k == 0 {
			c.spi, c.out = info.Out.SPI, info.Out.Packets
		} else {
			c.in = info.In.Packets
		}
	}
	return c, nil
}

// ipPacket is the part of a captured IP packet verify reads.
type ipPacket struct {
	proto    byte
	src, dst netip.Addr
	dport    uint16 // UDP
	payload  []byte // past the IP (and, for UDP, the UDP) header
}

// parseIP reads an Ethernet frame's IPv4 or IPv6 packet, past VLAN tags.
func parseIP(f []byte) (ipPacket, bool) {
	var p ipPacket
	et, off, ok := etherType(f)
	if !ok {
		return p, false
	}
	ip := f[off+2:]
	var l4 []byte
	switch {
	case et == 0x0800 && len(ip) >= 20:
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < ihl {
			return p, false
		}
		p.proto = ip[9]
		p.src, _ = netip.AddrFromSlice(ip[12:16])
		p.dst, _ = netip.AddrFromSlice(ip[16:20])
		l4 = ip[ihl:]
	case et == 0x86DD && len(ip) >= 40:
		p.proto = ip[6]
		p.src, _ = netip.AddrFromSlice(ip[8:24])
		p.dst, _ = netip.AddrFromSlice(ip[24:40])
		l4 = ip[40:]
	default:
		return p, false
	}
	p.payload = l4
	if p.proto == 17 && len(l4) >= 8 {
		p.dport = binary.BigEndian.Uint16(l4[2:])
		p.payload = l4[8:]
	}
	return p, true
}
