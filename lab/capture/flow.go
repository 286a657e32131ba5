package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/erlab-dev/erlab/lab/kernel"
)

// FlowPackets is how many marker packets a marked flow sends.
const FlowPackets = 20

// Flow is a marked flow and what a capture saw of it.
type Flow struct {
	Marker []byte   // the unique marker every packet carries
	Sent   int      // packets sent
	Frames [][]byte // every frame the capture holds
}

// MarkedFlow sends FlowPackets UDP packets carrying a fresh, unique marker
// from src (in namespace nsFlow) to dst while tcpdump captures, with the
// options o (o.File must be set), in namespace nsCap. It returns once the
// capture holds at least as many frames as were sent that expect says
// belong to the flow (or after a short grace, when they never come: a
// flow that went another way).
func MarkedFlow(ctx context.Context, nsCap string, o Options, nsFlow string, src, dst netip.Addr, expect func(frame []byte, marker []byte) bool) (Flow, error) {
	var f Flow
	marker := make([]byte, 16)
	rand.Read(marker)
	f.Marker = []byte("ERLAB-MARKER-" + hex.EncodeToString(marker))
	c, err := Start(ctx, nsCap, o)
	if err != nil {
		return f, err
	}
	f.Sent, err = sendMarked(nsFlow, src, dst, f.Marker, FlowPackets)
	var match func([]byte) bool
	if expect != nil {
		match = func(b []byte) bool { return expect(b, f.Marker) }
	}
	if err == nil {
		_, err = c.WaitFrames(ctx, f.Sent, match, 2*time.Second)
	}
	c.Stop()
	if err != nil {
		return f, err
	}
	f.Frames, err = ReadFile(o.File)
	return f, err
}

// sendMarked sends n UDP packets carrying the marker from src to dst,
// inside the sender's namespace, 5 ms apart.
func sendMarked(ns string, src, dst netip.Addr, marker []byte, n int) (int, error) {
	// Unconnected, so that the receiver's port-unreachable replies do not
	// turn later sends into ECONNREFUSED.
	var conn *net.UDPConn
	if err := kernel.Do(ns, func() (err error) {
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		return err
	}); err != nil {
		return 0, fmt.Errorf("flow from %s: %w", src, err)
	}
	defer conn.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9))
	sent := 0
	for i := range n {
		payload := append(append([]byte(nil), marker...), byte(i))
		if _, err := conn.WriteToUDP(payload, to); err == nil {
			sent++
		}
		time.Sleep(5 * time.Millisecond) // a paced flow, not a burst
	}
	return sent, nil
}

// EtherTypes on the wire.
const (
	EtherMACsec = layers.EthernetType(0x88E5)
	EtherEAPOL  = layers.EthernetTypeEAPOL // 0x888E, MKA's
)

// Frame is what verify reads of a captured Ethernet frame: its EtherType
// past any 802.1Q/802.1ad tags, the SCI of a MACsec SecTAG, and the IP
// packet inside, if it is one.
type Frame struct {
	EtherType layers.EthernetType
	SCI       string // a MACsec frame's, when its SecTAG carries it
	IP        *IPPacket
}

// IPPacket is the part of a captured IP packet verify reads.
type IPPacket struct {
	Proto    layers.IPProtocol
	Src, Dst netip.Addr
	DstPort  uint16 // UDP
	Payload  []byte // past the IP (and, for UDP, the UDP) header
}

// Decode reads a frame with gopacket. gopacket has no MACsec layer: the
// SecTAG is read here (802.1AE: TCI/AN, SL, PN, then the SCI when the TCI
// says SC).
func Decode(b []byte) Frame {
	var f Frame
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	eth, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ok {
		return f
	}
	f.EtherType = eth.EthernetType
	payload := eth.Payload
	for _, l := range p.Layers() {
		if d, ok := l.(*layers.Dot1Q); ok {
			f.EtherType, payload = d.Type, d.Payload
		}
	}
	if f.EtherType == EtherMACsec {
		if len(payload) >= 14 && payload[0]&0x20 != 0 {
			f.SCI = hex.EncodeToString(payload[6:14])
		}
		return f
	}
	var ip IPPacket
	switch {
	case p.Layer(layers.LayerTypeIPv4) != nil:
		v4 := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ip.Proto, ip.Payload = v4.Protocol, v4.Payload
		ip.Src, _ = netip.AddrFromSlice(v4.SrcIP.To4())
		ip.Dst, _ = netip.AddrFromSlice(v4.DstIP.To4())
	case p.Layer(layers.LayerTypeIPv6) != nil:
		v6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		ip.Proto, ip.Payload = v6.NextHeader, v6.Payload
		ip.Src, _ = netip.AddrFromSlice(v6.SrcIP)
		ip.Dst, _ = netip.AddrFromSlice(v6.DstIP)
	default:
		return f
	}
	if udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && ip.Proto == layers.IPProtocolUDP {
		ip.DstPort, ip.Payload = uint16(udp.DstPort), udp.Payload
	}
	f.IP = &ip
	return f
}
