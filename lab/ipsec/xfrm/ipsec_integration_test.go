package xfrm_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	ipsecf "github.com/erlab-dev/erlab/lab/ipsec"

	"github.com/vishvananda/netlink"

	ipsec "github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/labtest/wire"
)

// The harness: two nodes and the wire between them (lab/labtest/wire).
type node = wire.Node
type capture = wire.Capture

var (
	run          = wire.Run
	startCapture = wire.StartCapture
)

func newPair(t *testing.T, outerA, outerB netip.Prefix) (a, b, w node) {
	return wire.NewPair(t, "ipsec", outerA, outerB)
}

// ping sends count echo requests from ns to dst, filled with pattern.
func ping(ns, dst, pattern string, count int) (string, error) {
	return run(ns, "ping", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "2", "-p", pattern, dst)
}

// key is n bytes of key material, different for every label.
func key(label string, n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", label, i))
		b = append(b, sum[:]...)
	}
	return b[:n]
}

func keys(a ipsec.Algorithm, label string) ipsec.Key {
	enc, auth := a.KeyLen()
	k := ipsec.Key{Enc: key(label+"enc", enc)}
	if auth > 0 {
		k.Auth = key(label+"auth", auth)
	}
	return k
}

// Patterns the pings carry: the tunnel's must never be seen on the wire, the
// control's (a plain ping between the outer addresses) must, which shows the
// search would find a leak.
const (
	tunnelPattern  = "5ec2e7ab1e5ec2e7"
	controlPattern = "c0447201c0447201"
)

// end is one node's side of a test case: its tunnels, one per inner family.
type end struct {
	n    node
	tuns []ipsec.Tunnel
}

