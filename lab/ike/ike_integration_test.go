package ike

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest/tier"
	"github.com/erlab-dev/erlab/lab/labtest/wire"
)

// The kernel-tier tests below run two nodes, each a namespace with its own
// charon, joined through a third namespace (the wire: a bridge between two
// veth pairs) where tcpdump sees what really travels between them.

// establishTimeout bounds WaitEstablished in these tests: the first SA
// after boot took 3.5 s in the microVM, most of it the kernel loading
// crypto modules.
const establishTimeout = 30 * time.Second

// gate skips (host) or fails (kernel tier) a test that lacks root, kernel
// features or strongSwan.
func gate(t *testing.T) {
	t.Helper()
	tier.Integration(t)
	tier.RequireFeatures(t, ipsec.KernelESP, ipsec.KernelXfrmi, kernel.Bridge)
	for _, bin := range []string{charonName, swanctlName} {
		if _, err := lookBin(bin); err != nil {
			if tier.KernelTier() {
				t.Fatal(err)
			}
			t.Skip(err)
		}
	}
}

// The harness: two nodes and the wire between them (lab/labtest/wire).
type tnode = wire.Node
type capture = wire.Capture

var (
	run          = wire.Run
	startCapture = wire.StartCapture
)

func newPair(t *testing.T, outerA, outerB netip.Prefix) (a, b, w tnode) {
	return wire.NewPair(t, "ike", outerA, outerB)
}

func linkUp(t *testing.T, n tnode, dev string) { t.Helper(); n.Up(t, dev) }

func addAddr(t *testing.T, n tnode, dev string, p netip.Prefix) { t.Helper(); n.AddAddr(t, dev, p) }

// addXfrmi creates the xfrm interface a route-based connection needs, as
// erlab does: ip link add ipsec0 type xfrm dev eth1 if_id ID; and the inner
// addresses on it.
func addXfrmi(t *testing.T, n tnode, ifid uint32, inner ...netip.Prefix) {
	t.Helper()
	eth1, err := n.H.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.H.LinkAdd(&netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: "ipsec0", ParentIndex: eth1.Attrs().Index}, Ifid: ifid}); err != nil {
		t.Fatalf("%s: xfrm interface: %v", n.NS, err)
	}
	linkUp(t, n, "ipsec0")
	for _, p := range inner {
		addAddr(t, n, "ipsec0", p)
	}
}

// newPSK is a fresh random pre-shared key.
func newPSK(t *testing.T) Secret {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// ikeNode is the Node for a test namespace, with a private directory.
func ikeNode(t *testing.T, n tnode, conns ...Conn) Node {
	dir := t.TempDir()
	return Node{NetNS: n.NS, Dir: dir, Conns: conns}
}

// start starts a node's charon and stops it when the test ends, passed or
// failed; a failed test shows the end of its log.
func start(t *testing.T, n Node) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s: end of %s:\n%s", n.NetNS, filesOf(n).log, tail(filesOf(n).log, 25))
		}
		if err := Stop(n); err != nil {
			t.Errorf("stop %s: %v", n.NetNS, err)
		}
	})
	if err := Start(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}

func waitUp(t *testing.T, n Node, conn string) {
	t.Helper()
	if err := WaitEstablished(context.Background(), n, conn, establishTimeout); err != nil {
		t.Fatal(err)
	}
}

func status(t *testing.T, n Node, conn string) ConnInfo {
	t.Helper()
	infos, err := Status(n)
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range infos {
		if ci.Name == conn {
			return ci
		}
	}
	t.Fatalf("%s: no status for %s", n.NetNS, conn)
	return ConnInfo{}
}

// active returns the SAs in use, failing the test when there are none.
func active(t *testing.T, n Node, conn string) (ConnInfo, IKEInfo, ChildInfo) {
	t.Helper()
	ci := status(t, n, conn)
	ike, child := ci.Active()
	if ike == nil || child == nil || !ci.Established() {
		t.Fatalf("%s: %s not established: %s", n.NetNS, conn, describe(ci, false))
	}
	return ci, *ike, *child
}

