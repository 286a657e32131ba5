package macsec

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/erlab-dev/erlab/lab/capture"
	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/topo"
)

// EncryptionTargets implements feature.EncryptionHook: any link end
// (NODE:IFACE) names its link, and its MACsec device (NODE:DEVICE) too.
func (Feature) EncryptionTargets(t *topo.Topology) []string {
	var out []string
	for _, l := range t.Links {
		for _, ep := range l.Ends() {
			out = append(out, ep.String())
			if m := Of(l); m != nil && m.Device != ep.Iface {
				out = append(out, ep.Node+":"+m.Device)
			}
		}
	}
	return out
}

// VerifyEncryption implements feature.EncryptionHook. Each MACsec link (or
// each link named, plaintext ones included) is checked on the wire: a flow
// carrying a unique marker crosses the link while the receiving port is
// captured (tcpdump, inside the receiver's namespace); the link passes
// only if every frame on the port is MACsec (0x88E5, with the sender's SCI
// for the flow) or MKA, the marker appears nowhere, and the kernel's
// counters moved as much as the flow. A plaintext link not named is listed
// as such, not checked.
func (Feature) VerifyEncryption(ctx context.Context, l feature.Lab, only []string) ([]feature.EncryptionCheck, error) {
	t := l.Topology()
	var out []feature.EncryptionCheck
	for _, lk := range t.Links {
		named := false
		for _, ep := range lk.Ends() {
			named = named || slices.Contains(only, ep.String())
			if m := Of(lk); m != nil {
				named = named || slices.Contains(only, ep.Node+":"+m.Device)
			}
		}
		if len(only) > 0 && !named {
			continue
		}
		if len(only) == 0 && Of(lk) == nil {
			out = append(out, feature.EncryptionCheck{Link: linkName(lk), Declared: "plaintext", Pass: true, Reason: "declared plaintext: not checked"})
			continue
		}
		st := l.Status()
		st.Start("Verifying encryption on " + linkName(lk))
		c, err := verifyLink(ctx, l, lk)
		st.End(err == nil && c.Pass)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

func linkName(l *topo.Link) string { return l.A.String() + " <-> " + l.B.String() }

// flowAddrs finds two addresses in one subnet over the link: on the MACsec
// device or on what is stacked on it (or on the link ends and what sits on
// them, for a plaintext link), one on each side.
func flowAddrs(t *topo.Topology, l *topo.Link) (src, dst netip.Addr, ok bool) {
	above := func(ep topo.Endpoint) []netip.Prefix {
		n := t.Node(ep.Node)
		base := ep.Iface
		if m := Of(l); m != nil {
			base = m.Device
		}
		var ps []netip.Prefix
		for _, i := range n.Interfaces {
			if i.Name == base || n.Above(i, base) {
				ps = append(ps, i.Addresses...)
			}
		}
		return ps
	}
	for _, a := range above(l.A) {
		for _, b := range above(l.B) {
			if a.Addr().Is4() && a.Masked() == b.Masked() {
				return a.Addr(), b.Addr(), true
			}
		}
	}
	return netip.Addr{}, netip.Addr{}, false
}

func verifyLink(ctx context.Context, l feature.Lab, lk *topo.Link) (feature.EncryptionCheck, error) {
	t := l.Topology()
	m := Of(lk)
	c := feature.EncryptionCheck{Link: linkName(lk), Declared: "plaintext", Checked: true}
	if m != nil {
		c.Declared = "macsec " + m.Cipher
		if !m.Static() {
			c.Declared += " (MKA)"
		}
	}
	src, dst, ok := flowAddrs(t, lk)
	if !ok {
		c.Reason = "no IPv4 subnet across the link (on the MACsec device or above it) to send a flow through"
		return c, nil
	}
	sender, receiver := lk.A, lk.B
	nsS, err := l.NetNS(sender.Node)
	if err != nil {
		return c, err
	}
	nsR, err := l.NetNS(receiver.Node)
	if err != nil {
		return c, err
	}
	var before [2]*Info
	if m != nil {
		if before, err = pair(l, lk); err != nil {
			return c, err
		}
		c.SenderSCI = before[0].SCI
	}
	c.Capture = filepath.Join(l.Dir(), fmt.Sprintf("verify-%s-%s.pcap", receiver.Node, receiver.Iface))
	// The flow's frames on the port: MACsec ones from the sender, or, on a
	// link that leaks, the marked ones in clear.
	expect := func(b, marker []byte) bool {
		f := capture.Decode(b)
		return f.EtherType == capture.EtherMACsec && (c.SenderSCI == "" || f.SCI == c.SenderSCI) || bytes.Contains(b, marker)
	}
	flow, err := capture.MarkedFlow(ctx, nsR, capture.Options{Iface: receiver.Iface, File: c.Capture}, nsS, src, dst, expect)
	c.Sent = flow.Sent
	if err != nil {
		return c, err
	}
	c.Frames = len(flow.Frames)
	for _, b := range flow.Frames {
		if bytes.Contains(b, flow.Marker) {
			c.MarkerHits++
		}
		f := capture.Decode(b)
		switch {
		case f.EtherType == capture.EtherMACsec && (c.SenderSCI == "" || f.SCI == c.SenderSCI):
			c.MACsecFrames++
		case f.EtherType == capture.EtherMACsec, f.EtherType == capture.EtherEAPOL:
		default:
			c.ClearFrames++
		}
	}
	if m != nil {
		after, err := pair(l, lk)
		if err != nil {
			return c, err
		}
		c.EncryptedOut = after[0].OutPktsEncrypted + after[0].OutPktsProtected - before[0].OutPktsEncrypted - before[0].OutPktsProtected
		c.ValidatedIn = after[1].InPktsOK - before[1].InPktsOK
	}
	switch {
	case c.MarkerHits > 0:
		c.Reason = fmt.Sprintf("the marker crossed in clear in %d frames", c.MarkerHits)
	case m == nil:
		c.Reason = "no MACsec on this link"
	case c.ClearFrames > 0:
		c.Reason = fmt.Sprintf("%d frames on the port were neither MACsec nor MKA", c.ClearFrames)
	case c.MACsecFrames < c.Sent:
		c.Reason = fmt.Sprintf("%d MACsec frames from the sender's SCI for %d packets sent", c.MACsecFrames, c.Sent)
	case c.EncryptedOut < uint64(c.Sent) || c.ValidatedIn < uint64(c.Sent):
		c.Reason = fmt.Sprintf("counters moved less than the flow: %d protected out, %d validated in, for %d sent", c.EncryptedOut, c.ValidatedIn, c.Sent)
	default:
		c.Pass = true
		c.Reason = fmt.Sprintf("all %d flow packets crossed as MACsec, the marker nowhere in %d frames", c.Sent, c.Frames)
	}
	return c, nil
}

// pair reads the sender's and the receiver's MACsec devices.
func pair(l feature.Lab, lk *topo.Link) ([2]*Info, error) {
	var out [2]*Info
	for i, ep := range lk.Ends() {
		ns, err := l.NetNS(ep.Node)
		if err != nil {
			return out, err
		}
		if out[i], err = ReadDevice(ns, Of(lk).Device); err != nil {
			return out, fmt.Errorf("%s: %w", ep.Node, err)
		}
	}
	return out, nil
}