// TestIntegrationXFRMTunnel configures static-key ESP tunnels between two
// namespaces with this package alone — route-based with AES-GCM carrying
// both IP families (two Tunnels on one xfrm interface), AES-CBC+HMAC-SHA-256
// carrying IPv4 over IPv6, ESP in UDP (NAT-T), and policy-based — and checks
// each with readers that are not this package: pings cross the tunnel,
// tcpdump on the wire between the nodes sees only ESP (or UDP 4500) between the outer
// addresses with the tunnel's SPIs and never the pings' payload, and `ip
// xfrm state` shows what was asked for. Status must report the counters the
// pings moved, and no key; a wrong key must fail and be counted; Remove
// must leave nothing.
func TestIntegrationXFRMTunnel(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, ipsecf.KernelESP, ipsecf.KernelXfrmi, kernel.Bridge)

	routeInner := map[ipsec.Family][2]netip.Prefix{
		ipsec.IPv4: {netip.MustParsePrefix("10.99.0.1/30"), netip.MustParsePrefix("10.99.0.2/30")},
		ipsec.IPv6: {netip.MustParsePrefix("fd99::1/64"), netip.MustParsePrefix("fd99::2/64")},
	}
	cases := []struct {
		name           string
		alg            ipsec.Algorithm
		outerA, outerB netip.Prefix
		mode           ipsec.Mode
		inner          []ipsec.Family
		natt           bool
		wrongKey       bool // also show that a wrong key fails, and is counted
	}{
		{name: "route-aes128gcm16-dualstack", alg: ipsec.AES128GCM16, mode: ipsec.RouteBased, inner: []ipsec.Family{ipsec.IPv4, ipsec.IPv6}, wrongKey: true,
			outerA: netip.MustParsePrefix("192.0.2.1/24"), outerB: netip.MustParsePrefix("192.0.2.2/24")},
		{name: "route-aes128-sha256-4in6", alg: ipsec.AES128SHA256, mode: ipsec.RouteBased, inner: []ipsec.Family{ipsec.IPv4},
			outerA: netip.MustParsePrefix("2001:db8:ff::1/64"), outerB: netip.MustParsePrefix("2001:db8:ff::2/64")},
		{name: "natt-aes256gcm16", alg: ipsec.AES256GCM16, mode: ipsec.RouteBased, inner: []ipsec.Family{ipsec.IPv4}, natt: true,
			outerA: netip.MustParsePrefix("198.51.100.1/24"), outerB: netip.MustParsePrefix("198.51.100.2/24")},
		{name: "policy-aes256-sha256", alg: ipsec.AES256SHA256, mode: ipsec.PolicyBased, inner: []ipsec.Family{ipsec.IPv4},
			outerA: netip.MustParsePrefix("203.0.113.1/24"), outerB: netip.MustParsePrefix("203.0.113.2/24")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			na, nb, wire := newPair(t, c.outerA, c.outerB)
			a, b := &end{n: na}, &end{n: nb}
			spis := map[string]bool{} // "A>B spi" as tcpdump prints them
			for _, fam := range c.inner {
				name := fmt.Sprintf("%s/%d", c.name, fam)
				spiAB, spiBA := ipsec.SPIPair(name)
				spis[fmt.Sprintf("%s %#08x", c.outerA.Addr(), spiAB)] = true
				spis[fmt.Sprintf("%s %#08x", c.outerB.Addr(), spiBA)] = true
				ta := ipsec.Tunnel{
					Name: name, Local: c.outerA.Addr(), Remote: c.outerB.Addr(), Mode: c.mode, InnerFamily: fam,
					SPIOut: spiAB, SPIIn: spiBA, Algorithm: c.alg,
					KeyOut: keys(c.alg, name+"a->b"), KeyIn: keys(c.alg, name+"b->a"),
				}
				if c.mode == ipsec.RouteBased {
					ta.Interface, ta.IfID, ta.Parent = "ipsec0", 42, "eth1"
				} else {
					ta.LocalNets = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}
					ta.RemoteNets = []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}
				}
				if c.natt {
					ta.Encap = &ipsec.UDPEncap{}
				}
				a.tuns = append(a.tuns, ta)
				b.tuns = append(b.tuns, ta.Mirror())
			}

			for _, e := range []*end{a, b} {
				for _, tun := range e.tuns {
					t.Cleanup(func() {
						if err := ipsec.Remove(e.n.H, tun); err != nil {
							t.Errorf("%s: %v", e.n.NS, err)
						}
					})
					if err := ipsec.Apply(e.n.H, tun); err != nil {
						t.Fatalf("%s: %v", e.n.NS, err)
					}
					// Applying again changes nothing.
					if err := ipsec.Apply(e.n.H, tun); err != nil {
						t.Fatalf("%s: apply again: %v", e.n.NS, err)
					}
				}
			}

			// Inner addresses, as the caller of a tunnel adds them.
			var targets []string
			if c.mode == ipsec.RouteBased {
				for _, fam := range c.inner {
					a.n.AddAddr(t, "ipsec0", routeInner[fam][0])
					b.n.AddAddr(t, "ipsec0", routeInner[fam][1])
					targets = append(targets, routeInner[fam][1].Addr().String())
				}
			} else {
				a.n.AddAddr(t, "lo", netip.MustParsePrefix("10.1.0.1/32"))
				b.n.AddAddr(t, "lo", netip.MustParsePrefix("10.2.0.1/32"))
				route := func(n node, dst, gw, src string) {
					eth1, err := n.H.LinkByName("eth1")
					if err == nil {
						_, ipn, _ := net.ParseCIDR(dst)
						err = n.H.RouteAdd(&netlink.Route{LinkIndex: eth1.Attrs().Index, Dst: ipn, Gw: net.ParseIP(gw), Src: net.ParseIP(src)})
					}
					if err != nil {
						t.Fatalf("%s: route %s: %v", n.NS, dst, err)
					}
				}
				route(a.n, "10.2.0.0/24", c.outerB.Addr().String(), "10.1.0.1")
				route(b.n, "10.1.0.0/24", c.outerA.Addr().String(), "10.2.0.1")
				targets = append(targets, "10.2.0.1")
			}

			if c.natt {
				// Without an encapsulation socket the kernel refuses
				// ESP in UDP, SAs or not.
				if out, err := run(a.n.NS, "ping", "-c1", "-W1", targets[0]); err == nil {
					t.Errorf("NAT-T passed without encapsulation sockets:\n%s", out)
				}
				for _, e := range []*end{a, b} {
					var sock *net.UDPConn
					if err := kernel.Do(e.n.NS, func() (err error) {
						sock, err = ipsec.ListenEncap(e.tuns[0].Local, 0)
						return err
					}); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { sock.Close() })
				}
			}

			const pings = 3
			cap := startCapture(t, wire.NS, "to-a")
			for _, dst := range targets {
				if out, err := ping(a.n.NS, dst, tunnelPattern, pings); err != nil {
					statA, _ := run(a.n.NS, "sh", "-c", "grep -v ' 0$' /proc/net/xfrm_stat")
					statB, _ := run(b.n.NS, "sh", "-c", "grep -v ' 0$' /proc/net/xfrm_stat")
					t.Fatalf("ping %s through the tunnel: %v\n%s\nxfrm_stat, non-zero: a:\n%sb:\n%s", dst, err, out, statA, statB)
				}
			}
			if out, err := ping(a.n.NS, c.outerB.Addr().String(), controlPattern, 1); err != nil {
				t.Fatalf("control ping on the underlay: %v\n%s", err, out)
			}
			raw := cap.Stop(t)
			checkWire(t, cap, raw, c.outerA.Addr(), c.outerB.Addr(), c.natt, spis, len(targets)*pings)

			// Status, both ends: the counters moved with the pings, one
			// tunnel per family.
			for _, e := range []*end{a, b} {
				for _, tun := range e.tuns {
					info := status(t, e.n, tun)
					checkInfo(t, e.n.NS, info, tun, c.natt)
					if info.Out.Packets < pings || info.In.Packets < pings || info.Out.Bytes == 0 || info.Out.Seq < pings {
						t.Errorf("%s %s: counters did not move with %d pings: out %+v, in %+v", e.n.NS, tun.Name, pings, *info.Out, *info.In)
					}
					t.Logf("%s %s: out %d packets %d bytes seq %d; in %d packets %d bytes seq %d",
						e.n.NS, tun.Name, info.Out.Packets, info.Out.Bytes, info.Out.Seq, info.In.Packets, info.In.Bytes, info.In.Seq)
				}
			}

			// An independent reader: ip xfrm state.
			out, err := run(a.n.NS, "ip", "xfrm", "state")
			if err != nil {
				t.Fatalf("ip xfrm state: %v\n%s", err, out)
			}
			var wantState []string
			for _, tun := range a.tuns {
				wantState = append(wantState, fmt.Sprintf("spi 0x%08x", tun.SPIOut), fmt.Sprintf("spi 0x%08x", tun.SPIIn))
			}
			wantState = append(wantState, "mode tunnel", "replay-window 32")
			if c.alg.AEAD() {
				wantState = append(wantState, "aead rfc4106(gcm(aes))", " 128")
			} else {
				wantState = append(wantState, "enc cbc(aes)", "auth-trunc hmac(sha256)", " 128")
			}
			if c.mode == ipsec.RouteBased {
				wantState = append(wantState, "if_id 0x2a")
			}
			if c.natt {
				wantState = append(wantState, "encap type espinudp sport 4500 dport 4500")
			}
			for _, w := range wantState {
				if !strings.Contains(out, w) {
					t.Errorf("ip xfrm state lacks %q:\n%s", w, redact(out))
				}
			}

			if c.wrongKey {
				// b receives with the wrong key: a's pings are dropped and
				// counted as integrity failures.
				bad := b.tuns[0]
				bad.KeyIn = keys(c.alg, "wrong")
				if err := ipsec.Apply(b.n.H, bad); err != nil {
					t.Fatal(err)
				}
				if out, err := ping(a.n.NS, targets[0], tunnelPattern, 2); err == nil {
					t.Errorf("ping passed with the wrong key:\n%s", out)
				}
				if info := status(t, b.n, bad); info.In.IntegrityFailures < 2 || info.In.Packets != 0 {
					t.Errorf("with the wrong key, b's inbound SA: %+v", *info.In)
				} else {
					t.Logf("wrong key: %d integrity failures", info.In.IntegrityFailures)
				}
			}

			// Remove leaves nothing, and can run again. The interface stays
			// while the other family's tunnel uses it.
			for _, e := range []*end{a, b} {
				for i, tun := range e.tuns {
					for range 2 {
						if err := ipsec.Remove(e.n.H, tun); err != nil {
							t.Errorf("%s: remove %s: %v", e.n.NS, tun.Name, err)
						}
					}
					if _, err := ipsec.Status(e.n.H, tun); !errors.Is(err, ipsec.ErrNotFound) {
						t.Errorf("%s: status of %s after remove: %v, want ErrNotFound", e.n.NS, tun.Name, err)
					}
					if i < len(e.tuns)-1 {
						if _, err := e.n.H.LinkByName(tun.Interface); err != nil {
							t.Errorf("%s: removing %s took the interface the other tunnels use: %v", e.n.NS, tun.Name, err)
						}
					}
				}
				checkEmpty(t, e.n, e.tuns[0])
			}
		})
	}

	// The kernel's legacy replay state holds 32 packets: a larger window is
	// cut to 32, which is why MaxReplayWindow is 32.
	t.Run("replay-window-limit", func(t *testing.T) {
		n := wire.NewNode(t, labtest.Name("ipsec")+"-r")
		s := &netlink.XfrmState{Src: net.ParseIP("192.0.2.1"), Dst: net.ParseIP("192.0.2.2"), Proto: netlink.XFRM_PROTO_ESP,
			Mode: netlink.XFRM_MODE_TUNNEL, Spi: 0x777, ReplayWindow: 64,
			Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key("replay", 20), ICVLen: 128}}
		if err := n.H.XfrmStateAdd(s); err != nil {
			t.Fatal(err)
		}
		got, err := n.H.XfrmStateGet(&netlink.XfrmState{Src: s.Src, Dst: s.Dst, Proto: s.Proto, Spi: s.Spi})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("replay window 64 asked, %d kept", got.ReplayWindow)
		if got.ReplayWindow != ipsec.MaxReplayWindow {
			t.Errorf("replay window 64 became %d, want %d", got.ReplayWindow, ipsec.MaxReplayWindow)
		}
	})
}