// crash kills a node's charon and supervisor as a crash would: no DELETE
// reaches the peer.
func crash(t *testing.T, n Node) {
	t.Helper()
	f := filesOf(n)
	super, err1 := readPID(f.superPID)
	charon, err2 := readPID(f.charonPID)
	if err1 != nil || err2 != nil || !isOurs(super, f) || !isOurCharon(charon, f) {
		t.Fatalf("%s: no charon to kill: %v %v", n.NetNS, err1, err2)
	}
	syscall.Kill(-super, syscall.SIGKILL)
	syscall.Kill(charon, syscall.SIGKILL)
	for i := 0; alive(charon) || alive(super); i++ {
		if i == 100 {
			t.Fatalf("%s: charon %d survives SIGKILL", n.NetNS, charon)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond every 50 ms until it holds and returns how long that
// took, or fails the test after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > limit {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(t0)
}

// noEstablishedIKE reports a node without an established IKE SA for conn.
func noEstablishedIKE(n Node, conn string) bool {
	infos, err := Status(n)
	if err != nil {
		return false
	}
	for _, ci := range infos {
		if ci.Name == conn {
			return ci.IKEState != "ESTABLISHED"
		}
	}
	return false
}

// checkWire checks a capture between two outer addresses: what is IP is
// ESP or IKE between them (allowed: the filter of the IKE/ESP ports), or
// link-local IPv6 (neighbor discovery, MLD) and IGMP from the bridge; the
// inner pings' payload is not in it.
func checkWire(t *testing.T, c *capture, raw []byte, outerA, outerB netip.Addr, allowed, forbidden string, pattern string) {
	t.Helper()
	between := fmt.Sprintf("host %s and host %s", outerA, outerB)
	// Neighbor discovery (ICMPv6 types 133-137) uses the global addresses
	// too; MLD and DAD come from link-local or unspecified sources.
	other := fmt.Sprintf("(ip or ip6) and not ((%s) and (%s)) and not igmp and not (ip6 and (src net fe80::/10 or src host ::)) and not (icmp6 and ip6[40] >= 133 and ip6[40] <= 137)", between, allowed)
	if bad := c.Lines(t, other); len(bad) > 0 {
		t.Errorf("on the wire, %d packets other than %s between %s and %s:\n%s", len(bad), allowed, outerA, outerB, strings.Join(bad, "\n"))
	}
	if forbidden != "" {
		if n := len(c.Lines(t, forbidden)); n > 0 {
			t.Errorf("on the wire: %d packets of %s", n, forbidden)
		}
	}
	p, _ := hex.DecodeString(pattern)
	if bytes.Contains(raw, bytes.Repeat(p, 2)) {
		t.Error("the inner pings' payload is on the wire in clear")
	}
}

// pingStream sends count pings every interval and returns how many were
// sent and answered.
func pingStream(ns, dst string, interval time.Duration, count int) (sent, received int, err error) {
	out, err := run(ns, "ping", "-q", "-i", fmt.Sprintf("%.3f", interval.Seconds()), "-c", strconv.Itoa(count), "-W", "2", dst)
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("ping %s: %v\n%s", dst, err, out)
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received, nil
}

// loadedAlike waits until both loads of a connection reached a node's
// charon, the start script's (swanctl --load-all) and Start's (vici
// load-conn), in either order (the start script's came second, 1.4 s
// later, in the microVM), and checks that the second found the same
// connection: charon logs "updated vici connection" and keeps it, where a
// different one would be "replaced" and its SAs torn down. Both loads give
// the pre-shared key the same unique id, so the second replaces the first
// instead of adding a copy.
func loadedAlike(t *testing.T, n Node, conn string) {
	t.Helper()
	log := func() string { b, _ := os.ReadFile(filesOf(n).log); return string(b) }
	count := func(what string) int { return strings.Count(log(), what+" vici connection: "+conn+"\n") }
	waitFor(t, n.NetNS+": the start script's load and Start's", 10*time.Second, func() bool { return count("added")+count("updated")+count("replaced") >= 2 })
	if a, u, r := count("added"), count("updated"), count("replaced"); a != 1 || u != 1 || r != 0 {
		t.Errorf("%s: connection %s added %d, updated %d, replaced %d times; want added and updated once each", n.NetNS, conn, a, u, r)
	}
	c, _ := n.conn(conn)
	if k, anon := strings.Count(log(), "loaded IKE shared key with id '"+secretID(c)+"' for: "), strings.Count(log(), "loaded IKE shared key for: "); k != 2 || anon != 0 {
		t.Errorf("%s: key %s loaded %d times under its id and %d times without, want twice under it", n.NetNS, secretID(c), k, anon)
	}
}

// noSecret fails the test when text shows one of the keys.
func noSecret(t *testing.T, what, text string, keys ...Secret) {
	t.Helper()
	for _, k := range keys {
		noPSK(t, what, text, k)
	}
}

const innerPattern = "1ce5ec2e71ce5ec2"

// TestIntegrationIKERouteBased keys a route-based tunnel (xfrm interfaces
// with if_id 42, IPv4 and IPv6 inside) with IKEv2 and a pre-shared key,
// and checks it with readers other than this package: pings through it,
// tcpdump on the wire (only ESP and IKE on UDP 500), `ip xfrm state`. Then
// Status counters, CHILD and IKE rekeys under a 20 ms ping stream without
// loss, dead peer detection both ways after a crash, recovery, and a
// graceful stop that the peer learns of at once and that leaves the kernel
// clean.
func TestIntegrationIKERouteBased(t *testing.T) {
	gate(t)
	outerA, outerB := netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24")
	ta, tb, wire := newPair(t, outerA, outerB)
	addXfrmi(t, ta, 42, netip.MustParsePrefix("10.99.0.1/30"), netip.MustParsePrefix("fd99::1/64"))
	addXfrmi(t, tb, 42, netip.MustParsePrefix("10.99.0.2/30"), netip.MustParsePrefix("fd99::2/64"))
	psk := newPSK(t)
	a := ikeNode(t, ta, Conn{Name: "tun0", Local: outerA.Addr(), Remote: outerB.Addr(), PSK: psk, IfID: 42, Initiator: true})
	b := ikeNode(t, tb, Conn{Name: "tun0", Local: outerB.Addr(), Remote: outerA.Addr(), PSK: psk, IfID: 42})

	cap := startCapture(t, wire.NS, "to-a")
	t0 := time.Now()
	start(t, b)
	start(t, a)
	started := time.Since(t0)
	var firstPing time.Duration
	for {
		if _, err := run(ta.NS, "ping", "-c1", "-W1", "10.99.0.2"); err == nil {
			firstPing = time.Since(t0)
			break
		}
		if time.Since(t0) > establishTimeout {
			t.Fatalf("no ping through the tunnel %s after both Starts: %v", establishTimeout, WaitEstablished(context.Background(), a, "tun0", time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitUp(t, a, "tun0")
	waitUp(t, b, "tun0")
	t.Logf("both charons started in %s; first ping through the tunnel %s after the first Start", started.Round(time.Millisecond), firstPing.Round(time.Millisecond))
	loadedAlike(t, a, "tun0")
	loadedAlike(t, b, "tun0")

	// Status on both ends: the same CHILD SA seen from each side.
	_, ikeA, childA := active(t, a, "tun0")
	ciB, ikeB, childB := active(t, b, "tun0")
	if !ikeA.Initiator || ikeB.Initiator || ikeA.Local != netip.AddrPortFrom(outerA.Addr(), 500) || ikeA.Remote != netip.AddrPortFrom(outerB.Addr(), 500) ||
		ikeA.Encryption != "AES_GCM_16-256" || ikeA.PRF != "PRF_HMAC_SHA2_384" || ikeA.DHGroup != "ECP_384" || ikeA.NAT ||
		ikeA.InitiatorSPI != ikeB.InitiatorSPI || ikeA.ResponderSPI != ikeB.ResponderSPI {
		t.Errorf("IKE SAs: a %+v, b %+v", ikeA, ikeB)
	}
	if childA.SPIOut != childB.SPIIn || childA.SPIIn != childB.SPIOut || childA.IfIDIn != 42 || childA.IfIDOut != 42 ||
		childA.Encryption != "AES_GCM_16-256" || childA.Mode != "TUNNEL" || childA.Protocol != "ESP" || childA.Encap ||
		len(childA.LocalTS) != 2 || childA.LocalTS[0] != netip.MustParsePrefix("0.0.0.0/0") || childA.LocalTS[1] != netip.MustParsePrefix("::/0") {
		t.Errorf("CHILD SAs: a %+v, b %+v", childA, childB)
	}
	blob, _ := json.Marshal(ciB)
	noSecret(t, "status JSON", string(blob), psk)

	// Traffic both families; the counters move.
	const pings = 5
	for _, dst := range []string{"10.99.0.2", "fd99::2"} {
		if out, err := run(ta.NS, "ping", "-c", strconv.Itoa(pings), "-i", "0.1", "-W", "2", "-p", innerPattern, dst); err != nil {
			t.Fatalf("ping %s through the tunnel: %v\n%s", dst, err, out)
		}
	}
	_, _, childA2 := active(t, a, "tun0")
	_, _, childB2 := active(t, b, "tun0")
	if childA2.PacketsOut < childA.PacketsOut+2*pings || childA2.PacketsIn < childA.PacketsIn+2*pings || childA2.BytesOut <= childA.BytesOut ||
		childB2.PacketsIn < childB.PacketsIn+2*pings || childB2.BytesIn <= childB.BytesIn {
		t.Errorf("counters did not move with %d pings each way: a %+v -> %+v; b %+v -> %+v", 2*pings, childA, childA2, childB, childB2)
	}
	t.Logf("counters after the pings: a out %d packets %d bytes, in %d packets %d bytes", childA2.PacketsOut, childA2.BytesOut, childA2.PacketsIn, childA2.BytesIn)

	// An independent reader: the kernel's SAs are charon's.
	out, err := run(ta.NS, "ip", "xfrm", "state")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{fmt.Sprintf("spi 0x%08x", childA2.SPIOut), fmt.Sprintf("spi 0x%08x", childA2.SPIIn), "if_id 0x2a", "rfc4106(gcm(aes))", "mode tunnel"} {
		if !strings.Contains(out, want) {
			t.Errorf("ip xfrm state lacks %q", want)
		}
	}

	// CHILD SA rekey from a, then IKE SA rekey from b, under a 20 ms ping
	// stream: make-before-break, nothing lost.
	type result struct {
		sent, received int
		err            error
	}
	done := make(chan result, 1)
	go func() {
		s, r, err := pingStream(ta.NS, "10.99.0.2", 20*time.Millisecond, 300)
		done <- result{s, r, err}
	}()
	time.Sleep(time.Second)
	if err := RekeySA(a, "tun0", false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := RekeySA(b, "tun0", true); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Logf("CHILD and IKE rekey under a 20 ms ping stream: %d sent, %d received", res.sent, res.received)
	if res.sent < 250 || res.received != res.sent {
		t.Errorf("rekeying lost packets: %d sent, %d received", res.sent, res.received)
	}
	_, ikeA3, childA3 := active(t, a, "tun0")
	if childA3.SPIIn == childA2.SPIIn || childA3.SPIOut == childA2.SPIOut || childA3.DHGroup != "ECP_384" {
		t.Errorf("CHILD SA not rekeyed (with PFS): before %+v, after %+v", childA2, childA3)
	}
	if ikeA3.InitiatorSPI == ikeA.InitiatorSPI || ikeA3.Initiator {
		t.Errorf("IKE SA not rekeyed by b: before %+v, after %+v", ikeA, ikeA3)
	}

	// What crossed the wire: ESP and IKE on UDP 500 only.
	raw := cap.Stop(t)
	checkWire(t, cap, raw, outerA.Addr(), outerB.Addr(), "ip proto 50 or (udp port 500)", "udp port 4500", innerPattern)
	esp, ike := len(cap.Lines(t, "ip proto 50")), len(cap.Lines(t, "udp port 500"))
	if esp < 4*pings+2*res.sent || ike < 4 {
		t.Errorf("on the wire: %d ESP packets, %d IKE packets", esp, ike)
	}
	t.Logf("wire: %d ESP packets, %d IKE packets on UDP 500, nothing else", esp, ike)

	// Dead peer detection. b crashes: a notices, and sets the tunnel up
	// again once b is back.
	crash(t, b)
	took := waitFor(t, "a sees b dead", 15*time.Second, func() bool { return noEstablishedIKE(a, "tun0") })
	t.Logf("responder crashed: the initiator's DPD declared it dead after %s", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("DPD took %s, want under 10s", took)
	}
	waitFor(t, "the initiator connecting again", 3*time.Second, func() bool { return status(t, a, "tun0").IKEState == "CONNECTING" })
	t0 = time.Now()
	if err := Start(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	waitUp(t, a, "tun0")
	t.Logf("responder restarted: tunnel up again %s after its Start", time.Since(t0).Round(time.Millisecond))
	// Start cleared what the killed charon left: only the new CHILD SA's
	// two SAs are in b's kernel.
	if states, err := tb.H.XfrmStateList(netlink.FAMILY_ALL); err != nil || len(states) != 2 {
		t.Errorf("b holds %d SAs after its restart, want 2 (%v)", len(states), err)
	}
	if out, err := run(ta.NS, "ping", "-c2", "-i0.2", "-W2", "10.99.0.2"); err != nil {
		t.Fatalf("ping after recovery: %v\n%s", err, out)
	}

	// a crashes: b, which only responds, forgets it.
	crash(t, a)
	took = waitFor(t, "b sees a dead", 15*time.Second, func() bool { return len(status(t, b, "tun0").IKE) == 0 })
	t.Logf("initiator crashed: the responder's DPD cleared its SAs after %s", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("DPD took %s, want under 10s", took)
	}
	if err := Start(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	waitUp(t, a, "tun0")
	waitUp(t, b, "tun0")

	// A graceful stop: the peer gets a DELETE, and the kernel keeps
	// nothing of charon's.
	t0 = time.Now()
	if err := Stop(a); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(t0)
	took = waitFor(t, "b sees a gone", 5*time.Second, func() bool { return len(status(t, b, "tun0").IKE) == 0 })
	t.Logf("initiator stopped in %s; the responder dropped its SAs %s later", stopped.Round(time.Millisecond), took.Round(time.Millisecond))
	if states, err := ta.H.XfrmStateList(netlink.FAMILY_ALL); err != nil || len(states) != 0 {
		t.Errorf("%d SAs left in a after Stop (%v)", len(states), err)
	}
	if policies, err := ta.H.XfrmPolicyList(netlink.FAMILY_ALL); err != nil || len(policies) != 0 {
		t.Errorf("%d policies left in a after Stop (%v)", len(policies), err)
	}
	if _, err := Status(a); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Status of a stopped node: %v", err)
	}
	for _, n := range []Node{a, b} {
		b, _ := os.ReadFile(filesOf(n).log)
		noSecret(t, n.NetNS+"'s charon.log", string(b), psk)
	}
}

// TestIntegrationIKEAlgorithms sets up a route-based tunnel with each
// lab/ipsec algorithm and checks what was negotiated — the IKE and ESP
// transforms and, after a CHILD rekey, the PFS group — in Status and in
// the kernel.
func TestIntegrationIKEAlgorithms(t *testing.T) {
	gate(t)
	outerA, outerB := netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("198.51.100.2/24")
	ta, tb, _ := newPair(t, outerA, outerB)
	addXfrmi(t, ta, 7, netip.MustParsePrefix("10.98.0.1/30"))
	addXfrmi(t, tb, 7, netip.MustParsePrefix("10.98.0.2/30"))
	want := map[xfrm.Algorithm]struct{ enc, integ, prf, dh, kernel string }{
		xfrm.AES128GCM16:  {"AES_GCM_16-128", "", "PRF_HMAC_SHA2_256", "ECP_256", "rfc4106(gcm(aes))"},
		xfrm.AES256GCM16:  {"AES_GCM_16-256", "", "PRF_HMAC_SHA2_384", "ECP_384", "rfc4106(gcm(aes))"},
		xfrm.AES128SHA256: {"AES_CBC-128", "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "MODP_2048", "hmac(sha256)"},
		xfrm.AES256SHA256: {"AES_CBC-256", "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "MODP_2048", "hmac(sha256)"},
	}
	for _, alg := range xfrm.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			w := want[alg]
			psk := newPSK(t)
			a := ikeNode(t, ta, Conn{Name: "t", Local: outerA.Addr(), Remote: outerB.Addr(), PSK: psk, IfID: 7, Algorithm: alg, Initiator: true})
			b := ikeNode(t, tb, Conn{Name: "t", Local: outerB.Addr(), Remote: outerA.Addr(), PSK: psk, IfID: 7, Algorithm: alg})
			t0 := time.Now()
			start(t, a) // the initiator first: it retries until b answers
			start(t, b)
			waitUp(t, a, "t")
			waitUp(t, b, "t")
			t.Logf("%s: established %s after the first Start", alg, time.Since(t0).Round(time.Millisecond))
			if out, err := run(ta.NS, "ping", "-c2", "-i0.2", "-W2", "10.98.0.2"); err != nil {
				t.Fatalf("ping: %v\n%s", err, out)
			}
			_, ike, child := active(t, a, "t")
			if ike.Encryption != w.enc || ike.Integrity != w.integ || ike.PRF != w.prf || ike.DHGroup != w.dh ||
				child.Encryption != w.enc || child.Integrity != w.integ {
				t.Errorf("negotiated IKE %s/%s/%s/%s ESP %s/%s; want %+v", ike.Encryption, ike.Integrity, ike.PRF, ike.DHGroup, child.Encryption, child.Integrity, w)
			}
			if err := RekeySA(b, "t", false); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "rekeyed CHILD SA", 10*time.Second, func() bool {
				_, c := status(t, a, "t").Active()
				return c != nil && c.State == "INSTALLED" && c.SPIIn != child.SPIIn
			})
			if _, c := status(t, a, "t").Active(); c.DHGroup != w.dh {
				t.Errorf("rekeyed CHILD SA has PFS group %q, want %s", c.DHGroup, w.dh)
			}
			if out, _ := run(ta.NS, "ip", "xfrm", "state"); !strings.Contains(out, w.kernel) {
				t.Errorf("kernel SAs lack %s", w.kernel)
			}
		})
	}
}

// TestIntegrationIKEWrongPSK starts the two ends with different pre-shared
// keys: WaitEstablished must fail fast on both, saying why, without
// showing either key.
func TestIntegrationIKEWrongPSK(t *testing.T) {
	gate(t)
	outerA, outerB := netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24")
	ta, tb, _ := newPair(t, outerA, outerB)
	addXfrmi(t, ta, 9, netip.MustParsePrefix("10.97.0.1/30"))
	addXfrmi(t, tb, 9, netip.MustParsePrefix("10.97.0.2/30"))
	pskA, pskB := newPSK(t), newPSK(t)
	a := ikeNode(t, ta, Conn{Name: "vpn", Local: outerA.Addr(), Remote: outerB.Addr(), PSK: pskA, IfID: 9, Initiator: true})
	b := ikeNode(t, tb, Conn{Name: "vpn", Local: outerB.Addr(), Remote: outerA.Addr(), PSK: pskB, IfID: 9})
	start(t, b)
	start(t, a)
	t0 := time.Now()
	errs := make(chan error, 2)
	for _, n := range []Node{a, b} {
		go func() { errs <- WaitEstablished(context.Background(), n, "vpn", 20*time.Second) }()
	}
	for range 2 {
		err := <-errs
		if err == nil {
			t.Fatal("established with different pre-shared keys")
		}
		t.Logf("after %s: %v", time.Since(t0).Round(time.Millisecond), err)
		if !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), "pre-shared key") {
			t.Errorf("error does not say the keys differ: %v", err)
		}
		noSecret(t, "error", err.Error(), pskA, pskB)
	}
	if took := time.Since(t0); took > 15*time.Second {
		t.Errorf("wrong key reported after %s, want well before the 20s timeout", took)
	}
	if out, err := run(ta.NS, "ping", "-c1", "-W1", "10.97.0.2"); err == nil {
		t.Errorf("ping passed with different keys:\n%s", out)
	}
	for _, n := range []Node{a, b} {
		blob, _ := os.ReadFile(filesOf(n).log)
		noSecret(t, n.NetNS+"'s charon.log", string(blob), pskA, pskB)
	}
}

// TestIntegrationIKEPolicyBased protects the traffic between two IPv4
// subnets over IPv6 outer addresses, without xfrm interfaces.
func TestIntegrationIKEPolicyBased(t *testing.T) {
	gate(t)
	outerA, outerB := netip.MustParsePrefix("2001:db8:ff::1/64"), netip.MustParsePrefix("2001:db8:ff::2/64")
	ta, tb, wire := newPair(t, outerA, outerB)
	netA, netB := netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.2.0.0/24")
	addAddr(t, ta, "lo", netip.MustParsePrefix("10.1.0.1/32"))
	addAddr(t, tb, "lo", netip.MustParsePrefix("10.2.0.1/32"))
	// Routes to the far subnet out of eth1; the policies take the packets
	// from there into the tunnel.
	for _, r := range []struct {
		n        tnode
		dst, src string
	}{{ta, "10.2.0.0/24", "10.1.0.1"}, {tb, "10.1.0.0/24", "10.2.0.1"}} {
		eth1, err := r.n.H.LinkByName("eth1")
		if err == nil {
			_, dst, _ := net.ParseCIDR(r.dst)
			err = r.n.H.RouteAdd(&netlink.Route{LinkIndex: eth1.Attrs().Index, Dst: dst, Src: net.ParseIP(r.src), Scope: netlink.SCOPE_LINK})
		}
		if err != nil {
			t.Fatalf("%s: route %s: %v", r.n.NS, r.dst, err)
		}
	}
	psk := newPSK(t)
	a := ikeNode(t, ta, Conn{Name: "site", Local: outerA.Addr(), Remote: outerB.Addr(), PSK: psk, Algorithm: xfrm.AES128SHA256,
		LocalTS: []netip.Prefix{netA}, RemoteTS: []netip.Prefix{netB}, Initiator: true})
	b := ikeNode(t, tb, Conn{Name: "site", Local: outerB.Addr(), Remote: outerA.Addr(), PSK: psk, Algorithm: xfrm.AES128SHA256,
		LocalTS: []netip.Prefix{netB}, RemoteTS: []netip.Prefix{netA}})
	cap := startCapture(t, wire.NS, "to-a")
	start(t, b)
	start(t, a)
	waitUp(t, a, "site")
	waitUp(t, b, "site")
	if out, err := run(ta.NS, "ping", "-c3", "-i0.2", "-W2", "-p", innerPattern, "-I", "10.1.0.1", "10.2.0.1"); err != nil {
		t.Fatalf("ping between the subnets: %v\n%s", err, out)
	}
	raw := cap.Stop(t)
	checkWire(t, cap, raw, outerA.Addr(), outerB.Addr(), "ip6 proto 50 or (udp port 500)", "ip and not igmp", innerPattern)
	_, ike, child := active(t, a, "site")
	if child.IfIDIn != 0 || len(child.LocalTS) != 1 || child.LocalTS[0] != netA || len(child.RemoteTS) != 1 || child.RemoteTS[0] != netB ||
		ike.Local.Addr() != outerA.Addr() || child.PacketsOut < 3 || child.PacketsIn < 3 {
		t.Errorf("policy-based SAs: IKE %+v CHILD %+v", ike, child)
	}
	t.Logf("wire: %d ESP over IPv6, %d IKE", len(cap.Lines(t, "ip6 proto 50")), len(cap.Lines(t, "udp port 500")))
}

// TestIntegrationIKENATT forces UDP encapsulation: IKE moves to UDP 4500
// and ESP travels inside it; no bare ESP on the wire.
func TestIntegrationIKENATT(t *testing.T) {
	gate(t)
	outerA, outerB := netip.MustParsePrefix("203.0.113.1/24"), netip.MustParsePrefix("203.0.113.2/24")
	ta, tb, wire := newPair(t, outerA, outerB)
	addXfrmi(t, ta, 5, netip.MustParsePrefix("10.96.0.1/30"))
	addXfrmi(t, tb, 5, netip.MustParsePrefix("10.96.0.2/30"))
	psk := newPSK(t)
	a := ikeNode(t, ta, Conn{Name: "natt", Local: outerA.Addr(), Remote: outerB.Addr(), PSK: psk, IfID: 5, Encap: true, Initiator: true})
	b := ikeNode(t, tb, Conn{Name: "natt", Local: outerB.Addr(), Remote: outerA.Addr(), PSK: psk, IfID: 5, Encap: true})
	cap := startCapture(t, wire.NS, "to-a")
	start(t, b)
	start(t, a)
	waitUp(t, a, "natt")
	if out, err := run(ta.NS, "ping", "-c3", "-i0.2", "-W2", "-p", innerPattern, "10.96.0.2"); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	raw := cap.Stop(t)
	checkWire(t, cap, raw, outerA.Addr(), outerB.Addr(), "udp port 500 or udp port 4500", "ip proto 50", innerPattern)
	_, ike, child := active(t, a, "natt")
	if !ike.NAT || ike.Local.Port() != 4500 || !child.Encap {
		t.Errorf("NAT-T: IKE %+v CHILD %+v", ike, child)
	}
	t.Logf("wire: %d on UDP 4500, %d on UDP 500, no bare ESP", len(cap.Lines(t, "udp port 4500")), len(cap.Lines(t, "udp port 500")))
}

// TestIntegrationIKEReinitiate gives the two ends different algorithms:
// the initiator's charon gives up on NO_PROPOSAL_CHOSEN (as it does when
// the peer's charon runs but has not loaded its connections yet), and
// WaitEstablished times out saying so. Once the responder is fixed,
// WaitEstablished on the initiator initiates again and the tunnel comes up.
func TestIntegrationIKEReinitiate(t *testing.T) {
	gate(t)
	outerA, outerB := netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24")
	ta, tb, _ := newPair(t, outerA, outerB)
	addXfrmi(t, ta, 3, netip.MustParsePrefix("10.95.0.1/30"))
	addXfrmi(t, tb, 3, netip.MustParsePrefix("10.95.0.2/30"))
	psk := newPSK(t)
	a := ikeNode(t, ta, Conn{Name: "r", Local: outerA.Addr(), Remote: outerB.Addr(), PSK: psk, IfID: 3, Initiator: true, Algorithm: xfrm.AES256GCM16})
	b := ikeNode(t, tb, Conn{Name: "r", Local: outerB.Addr(), Remote: outerA.Addr(), PSK: psk, IfID: 3, Algorithm: xfrm.AES128GCM16})
	start(t, b)
	start(t, a)
	err := WaitEstablished(context.Background(), a, "r", 6*time.Second)
	if err == nil || !strings.Contains(err.Error(), "NO_PROPOSAL_CHOSEN") || !strings.Contains(err.Error(), "same Algorithm") {
		t.Fatalf("mismatched algorithms: %v", err)
	}
	t.Logf("initiator: %v", err)
	errB := WaitEstablished(context.Background(), b, "r", time.Second)
	if errB == nil || !strings.Contains(errB.Error(), "same Algorithm") {
		t.Errorf("responder with mismatched algorithms: %v", errB)
	}
	t.Logf("responder: %v", errB)
	noSecret(t, "error", err.Error(), psk)
	if ci := status(t, a, "r"); len(ci.IKE) != 0 {
		t.Fatalf("initiator still has an IKE SA: %+v", ci)
	}

	if err := Stop(b); err != nil {
		t.Fatal(err)
	}
	b.Conns[0].Algorithm = xfrm.AES256GCM16
	if err := Start(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	waitUp(t, a, "r")
	t.Logf("responder fixed: initiator re-initiated and established in %s", time.Since(t0).Round(time.Millisecond))
	if out, err := run(ta.NS, "ping", "-c2", "-i0.2", "-W2", "10.95.0.2"); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
}
