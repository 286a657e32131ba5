package xfrm

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"
)

// testKey is n bytes that look random and are the same on every run, so a
// leak is easy to spot in any output.
func testKey(seed string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", seed, i))
		out = append(out, sum[:]...)
	}
	return out[:n]
}

func keyFor(a Algorithm, seed string) Key {
	enc, auth := a.KeyLen()
	k := Key{Enc: testKey(seed+"/enc", enc)}
	if auth > 0 {
		k.Auth = testKey(seed+"/auth", auth)
	}
	return k
}

// routeTunnel is a valid route-based tunnel end.
func routeTunnel(a Algorithm) Tunnel {
	return Tunnel{
		Name:  "a-b",
		Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"),
		Mode: RouteBased, Interface: "ipsec0", IfID: 42, Parent: "eth1",
		SPIOut: 0x1001, SPIIn: 0x2002,
		Algorithm: a, KeyOut: keyFor(a, "out"), KeyIn: keyFor(a, "in"),
	}
}

// policyTunnel is a valid policy-based tunnel end: IPv4 subnets over IPv6.
func policyTunnel(a Algorithm) Tunnel {
	return Tunnel{
		Name:  "p",
		Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"),
		Mode:       PolicyBased,
		LocalNets:  []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.3.0.0/24")},
		RemoteNets: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")},
		SPIOut:     0x300, SPIIn: 0x301,
		Algorithm: a, KeyOut: keyFor(a, "out"), KeyIn: keyFor(a, "in"),
	}
}

func ip(s string) net.IP { return ipOf(netip.MustParseAddr(s)) }

func ipnet(s string) *net.IPNet { return ipNetOf(netip.MustParsePrefix(s)) }

// sel is the wildcard selector the SAs carry for an inner family.
func sel(any string) *netlink.XfrmPolicy {
	return &netlink.XfrmPolicy{Src: ipnet(any), Dst: ipnet(any)}
}

func TestAlgorithms(t *testing.T) {
	want := []struct {
		a         Algorithm
		aead      bool
		enc, auth int
	}{
		{AES128GCM16, true, 20, 0},
		{AES256GCM16, true, 36, 0},
		{AES128SHA256, false, 16, 32},
		{AES256SHA256, false, 32, 32},
	}
	if got := Algorithms(); len(got) != len(want) {
		t.Fatalf("Algorithms() = %v, want %d", got, len(want))
	}
	for i, w := range want {
		if Algorithms()[i] != w.a || !w.a.Valid() || w.a.AEAD() != w.aead {
			t.Errorf("%s: listed as %s, valid %v, AEAD %v", w.a, Algorithms()[i], w.a.Valid(), w.a.AEAD())
		}
		if enc, auth := w.a.KeyLen(); enc != w.enc || auth != w.auth {
			t.Errorf("%s.KeyLen() = %d, %d; want %d, %d", w.a, enc, auth, w.enc, w.auth)
		}
		for _, s := range []string{string(w.a), strings.ToUpper(string(w.a)), " " + string(w.a) + "\n"} {
			if got, err := ParseAlgorithm(s); err != nil || got != w.a {
				t.Errorf("ParseAlgorithm(%q) = %q, %v", s, got, err)
			}
		}
	}
	for _, s := range []string{"", "aes128", "aes192gcm16", "aes128-sha1", "3des"} {
		if a, err := ParseAlgorithm(s); err == nil {
			t.Errorf("ParseAlgorithm(%q) = %q, want an error", s, a)
		}
		if enc, auth := Algorithm(s).KeyLen(); enc != 0 || auth != 0 || Algorithm(s).Valid() {
			t.Errorf("unknown %q has key lengths %d, %d", s, enc, auth)
		}
	}
}