// checkWire reads the capture of the wire: every IP packet is ESP (or ESP in
// UDP 4500) between the outer addresses with one of the tunnel's SPIs in its
// direction, but for neighbor discovery, membership reports and the control
// ping; the
// pings' payload shows only in the control ping.
func checkWire(t *testing.T, cap *capture, raw []byte, outerA, outerB netip.Addr, natt bool, spis map[string]bool, sent int) {
	t.Helper()
	dir := func(from, to netip.Addr) string {
		if natt {
			return from.String() + ".4500 > " + to.String() + ".4500: UDP-encap: ESP(spi="
		}
		return from.String() + " > " + to.String() + ": ESP(spi="
	}
	var esp, control int
	var bad []string
	for _, line := range cap.Lines(t, "ip or ip6") {
		var from netip.Addr
		var rest string
		switch {
		case strings.Contains(line, dir(outerA, outerB)):
			from, rest = outerA, line[strings.Index(line, dir(outerA, outerB))+len(dir(outerA, outerB)):]
		case strings.Contains(line, dir(outerB, outerA)):
			from, rest = outerB, line[strings.Index(line, dir(outerB, outerA))+len(dir(outerB, outerA)):]
		case strings.Contains(line, "echo") && (strings.Contains(line, outerA.String()+" > "+outerB.String()+":") || strings.Contains(line, outerB.String()+" > "+outerA.String()+":")):
			control++
			continue
		case strings.Contains(line, "ICMP6, neighbor") || strings.Contains(line, "ICMP6, router") || strings.Contains(line, "multicast listener") ||
			strings.Contains(line, " > 224.0.0.22: igmp"):
			// Neighbor discovery, and group membership reports (the
			// wire's bridge sends one when it comes up).
			continue
		default:
			bad = append(bad, line)
			continue
		}
		spi, _, _ := strings.Cut(rest, ",")
		if !spis[from.String()+" "+spi] {
			bad = append(bad, line+" (not this tunnel's SPI)")
			continue
		}
		esp++
	}
	if esp < 2*sent || control != 2 || len(bad) > 0 {
		t.Errorf("on the wire: %d ESP packets (want at least %d), %d control pings (want 2), other packets:\n%s",
			esp, 2*sent, control, strings.Join(bad, "\n"))
	}
	// BPF, independently of tcpdump's text.
	espFilter := "(ip proto 50 or ip6 proto 50)"
	if natt {
		espFilter = "udp port 4500"
		if n := len(cap.Lines(t, "ip proto 50 or ip6 proto 50")); n != 0 {
			t.Errorf("%d bare ESP packets with NAT-T on", n)
		}
	}
	if n := len(cap.Lines(t, espFilter+" and host "+outerA.String()+" and host "+outerB.String())); n != esp {
		t.Errorf("BPF counts %d ESP packets between the outer addresses, tcpdump's text %d", n, esp)
	}
	pat := func(p string) []byte {
		b, _ := hex.DecodeString(p)
		return bytes.Repeat(b, 2)
	}
	if !bytes.Contains(raw, pat(controlPattern)) {
		t.Error("the control ping's payload is not in the capture: the leak check cannot work")
	}
	if bytes.Contains(raw, pat(tunnelPattern)) {
		t.Error("the tunnel's ping payload is on the wire in clear")
	}
	t.Logf("wire: %d ESP packets with the tunnel's SPIs, %d control, nothing else", esp, control)
}

