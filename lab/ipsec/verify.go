package ipsec

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/gopacket/gopacket/layers"

	"github.com/erlab-dev/erlab/lab/capture"
	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/probe"
	"github.com/erlab-dev/erlab/lab/topo"
)

// EncryptionTargets implements feature.EncryptionHook: the static-key
// tunnels, by name (or tunnel:NAME). IKE tunnels are package ike's.
func (Feature) EncryptionTargets(t *topo.Topology) []string {
	var out []string
	for _, tu := range Tunnels(t) {
		if tu.Static() {
			out = append(out, tu.Name)
		}
	}
	return out
}

// VerifyEncryption implements feature.EncryptionHook: each static-key
// tunnel (or each named).
func (Feature) VerifyEncryption(ctx context.Context, l feature.Lab, only []string) ([]feature.EncryptionCheck, error) {
	var out []feature.EncryptionCheck
	for _, tu := range Tunnels(l.Topology()) {
		if !tu.Static() || len(only) > 0 && !slices.Contains(only, tu.Name) {
			continue
		}
		c, err := VerifyTunnel(ctx, l, tu, func(ctx context.Context) (Counters, error) { return staticCounters(l, tu) })
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Counters are what verify reads of a tunnel's SAs before and after its
// flow: the SPI of the first end's outbound SA, its packets out, and the
// second end's packets in.
type Counters struct {
	SPI     uint32
	Out, In uint64
}

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
// VerifyTunnel checks one tunnel, reading its SAs' counters with counters
// (the kernel's for static keys, strongSwan's for IKE).
func VerifyTunnel(ctx context.Context, l feature.Lab, tu *Tunnel, counters func(context.Context) (Counters, error)) (feature.EncryptionCheck, error) {
	st := l.Status()
	st.Start("Verifying encryption on tunnel " + tu.Name)
	c, err := verifyTunnel(ctx, l, tu, counters)
	st.End(err == nil && c.Pass)
	return c, err
}

func verifyTunnel(ctx context.Context, l feature.Lab, tu *Tunnel, counters func(context.Context) (Counters, error)) (feature.EncryptionCheck, error) {
	t := l.Topology()
	keying := "static"
	if tu.IKE != nil {
		keying = "IKEv2"
	}
	c := feature.EncryptionCheck{Link: fmt.Sprintf("tunnel %s (%s — %s)", tu.Name, tu.A.Node, tu.B.Node),
		Declared: fmt.Sprintf("ipsec %s (%s)", tu.Algorithm, keying), Checked: true}
	src, dst, ok := FlowAddrs(t, tu)
	from := tu.A.Node
	if tu.VerifyNode != "" {
		from, dst, src, ok = tu.VerifyNode, tu.VerifyDst, tu.VerifySrc, true
		if !src.IsValid() {
			var err error
			if src, _, err = probe.Target(t, from); err != nil {
				return c, err
			}
		}
	}
	if !ok {
		c.Reason = "no inner addresses to send a flow through: give the tunnel interfaces addresses in one subnet (route-based), or the nodes addresses in the tunnel's nets (policy-based), or the tunnel a verify: {from, to}"
		return c, nil
	}
	nsS, err := l.NetNS(tu.A.Node)
	if err != nil {
		return c, err
	}
	nsFlow, err := l.NetNS(from)
	if err != nil {
		return c, err
	}
	egress, err := egressOf(nsS, tu.B.Local)
	if err != nil {
		return c, err
	}
	c.Layers = "ESP"
	if n := t.Node(tu.A.Node); n != nil {
		if lower := encryptingLower(n, n.Interface(egress)); lower != nil {
			c.Layers = fmt.Sprintf("ESP inside %s (the link's own check covers the %s layer)", lower.PayloadLayer, lower.PayloadLayer)
		}
	}
	before, err := counters(ctx)
	if err != nil {
		return c, err
	}
	c.SPI = fmt.Sprintf("%#x", before.SPI)
	c.Capture = filepath.Join(l.Dir(), fmt.Sprintf("verify-tunnel-%s.pcap", tu.Name))
	esp := func(b []byte) (espOfFlow, clear bool) {
		f := capture.Decode(b)
		p := f.IP
		if p == nil || !(p.Src == tu.A.Local && p.Dst == tu.B.Local) {
			return false, false
		}
		switch {
		case p.Proto == layers.IPProtocolESP && len(p.Payload) >= 4:
			return binary.BigEndian.Uint32(p.Payload) == before.SPI, false
		case p.Proto == layers.IPProtocolUDP && len(p.Payload) >= 4 && (p.DstPort == 4500 || p.DstPort == 500):
			// ESP in UDP (the SPI right after the UDP header), or IKE (on
			// 4500 after a zero non-ESP marker).
			return p.DstPort == 4500 && binary.BigEndian.Uint32(p.Payload) == before.SPI, false
		}
		return false, true
	}
	// Outgoing packets only: a policy-based tunnel's decrypted replies
	// (ICMP errors quoting the marker) come back on this device too.
	flow, err := capture.MarkedFlow(ctx, nsS, capture.Options{Iface: egress, File: c.Capture, Direction: "out"}, nsFlow, src, dst,
		func(b, marker []byte) bool { ok, _ := esp(b); return ok || bytes.Contains(b, marker) })
	c.Sent = flow.Sent
	if err != nil {
		return c, err
	}
	c.Frames = len(flow.Frames)
	for _, b := range flow.Frames {
		if bytes.Contains(b, flow.Marker) {
			c.MarkerHits++
		}
		switch ofFlow, clear := esp(b); {
		case ofFlow:
			c.ESPPackets++
		case clear:
			c.ClearFrames++
		}
	}
	after, err := counters(ctx)
	if err != nil {
		return c, err
	}
	c.EncryptedOut, c.ValidatedIn = after.Out-before.Out, after.In-before.In
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

// encryptingLower returns the device under an interface (or the interface
// itself) that carries what is stacked on it as its payload (MACsec), if
// there is one: ESP leaving through it is inside another layer.
func encryptingLower(n *topo.Node, i *topo.Interface) *topo.Interface {
	for cur := i; cur != nil; cur = n.Interface(cur.Parent) {
		if cur.PayloadLayer != "" {
			return cur
		}
		if cur.Parent == "" {
			break
		}
	}
	return nil
}

// FlowAddrs finds an inner source on the first end and an inner
// destination on the second.
func FlowAddrs(t *topo.Topology, tu *Tunnel) (src, dst netip.Addr, ok bool) {
	a, b := t.Node(tu.A.Node), t.Node(tu.B.Node)
	if tu.Mode == xfrm.RouteBased {
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

// staticCounters reads a static tunnel's SAs from both ends' kernels.
func staticCounters(l feature.Lab, tu *Tunnel) (Counters, error) {
	var c Counters
	for k, node := range []string{tu.A.Node, tu.B.Node} {
		ns, err := l.NetNS(node)
		if err != nil {
			return c, err
		}
		h, err := kernel.XfrmHandle(ns)
		if err != nil {
			return c, err
		}
		info, err := xfrm.Status(h, tu.XFRM(node))
		h.Close()
		if err != nil && (k == 0 && info.Out == nil || k == 1 && info.In == nil) {
			return c, fmt.Errorf("tunnel %s on %s: %w", tu.Name, node, err)
		}
		if k == 0 {
			c.SPI, c.Out = info.Out.SPI, info.Out.Packets
		} else {
			c.In = info.In.Packets
		}
	}
	return c, nil
}
