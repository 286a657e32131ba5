package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// EncryptionCheck is the verdict on one link of verify encryption.
type EncryptionCheck struct {
	Link     string `json:"link"`     // a:ifa <-> b:ifb
	Declared string `json:"declared"` // macsec CIPHER, or plaintext
	Checked  bool   `json:"checked"`  // false: declared plaintext and not asked for
	Pass     bool   `json:"pass"`
	Reason   string `json:"reason"`
	// Evidence.
	Sent         int    `json:"sent"`          // marker packets sent across
	Frames       int    `json:"frames"`        // frames captured on the receiver's port
	MACsecFrames int    `json:"macsec_frames"` // of them, 0x88E5 with the sender's SCI
	ClearFrames  int    `json:"clear_frames"`  // of them, neither MACsec nor EAPOL
	MarkerHits   int    `json:"marker_hits"`   // frames holding the marker in clear
	SenderSCI    string `json:"sender_sci,omitempty"`
	EncryptedOut uint64 `json:"encrypted_out"` // sender's OutPktsEncrypted, during the flow
	ValidatedIn  uint64 `json:"validated_in"`  // receiver's InPktsOK, during the flow
	Capture      string `json:"capture,omitempty"`
	// IPsec tunnels: ESP packets of the flow with the SA's SPI, the SPI,
	// and the layers found (ESP, or ESP inside MACsec).
	ESPPackets int    `json:"esp_packets,omitempty"`
	SPI        string `json:"spi,omitempty"`
	Layers     string `json:"layers,omitempty"`
}

// Ethertypes on a MACsec port.
const (
	etherMACsec = 0x88E5
	etherEAPOL  = 0x888E
)

// verifyFlow is how many marker packets cross each link.
const verifyFlow = 20