func status(t *testing.T, n node, tun ipsec.Tunnel) ipsec.Info {
	t.Helper()
	info, err := ipsec.Status(n.H, tun)
	if err != nil {
		t.Fatalf("%s: %v", n.NS, err)
	}
	if info.Out == nil || info.In == nil {
		t.Fatalf("%s: status without SAs: %+v", n.NS, info)
	}
	return info
}

// checkInfo compares Status with the tunnel, and looks for keys in its JSON.
func checkInfo(t *testing.T, name string, info ipsec.Info, tun ipsec.Tunnel, natt bool) {
	t.Helper()
	for _, sa := range []struct {
		dir      string
		sa       *ipsec.SAInfo
		spi      uint32
		src, dst netip.Addr
	}{{"out", info.Out, tun.SPIOut, tun.Local, tun.Remote}, {"in", info.In, tun.SPIIn, tun.Remote, tun.Local}} {
		s := sa.sa
		if s.SPI != sa.spi || s.Src != sa.src || s.Dst != sa.dst || s.Algorithm != tun.Algorithm || s.Mode != "tunnel" ||
			s.IfID != tun.IfID || s.InnerFamily != info.InnerFamily || s.ReplayWindow != ipsec.DefaultReplayWindow || s.ICVBits != 128 || s.IntegrityFailures != 0 || s.ReplayDrops != 0 {
			t.Errorf("%s: %s SA: %+v", name, sa.dir, *s)
		}
		if natt != (s.Encap != nil) || natt && (s.Encap.Type != "espinudp" || s.Encap.SrcPort != 4500 || s.Encap.DstPort != 4500) {
			t.Errorf("%s: %s SA encap: %+v", name, sa.dir, s.Encap)
		}
	}
	if len(info.Policies) != 3 { // out, in, fwd
		t.Errorf("%s: %d policies, want 3: %+v", name, len(info.Policies), info.Policies)
	}
	for _, p := range info.Policies {
		if !p.Present || p.IfID != tun.IfID {
			t.Errorf("%s: policy %+v", name, p)
		}
	}
	if tun.Mode == ipsec.RouteBased && (info.Interface == nil || !info.Interface.Up || info.Interface.IfID != tun.IfID || info.Interface.ParentIndex == 0) {
		t.Errorf("%s: interface %+v", name, info.Interface)
	}
	blob, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []ipsec.Key{tun.KeyOut, tun.KeyIn} {
		for _, b := range [][]byte{k.Enc, k.Auth} {
			if len(b) == 0 {
				continue
			}
			if bytes.Contains(blob, []byte(hex.EncodeToString(b))) || bytes.Contains(blob, []byte(base64.StdEncoding.EncodeToString(b))) {
				t.Errorf("%s: status JSON shows a key", name)
			}
		}
	}
}

// checkEmpty fails the test if anything of the tunnel is left in a node.
func checkEmpty(t *testing.T, n node, tun ipsec.Tunnel) {
	t.Helper()
	if states, err := n.H.XfrmStateList(netlink.FAMILY_ALL); err != nil || len(states) != 0 {
		t.Errorf("%s: %d SAs left (%v)", n.NS, len(states), err)
	}
	if policies, err := n.H.XfrmPolicyList(netlink.FAMILY_ALL); err != nil || len(policies) != 0 {
		t.Errorf("%s: %d policies left (%v)", n.NS, len(policies), err)
	}
	if tun.Interface != "" {
		if _, err := n.H.LinkByName(tun.Interface); err == nil {
			t.Errorf("%s: %s left", n.NS, tun.Interface)
		}
	}
}

// redact hides the key material `ip xfrm state` prints, for error messages.
func redact(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, " 0x"); i >= 0 && (strings.Contains(l, "aead ") || strings.Contains(l, "enc ") || strings.Contains(l, "auth")) {
			l = l[:i] + " [key]"
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