func TestCheckKey(t *testing.T) {
	for _, a := range Algorithms() {
		good := keyFor(a, "k")
		if err := a.CheckKey(good); err != nil {
			t.Errorf("%s: %v", a, err)
		}
		bad := []Key{
			{Enc: good.Enc[:len(good.Enc)-1], Auth: good.Auth},
			{Enc: append(bytes.Clone(good.Enc), 0xff), Auth: good.Auth},
			{Auth: good.Auth},
		}
		if a.AEAD() {
			// The AES key alone, without the salt, is a classic mistake.
			bad = append(bad, Key{Enc: good.Enc[:len(good.Enc)-SaltLen]}, Key{Enc: good.Enc, Auth: testKey("x", 32)})
		} else {
			bad = append(bad, Key{Enc: good.Enc}, Key{Enc: good.Enc, Auth: good.Auth[:20]})
		}
		for _, k := range bad {
			err := a.CheckKey(k)
			if err == nil {
				t.Errorf("%s: key of %d+%d bytes accepted", a, len(k.Enc), len(k.Auth))
				continue
			}
			noKey(t, err.Error(), k)
		}
	}
}

// noKey fails the test if s shows any of the keys' bytes, in hex (either
// case), base64 or raw.
func noKey(t *testing.T, s string, keys ...Key) {
	t.Helper()
	for _, k := range keys {
		for _, b := range [][]byte{k.Enc, k.Auth} {
			if len(b) < 4 {
				continue
			}
			h := hex.EncodeToString(b)
			dec := strings.Trim(fmt.Sprint(b[:6]), "[]") // how %v prints a []byte
			for _, leak := range []string{h, strings.ToUpper(h), base64.StdEncoding.EncodeToString(b), string(b), h[:16], dec} {
				if strings.Contains(s, leak) {
					t.Errorf("key material in %q", s)
					return
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	for _, a := range Algorithms() {
		for _, tun := range []Tunnel{routeTunnel(a), policyTunnel(a)} {
			if err := tun.Validate(); err != nil {
				t.Errorf("%s %s: %v", tun.Mode, a, err)
			}
			if err := tun.Mirror().Validate(); err != nil {
				t.Errorf("mirror of %s %s: %v", tun.Mode, a, err)
			}
		}
	}
	mapped := routeTunnel(AES128GCM16)
	mapped.Local = netip.MustParseAddr("::ffff:192.0.2.1")
	if err := mapped.Validate(); err != nil {
		t.Errorf("IPv4-mapped local address: %v", err)
	}

	cases := []struct {
		name   string
		change func(*Tunnel)
		want   string
	}{
		{"no local", func(t *Tunnel) { t.Local = netip.Addr{} }, "addresses are required"},
		{"families", func(t *Tunnel) { t.Remote = netip.MustParseAddr("2001:db8::2") }, "different families"},
		{"same address", func(t *Tunnel) { t.Remote = t.Local }, "both 192.0.2.1"},
		{"unspecified", func(t *Tunnel) { t.Remote = netip.IPv4Unspecified() }, "unicast"},
		{"multicast", func(t *Tunnel) { t.Remote = netip.MustParseAddr("224.0.0.5") }, "unicast"},
		{"zone", func(t *Tunnel) {
			t.Local, t.Remote = netip.MustParseAddr("fe80::1%eth1"), netip.MustParseAddr("fe80::2%eth1")
		}, "zone"},
		{"spi out", func(t *Tunnel) { t.SPIOut = 0xff }, "at least 0x100"},
		{"spi in", func(t *Tunnel) { t.SPIIn = 0 }, "at least 0x100"},
		{"algorithm", func(t *Tunnel) { t.Algorithm = "aes128ccm16" }, "unknown algorithm"},
		{"no algorithm", func(t *Tunnel) { t.Algorithm = "" }, "unknown algorithm"},
		{"replay big", func(t *Tunnel) { t.ReplayWindow = 64 }, "replay window 64"},
		{"replay negative", func(t *Tunnel) { t.ReplayWindow = -2 }, "replay window -2"},
		{"encap 500", func(t *Tunnel) { t.Encap = &UDPEncap{RemotePort: 500} }, "port 500"},
		{"no mode", func(t *Tunnel) { t.Mode = "" }, "mode is required"},
		{"bad mode", func(t *Tunnel) { t.Mode = "transport" }, "unknown mode"},
		{"no interface", func(t *Tunnel) { t.Interface = "" }, "name is required"},
		{"long interface", func(t *Tunnel) { t.Interface = "ipsec-0123456789" }, "longer than 15"},
		{"slash interface", func(t *Tunnel) { t.Interface = "ip/0" }, "not a valid"},
		{"no if_id", func(t *Tunnel) { t.IfID = 0 }, "non-zero if_id"},
		{"MTU", func(t *Tunnel) { t.MTU = -1 }, "negative"},
		{"subnets on route", func(t *Tunnel) { t.LocalNets = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }, "policy-based tunnels only"},
		{"interface on policy", func(t *Tunnel) {
			t.Mode, t.LocalNets, t.RemoteNets = PolicyBased, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}
		}, "route-based tunnels only"},
		{"no subnets", func(t *Tunnel) { t.Mode, t.Interface, t.IfID, t.Parent = PolicyBased, "", 0, "" }, "needs local and remote inner subnets"},
		{"subnet families", func(t *Tunnel) {
			t.Mode, t.Interface, t.IfID, t.Parent = PolicyBased, "", 0, ""
			t.LocalNets, t.RemoteNets = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, []netip.Prefix{netip.MustParsePrefix("fd02::/64")}
		}, "must all be IPv4, not fd02::/64"},
		{"subnets against inner family", func(t *Tunnel) {
			t.Mode, t.Interface, t.IfID, t.Parent, t.InnerFamily = PolicyBased, "", 0, "", IPv6
			t.LocalNets, t.RemoteNets = []netip.Prefix{netip.MustParsePrefix("fd01::/64")}, []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}
		}, "must all be IPv6, not 10.2.0.0/16"},
		{"inner family", func(t *Tunnel) { t.InnerFamily = 5 }, "inner family 5"},
		{"short key out", func(t *Tunnel) { t.KeyOut.Enc = t.KeyOut.Enc[:16] }, "outbound key: aes128gcm16 needs an AES key and a 4-byte salt: 20 bytes, not 16"},
		{"auth key on GCM", func(t *Tunnel) { t.KeyIn.Auth = testKey("a", 32) }, "inbound key: aes128gcm16 takes no integrity key"},
		{"same key both ways", func(t *Tunnel) { t.KeyIn = t.KeyOut }, "reuse nonces"},
	}
	for _, c := range cases {
		tun := routeTunnel(AES128GCM16)
		c.change(&tun)
		err := tun.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "ipsec tunnel a-b: ") {
			t.Errorf("%s: error %q does not name the tunnel", c.name, err)
		}
		noKey(t, err.Error(), tun.KeyOut, tun.KeyIn)
	}

	// CBC with HMAC: a missing HMAC key, and the same key both ways is not
	// refused (random IVs, no nonce reuse).
	cbc := routeTunnel(AES256SHA256)
	cbc.KeyOut.Auth = nil
	if err := cbc.Validate(); err == nil || !strings.Contains(err.Error(), "HMAC-SHA-256 key of 32 bytes, not 0") {
		t.Errorf("CBC without HMAC key: %v", err)
	}
	cbc = routeTunnel(AES256SHA256)
	cbc.KeyIn = cbc.KeyOut
	if err := cbc.Validate(); err != nil {
		t.Errorf("CBC, one key both ways: %v", err)
	}

	// Remove and Status need no keys: a Tunnel read back from JSON lacks them.
	blob, err := json.Marshal(routeTunnel(AES128GCM16))
	if err != nil {
		t.Fatal(err)
	}
	var back Tunnel
	if err := json.Unmarshal(blob, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.validate(); err != nil {
		t.Errorf("key-less tunnel from JSON: %v", err)
	}
	if err := back.Validate(); err == nil {
		t.Error("a tunnel without keys passed Validate")
	}
}

func TestBuildStatesRouteGCM(t *testing.T) {
	tun := routeTunnel(AES128GCM16)
	got := buildStates(tun.normalized())
	want := []netlink.XfrmState{
		{
			Src: ip("192.0.2.1"), Dst: ip("192.0.2.2"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
			Spi: 0x1001, ReplayWindow: DefaultReplayWindow, Ifid: 42, Selector: sel("0.0.0.0/0"),
			Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: tun.KeyOut.Enc, ICVLen: 128},
		},
		{
			Src: ip("192.0.2.2"), Dst: ip("192.0.2.1"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
			Spi: 0x2002, ReplayWindow: DefaultReplayWindow, Ifid: 42, Selector: sel("0.0.0.0/0"),
			Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: tun.KeyIn.Enc, ICVLen: 128},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("states (-want +got):\n%s", d)
	}
	// IPv6 inside IPv4: the selector names the inner family.
	tun.InnerFamily = IPv6
	for _, s := range buildStates(tun.normalized()) {
		if d := cmp.Diff(sel("::/0"), s.Selector); d != "" {
			t.Errorf("IPv6 inner selector (-want +got):\n%s", d)
		}
	}
	// Identity only, for get and delete: no algorithm, no key.
	id := buildState(tun.normalized(), false, false)
	if id.Aead != nil || id.Crypt != nil || id.Auth != nil || id.Spi != 0x2002 || !id.Dst.Equal(ip("192.0.2.1")) {
		t.Errorf("inbound SA identity: %+v", id)
	}
}

func TestBuildStatesCBCEncapMark(t *testing.T) {
	tun := policyTunnel(AES256SHA256)
	tun.Encap = &UDPEncap{RemotePort: 4501}
	tun.Mark = &Mark{Value: 7}
	tun.ReplayWindow = NoReplayProtection
	tun.ReqID = 9
	got := buildStates(tun.normalized())
	want := []netlink.XfrmState{
		{
			Src: ip("2001:db8::1"), Dst: ip("2001:db8::2"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
			Spi: 0x300, Reqid: 9, ReplayWindow: 0, Selector: sel("0.0.0.0/0"),
			Mark:  &netlink.XfrmMark{Value: 7, Mask: 0xffffffff},
			Encap: &netlink.XfrmStateEncap{Type: netlink.XFRM_ENCAP_ESPINUDP, SrcPort: 4500, DstPort: 4501},
			Crypt: &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: tun.KeyOut.Enc},
			Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: tun.KeyOut.Auth, TruncateLen: 128},
		},
		{
			Src: ip("2001:db8::2"), Dst: ip("2001:db8::1"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
			Spi: 0x301, Reqid: 9, ReplayWindow: 0, Selector: sel("0.0.0.0/0"),
			Encap: &netlink.XfrmStateEncap{Type: netlink.XFRM_ENCAP_ESPINUDP, SrcPort: 4501, DstPort: 4500},
			Crypt: &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: tun.KeyIn.Enc},
			Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: tun.KeyIn.Auth, TruncateLen: 128},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("states (-want +got):\n%s", d)
	}
}

func TestBuildPoliciesRoute(t *testing.T) {
	tun := routeTunnel(AES128GCM16)
	tun.Mark = &Mark{Value: 0x10, Mask: 0xf0}
	out4 := []netlink.XfrmPolicyTmpl{{Src: ip("192.0.2.1"), Dst: ip("192.0.2.2"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL}}
	in4 := []netlink.XfrmPolicyTmpl{{Src: ip("192.0.2.2"), Dst: ip("192.0.2.1"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL}}
	mark := &netlink.XfrmMark{Value: 0x10, Mask: 0xf0}
	for _, c := range []struct {
		inner Family
		any   string
	}{{0, "0.0.0.0/0"}, {IPv4, "0.0.0.0/0"}, {IPv6, "::/0"}} {
		tun.InnerFamily = c.inner
		want := []netlink.XfrmPolicy{
			{Src: ipnet(c.any), Dst: ipnet(c.any), Dir: netlink.XFRM_DIR_OUT, Priority: 1000, Ifid: 42, Mark: mark, Tmpls: out4},
			{Src: ipnet(c.any), Dst: ipnet(c.any), Dir: netlink.XFRM_DIR_IN, Priority: 1000, Ifid: 42, Tmpls: in4},
			{Src: ipnet(c.any), Dst: ipnet(c.any), Dir: netlink.XFRM_DIR_FWD, Priority: 1000, Ifid: 42, Tmpls: in4},
		}
		if d := cmp.Diff(want, buildPolicies(tun.normalized())); d != "" {
			t.Errorf("inner family %d: policies (-want +got):\n%s", c.inner, d)
		}
	}
}

func TestBuildPoliciesPolicyBased(t *testing.T) {
	tun := policyTunnel(AES128GCM16)
	// Unmasked and IPv4-mapped subnets are normalized as the kernel would;
	// this one is 10.3.0.0/24 again, and makes no second set of policies.
	tun.LocalNets = append(tun.LocalNets, netip.MustParsePrefix("::ffff:10.3.0.1/120"))
	if err := tun.Validate(); err != nil {
		t.Fatal(err)
	}
	got := buildPolicies(tun.normalized())
	type sel struct{ dir, src, dst string }
	var gotSels []sel
	for _, p := range got {
		gotSels = append(gotSels, sel{dirName(p.Dir), p.Src.String(), p.Dst.String()})
		if p.Ifid != 0 || p.Mark != nil || len(p.Tmpls) != 1 {
			t.Errorf("%s: if_id %d, mark %v, %d templates", policyName(&p), p.Ifid, p.Mark, len(p.Tmpls))
			continue
		}
		tm := p.Tmpls[0]
		wantSrc, wantDst := "2001:db8::1", "2001:db8::2"
		if p.Dir != netlink.XFRM_DIR_OUT {
			wantSrc, wantDst = wantDst, wantSrc
		}
		if !tm.Src.Equal(ip(wantSrc)) || !tm.Dst.Equal(ip(wantDst)) || tm.Proto != netlink.XFRM_PROTO_ESP || tm.Mode != netlink.XFRM_MODE_TUNNEL {
			t.Errorf("%s: template %v", policyName(&p), tm)
		}
		ls, _ := p.Src.Mask.Size()
		ld, _ := p.Dst.Mask.Size()
		if p.Priority != 1000-ls-ld {
			t.Errorf("%s: priority %d", policyName(&p), p.Priority)
		}
	}
	want := []sel{
		{"out", "10.1.0.0/16", "10.2.0.0/24"}, {"in", "10.2.0.0/24", "10.1.0.0/16"}, {"fwd", "10.2.0.0/24", "10.1.0.0/16"},
		{"out", "10.3.0.0/24", "10.2.0.0/24"}, {"in", "10.2.0.0/24", "10.3.0.0/24"}, {"fwd", "10.2.0.0/24", "10.3.0.0/24"},
	}
	if d := cmp.Diff(want, gotSels, cmp.AllowUnexported(sel{})); d != "" {
		t.Errorf("selectors (-want +got):\n%s", d)
	}
	// Mark goes on the outbound policy only.
	tun.Mark = &Mark{Value: 3}
	for _, p := range buildPolicies(tun.normalized()) {
		if (p.Mark != nil) != (p.Dir == netlink.XFRM_DIR_OUT) {
			t.Errorf("%s: mark %v", policyName(&p), p.Mark)
		}
	}
}

func TestBuildLink(t *testing.T) {
	tun := routeTunnel(AES128GCM16)
	tun.MTU = 1400
	l := buildLink(tun, 5)
	if l.Name != "ipsec0" || l.ParentIndex != 5 || l.Ifid != 42 || l.MTU != 1400 || l.Type() != "xfrm" {
		t.Errorf("link: %+v", l)
	}
}

// TestMirror checks that the two ends fit: what one sends is what the other
// receives, field for field.
func TestMirror(t *testing.T) {
	for _, a := range Algorithms() {
		tun := routeTunnel(a)
		tun.Encap = &UDPEncap{LocalPort: 4500, RemotePort: 4600}
		peer := tun.Mirror()
		if d := cmp.Diff(tun, peer.Mirror(), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
			t.Errorf("%s: mirror of mirror (-want +got):\n%s", a, d)
		}
		mine, theirs := buildStates(tun.normalized()), buildStates(peer.normalized())
		if d := cmp.Diff(mine[0], theirs[1]); d != "" {
			t.Errorf("%s: outbound SA vs peer's inbound (-ours +peer's):\n%s", a, d)
		}
		if d := cmp.Diff(mine[1], theirs[0]); d != "" {
			t.Errorf("%s: inbound SA vs peer's outbound (-ours +peer's):\n%s", a, d)
		}
	}
	p := policyTunnel(AES128GCM16)
	m := p.Mirror()
	if m.LocalNets[0] != p.RemoteNets[0] || m.RemoteNets[1] != p.LocalNets[1] {
		t.Errorf("mirror subnets: %v %v", m.LocalNets, m.RemoteNets)
	}
	m.LocalNets[0] = netip.MustParsePrefix("10.9.0.0/16")
	if p.RemoteNets[0] == m.LocalNets[0] {
		t.Error("mirror shares its subnet slices with the original")
	}
}

func TestSPIPair(t *testing.T) {
	a1, b1 := SPIPair("lab/ce-pe")
	a2, b2 := SPIPair("lab/ce-pe")
	if a1 != a2 || b1 != b2 {
		t.Fatalf("SPIPair is not deterministic: %#x %#x, then %#x %#x", a1, b1, a2, b2)
	}
	seen := map[uint32]string{}
	for i := range 5000 {
		name := fmt.Sprintf("lab%d/t", i)
		a, b := SPIPair(name)
		if a < MinSPI || b < MinSPI || a == b {
			t.Fatalf("SPIPair(%q) = %#x, %#x", name, a, b)
		}
		for _, spi := range []uint32{a, b} {
			if other, dup := seen[spi]; dup {
				t.Errorf("SPI %#x for both %s and %s", spi, other, name)
			}
			seen[spi] = name
		}
	}
}

// TestKeysNeverShown prints and marshals a tunnel every way a caller might:
// no key byte may come out.
func TestKeysNeverShown(t *testing.T) {
	for _, a := range Algorithms() {
		tun := routeTunnel(a)
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			outs = append(outs, fmt.Sprintf(verb, tun), fmt.Sprintf(verb, tun.KeyOut), fmt.Sprintf(verb, &tun))
		}
		blob, err := json.Marshal(tun)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := json.Marshal(tun.KeyIn)
		if err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("apply", "tunnel", tun, "key", tun.KeyOut)
		outs = append(outs, string(blob), string(kb), logged.String())
		for _, o := range outs {
			noKey(t, o, tun.KeyOut, tun.KeyIn)
		}
		if !strings.Contains(fmt.Sprint(tun.KeyOut), "redacted") {
			t.Errorf("key prints as %v", tun.KeyOut)
		}
	}
}

// TestInfoHasNoKeys converts SAs as the kernel returns them — keys and all
// — into Info, marshals it, and looks for the keys.
func TestInfoHasNoKeys(t *testing.T) {
	for _, a := range Algorithms() {
		tun := routeTunnel(a)
		tun.Encap = &UDPEncap{}
		states := buildStates(tun.normalized())
		info := Info{Name: tun.Name, Mode: tun.Mode}
		for i := range states {
			s := states[i]
			s.Replay = &netlink.XfrmReplayState{OSeq: 5, Seq: 9}
			s.Statistics = netlink.XfrmStateStats{Bytes: 1000, Packets: 10, ReplayWindow: 1, Replay: 2, Failed: 3}
			sa := saInfo(&s, i == 0, false)
			if sa.Algorithm != a || sa.ICVBits != 128 || sa.Mode != "tunnel" || sa.IfID != 42 || sa.ReplayWindow != DefaultReplayWindow || sa.InnerFamily != IPv4 {
				t.Errorf("%s: SA info %+v", a, sa)
			}
			if sa.Bytes != 1000 || sa.Packets != 10 || sa.ReplayWindowDrops != 1 || sa.ReplayDrops != 2 || sa.IntegrityFailures != 3 {
				t.Errorf("%s: counters %+v", a, sa)
			}
			if sa.Encap == nil || sa.Encap.Type != "espinudp" || sa.Encap.SrcPort != 4500 || sa.Encap.DstPort != 4500 {
				t.Errorf("%s: encap %+v", a, sa.Encap)
			}
			if i == 0 {
				if sa.SPI != 0x1001 || sa.Src != tun.Local || sa.Dst != tun.Remote || sa.Seq != 5 {
					t.Errorf("%s: outbound %+v", a, sa)
				}
				info.Out = &sa
			} else {
				if sa.SPI != 0x2002 || sa.Src != tun.Remote || sa.Dst != tun.Local || sa.Seq != 9 {
					t.Errorf("%s: inbound %+v", a, sa)
				}
				info.In = &sa
			}
		}
		blob, err := json.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		noKey(t, string(blob), tun.KeyOut, tun.KeyIn)
		noKey(t, fmt.Sprintf("%+v %+v %+v", info, *info.Out, *info.In), tun.KeyOut, tun.KeyIn)
		if !bytes.Contains(blob, []byte(`"algorithm":"`+string(a)+`"`)) {
			t.Errorf("%s: JSON lacks the algorithm: %s", a, blob)
		}
	}

	// clearKeys zeroes what the kernel returned.
	s := buildState(routeTunnel(AES128SHA256).normalized(), true, true)
	enc, auth := bytes.Clone(s.Crypt.Key), bytes.Clone(s.Auth.Key)
	s.Crypt.Key, s.Auth.Key = enc, auth
	clearKeys(&s)
	if s.Crypt.Key != nil || s.Auth.Key != nil || !bytes.Equal(enc, make([]byte, len(enc))) || !bytes.Equal(auth, make([]byte, len(auth))) {
		t.Error("clearKeys left key bytes")
	}
}

func TestAlgorithmOfUnknown(t *testing.T) {
	s := netlink.XfrmState{Crypt: &netlink.XfrmStateAlgo{Name: "cbc(des3_ede)", Key: make([]byte, 24)},
		Auth: &netlink.XfrmStateAlgo{Name: "hmac(sha1)", Key: make([]byte, 20), TruncateLen: 96}}
	if a, k, icv := algorithmOf(&s); a != "" || k != "cbc(des3_ede)+hmac(sha1)" || icv != 96 {
		t.Errorf("algorithmOf = %q, %q, %d", a, k, icv)
	}
	// GCM with a 64-bit ICV is not aes128gcm16.
	s = netlink.XfrmState{Aead: &netlink.XfrmStateAlgo{Name: kernelGCM, Key: make([]byte, 20), ICVLen: 64}}
	if a, _, _ := algorithmOf(&s); a != "" {
		t.Errorf("GCM-64 taken for %s", a)
	}
}

// TestKernelAddr covers the netlink library reading an IPv6 address whose
// last 96 bits are zero as IPv4-mapped.
func TestKernelAddr(t *testing.T) {
	misread := net.ParseIP("::ffff:32.1.13.184") // 2001:db8:: as the library returns it
	if got := kernelAddr(misread, true); got != netip.MustParseAddr("2001:db8::") {
		t.Errorf("IPv6 tunnel: %s", got)
	}
	if got := kernelAddr(misread, false); got != netip.MustParseAddr("32.1.13.184") {
		t.Errorf("IPv4 tunnel: %s", got)
	}
	if got := kernelAddr(net.ParseIP("2001:db8::1"), true); got != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("plain IPv6: %s", got)
	}
}