// VerifyEncryption checks on the wire that each MACsec link of a deployed lab
// encrypts: a flow carrying a unique marker crosses the link while the
// receiving port is captured (tcpdump, inside the receiver's namespace);
// the link passes only if every frame on the port is MACsec (0x88E5, with
// the sender's SCI for the flow) or MKA, the marker appears nowhere, and the
// kernel's counters moved as much as the flow. only, when given, limits the
// check to links with an end among those NODE:IFACE; a plaintext link
// named there is checked the same way, and fails.
func VerifyEncryption(ctx context.Context, t *topo.Topology, only []string, opts Options) ([]EncryptionCheck, error) {
	if err := checkTargets(t, only); err != nil {
		return nil, err
	}
	var out []EncryptionCheck
	for _, l := range t.Links {
		if len(only) > 0 && !containsAny(only, l.A.String(), l.B.String()) {
			continue
		}
		if len(only) == 0 && l.MACsec == nil {
			out = append(out, EncryptionCheck{Link: linkName(l), Declared: "plaintext", Pass: true, Reason: "declared plaintext: not checked"})
			continue
		}
		st := opts.status()
		st.Start("Verifying encryption on " + linkName(l))
		c, err := verifyLink(ctx, t, l, opts)
		st.End(err == nil && c.Pass)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	for _, tu := range t.Tunnels {
		if len(only) > 0 && !containsAny(only, tu.Name, "tunnel:"+tu.Name) {
			continue
		}
		st := opts.status()
		st.Start("Verifying encryption on tunnel " + tu.Name)
		c, err := verifyTunnel(ctx, t, tu, opts)
		st.End(err == nil && c.Pass)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// checkTargets refuses a target of verify encryption that names no link
// end and no tunnel: a typo must not read as a pass.
func checkTargets(t *topo.Topology, only []string) error {
	var known []string
	for _, l := range t.Links {
		known = append(known, l.A.String(), l.B.String())
	}
	for _, tu := range t.Tunnels {
		known = append(known, tu.Name)
	}
	slices.SortFunc(known, topo.NaturalCompare)
	for _, o := range only {
		if containsAny(known, o, strings.TrimPrefix(o, "tunnel:")) {
			continue
		}
		// A node that exists: its own link ends are what was meant.
		cands := known
		if node, _, ok := strings.Cut(o, ":"); ok && t.Node(node) != nil {
			cands = slices.DeleteFunc(slices.Clone(known), func(k string) bool { return !strings.HasPrefix(k, node+":") })
		}
		return &UnknownError{Lab: t.Name, What: "link end (NODE:IFACE) or tunnel", Name: o, Known: cands}
	}
	return nil
}

func linkName(l *topo.Link) string { return l.A.String() + " <-> " + l.B.String() }

func containsAny(list []string, xs ...string) bool {
	for _, a := range list {
		for _, x := range xs {
			if a == x {
				return true
			}
		}
	}
	return false
}

// flowAddrs finds two addresses in one subnet over the link: on the MACsec
// device or on what is stacked on it (or on the link ends and their VLANs
// for a plaintext link), one on each side.
func flowAddrs(t *topo.Topology, l *topo.Link) (src, dst netip.Addr, ok bool) {
	above := func(ep topo.Endpoint) []netip.Prefix {
		n := t.Node(ep.Node)
		base := ep.Iface
		if l.MACsec != nil {
			base = l.MACsec.Device
		}
		var ps []netip.Prefix
		for _, i := range n.Interfaces {
			for cur := i; cur != nil; cur = n.Interface(cur.Parent) {
				if cur.Name == base {
					ps = append(ps, i.Addresses...)
					break
				}
				if cur.Parent == "" {
					break
				}
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

func verifyLink(ctx context.Context, t *topo.Topology, l *topo.Link, opts Options) (EncryptionCheck, error) {
	c := EncryptionCheck{Link: linkName(l), Declared: "plaintext", Checked: true}
	if l.MACsec != nil {
		c.Declared = "macsec " + l.MACsec.Cipher
		if l.MACsec.MKA != nil {
			c.Declared += " (MKA)"
		}
	}
	src, dst, ok := flowAddrs(t, l)
	if !ok {
		c.Reason = "no IPv4 subnet across the link (on the MACsec device or above it) to send a flow through"
		return c, nil
	}
	sender, receiver := l.A, l.B
	nsS, nsR := NetNSName(t.Name, sender.Node), NetNSName(t.Name, receiver.Node)

	var before [2]*MACsecInfo
	if l.MACsec != nil {
		var err error
		if before, err = macsecPair(t, l); err != nil {
			return c, err
		}
		c.SenderSCI = before[0].SCI
	}
	pcap := filepath.Join(opts.labDir(t.Name), fmt.Sprintf("verify-%s-%s.pcap", receiver.Node, receiver.Iface))
	c.Capture = pcap
	tag, sent, frames, err := markedFlow(ctx, nsR, receiver.Iface, pcap, nsS, src, dst)
	c.Sent = sent
	if err != nil {
		return c, err
	}
	c.Frames = len(frames)
	for _, f := range frames {
		if bytes.Contains(f, tag) {
			c.MarkerHits++
		}
		et, sci := frameType(f)
		switch {
		case et == etherMACsec && (c.SenderSCI == "" || sci == c.SenderSCI):
			c.MACsecFrames++
		case et == etherMACsec, et == etherEAPOL:
		default:
			c.ClearFrames++
		}
	}
	if l.MACsec != nil {
		after, err := macsecPair(t, l)
		if err != nil {
			return c, err
		}
		c.EncryptedOut = after[0].OutPktsEncrypted + after[0].OutPktsProtected - before[0].OutPktsEncrypted - before[0].OutPktsProtected
		c.ValidatedIn = after[1].InPktsOK - before[1].InPktsOK
	}
	switch {
	case c.MarkerHits > 0:
		c.Reason = fmt.Sprintf("the marker crossed in clear in %d frames", c.MarkerHits)
	case l.MACsec == nil:
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

// macsecPair reads the sender's and the receiver's MACsec devices.
func macsecPair(t *topo.Topology, l *topo.Link) ([2]*MACsecInfo, error) {
	var out [2]*MACsecInfo
	for i, ep := range []topo.Endpoint{l.A, l.B} {
		ns := NetNSName(t.Name, ep.Node)
		h, err := kernel.RouteHandle(ns)
		if err != nil {
			return out, err
		}
		dev, err := h.LinkByName(l.MACsec.Device)
		h.Close()
		if err != nil {
			return out, fmt.Errorf("%s: %s: %w", ep.Node, l.MACsec.Device, err)
		}
		if out[i], err = readMACsec(ns, dev.Attrs().Index); err != nil {
			return out, err
		}
	}
	return out, nil
}

// markedFlow sends the verify flow — packets carrying a fresh, unique
// marker — from src (in namespace nsFlow) to dst while tcpdump (with extra
// arguments) captures iface in namespace nsCap to pcap, and returns the
// marker, how many packets were sent and the frames captured.
func markedFlow(ctx context.Context, nsCap, iface, pcap, nsFlow string, src, dst netip.Addr, extra ...string) (tag []byte, sent int, frames [][]byte, err error) {
	marker := make([]byte, 16)
	rand.Read(marker)
	tag = []byte("ERLAB-MARKER-" + hex.EncodeToString(marker))
	stop, err := startCapture(ctx, nsCap, iface, pcap, extra...)
	if err != nil {
		return tag, 0, nil, err
	}
	sent, err = sendMarked(nsFlow, src, dst, tag, verifyFlow)
	time.Sleep(300 * time.Millisecond) // the last frames reach the capture
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return tag, sent, nil, err
	}
	frames, err = readPcap(pcap)
	return tag, sent, frames, err
}

// startCapture runs tcpdump on an interface inside a namespace, writing
// pcap to path, and returns once it is listening.
func startCapture(ctx context.Context, ns, iface, path string, extra ...string) (stop func() error, err error) {
	args := append([]string{"-i", iface, "-n", "-U", "--immediate-mode", "-s", "0", "-w", path}, extra...)
	cmd := exec.CommandContext(ctx, "tcpdump", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := kernel.Do(ns, cmd.Start); err != nil {
		return nil, fmt.Errorf("tcpdump on %s: %w", iface, err)
	}
	listening := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				listening <- nil
				io.Copy(io.Discard, stderr)
				return
			}
		}
		listening <- fmt.Errorf("tcpdump on %s ended before listening", iface)
	}()
	select {
	case err := <-listening:
		if err != nil {
			cmd.Wait()
			return nil, err
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("tcpdump on %s did not start", iface)
	}
	return func() error {
		cmd.Process.Signal(os.Interrupt) // tcpdump flushes and exits
		cmd.Wait()
		return nil
	}, nil
}

// sendMarked sends n UDP packets carrying the marker from src to dst,
// inside the sender's namespace.
func sendMarked(ns string, src, dst netip.Addr, marker []byte, n int) (int, error) {
	// Unconnected, so that the receiver's port-unreachable replies do not
	// turn later sends into ECONNREFUSED.
	var conn *net.UDPConn
	if err := kernel.Do(ns, func() (err error) {
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		return err
	}); err != nil {
		return 0, err
	}
	defer conn.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9))
	sent := 0
	for i := range n {
		payload := append(append([]byte(nil), marker...), byte(i))
		if _, err := conn.WriteToUDP(payload, to); err == nil {
			sent++
		}
		time.Sleep(5 * time.Millisecond)
	}
	return sent, nil
}

// etherType returns an Ethernet frame's EtherType past any 802.1Q/802.1ad
// tags, and the offset of that EtherType field (its payload starts 2 bytes
// later).
func etherType(f []byte) (et uint16, off int, ok bool) {
	if len(f) < 14 {
		return 0, 0, false
	}
	off = 12
	et = binary.BigEndian.Uint16(f[off:])
	for (et == 0x8100 || et == 0x88A8) && len(f) >= off+6 {
		off += 4
		et = binary.BigEndian.Uint16(f[off:])
	}
	return et, off, true
}

// frameType returns a frame's EtherType (past any VLAN tags) and, for a
// MACsec frame that carries one, the SCI from its SecTAG.
func frameType(f []byte) (uint16, string) {
	et, off, ok := etherType(f)
	if !ok {
		return 0, ""
	}
	if et != etherMACsec || len(f) < off+2+6 {
		return et, ""
	}
	// SecTAG: TCI/AN (bit 0x20 = SC: the SCI is present), SL, PN (4), SCI (8).
	tci := f[off+2]
	if tci&0x20 == 0 || len(f) < off+2+6+8 {
		return et, ""
	}
	return et, hex.EncodeToString(f[off+8 : off+16])
}

// readPcap reads the frames of a classic pcap file (tcpdump -w).
func readPcap(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("%s: not a pcap file", path)
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("%s: not a pcap file", path)
	}
	var frames [][]byte
	for off := 24; off+16 <= len(b); {
		incl := int(order.Uint32(b[off+8:]))
		off += 16
		if incl < 0 || off+incl > len(b) {
			break // a capture cut short: keep what is whole
		}
		frames = append(frames, b[off:off+incl])
		off += incl
	}
	return frames, nil
}
