package ike

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/supervise"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// testPSK is key material that looks random and is the same on every run,
// so that a leak is easy to spot.
func testPSK(seed string) Secret {
	sum := sha256.Sum256([]byte("erlab ike test psk/" + seed))
	return Secret(sum[:])
}

// noPSK fails the test if s shows the key in any common encoding.
func noPSK(t *testing.T, what, s string, psk Secret) {
	t.Helper()
	for _, form := range []string{hex.EncodeToString(psk), strings.ToUpper(hex.EncodeToString(psk)),
		base64.StdEncoding.EncodeToString(psk), string(psk), fmt.Sprint([]byte(psk))} {
		if strings.Contains(s, form) {
			t.Errorf("%s shows the pre-shared key:\n%s", what, s)
			return
		}
	}
}

// netipComparers lets cmp compare netip values, whose fields are
// unexported.
var netipComparers = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
)

// testNode has a route-based initiating connection with the defaults and
// a policy-based responding one with everything set.
func testNode(dir string) Node {
	return Node{NetNS: "erlab-t.a", Dir: dir, Conns: []Conn{
		{Name: "to-b", Local: addrA, Remote: addrB, PSK: testPSK("to-b"), IfID: 42, Initiator: true},
		{Name: "branch_1", Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddr("2001:db8::2"), PSK: testPSK("branch"),
			Algorithm: "AES128-SHA256", LocalTS: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::ffff:10.3.0.1/120")},
			RemoteTS: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}, DPDDelay: 5 * time.Second, RekeyTime: 10 * time.Minute,
			LifeTime: 12 * time.Minute, IKERekeyTime: time.Hour, IKELifeTime: 2 * time.Hour, Encap: true},
	}}
}

func TestProposals(t *testing.T) {
	want := map[xfrm.Algorithm]Proposal{
		"aes128gcm16":   {IKE: "aes128gcm16-prfsha256-ecp256", ESP: "aes128gcm16-ecp256"},
		"aes256gcm16":   {IKE: "aes256gcm16-prfsha384-ecp384", ESP: "aes256gcm16-ecp384"},
		"aes128-sha256": {IKE: "aes128-sha256-modp2048", ESP: "aes128-sha256-modp2048"},
		"aes256-sha256": {IKE: "aes256-sha256-modp2048", ESP: "aes256-sha256-modp2048"},
		"":              {IKE: "aes256gcm16-prfsha384-ecp384", ESP: "aes256gcm16-ecp384"},
		" AES128GCM16 ": {IKE: "aes128gcm16-prfsha256-ecp256", ESP: "aes128gcm16-ecp256"},
	}
	for a, w := range want {
		got, err := Proposals(a)
		if err != nil || got != w {
			t.Errorf("Proposals(%q) = %+v, %v; want %+v", a, got, err, w)
		}
	}
	// Every algorithm lab/ipsec knows has proposals.
	for _, a := range xfrm.Algorithms() {
		if _, err := Proposals(a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	if _, err := Proposals("3des-md5"); err == nil || !strings.Contains(err.Error(), "aes128gcm16") {
		t.Errorf("unknown algorithm: %v, want an error listing the known ones", err)
	}
}

func TestDefaults(t *testing.T) {
	c := Conn{Name: "x", RekeyTime: 20 * time.Minute}.withDefaults()
	if c.Algorithm != xfrm.AES256GCM16 || c.DPDDelay != time.Second || c.RekeyTime != 20*time.Minute || c.LifeTime != 22*time.Minute ||
		c.IKERekeyTime != 4*time.Hour || c.IKELifeTime != 4*time.Hour+24*time.Minute {
		t.Errorf("defaults: %+v", c)
	}
	c = Conn{Name: "x"}.withDefaults()
	if c.RekeyTime != time.Hour || c.LifeTime != 70*time.Minute {
		t.Errorf("CHILD SA defaults: rekey %s, life %s", c.RekeyTime, c.LifeTime)
	}
}

func TestValidate(t *testing.T) {
	ok := testNode("/var/lib/erlab/lab1/a")
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid node: %v", err)
	}
	cases := []struct {
		name   string
		change func(n *Node)
		want   string
	}{
		{"no namespace", func(n *Node) { n.NetNS = "" }, "no network namespace"},
		{"relative dir", func(n *Node) { n.Dir = "lab/a" }, "clean absolute path"},
		{"dir with space", func(n *Node) { n.Dir = "/tmp/my lab" }, "clean absolute path"},
		{"dir with quote", func(n *Node) { n.Dir = `/tmp/a"b` }, "clean absolute path"},
		{"long dir", func(n *Node) { n.Dir = "/" + strings.Repeat("d", 100) }, "more than a unix socket takes"},
		{"no conns", func(n *Node) { n.Conns = nil }, "no connections"},
		{"bad name", func(n *Node) { n.Conns[0].Name = "a.b" }, `connection name "a.b"`},
		{"empty name", func(n *Node) { n.Conns[0].Name = "" }, `connection name ""`},
		{"duplicate name", func(n *Node) { n.Conns[1].Name = "to-b" }, `"to-b" is used twice`},
		{"no local", func(n *Node) { n.Conns[0].Local = netip.Addr{} }, "outer addresses are required"},
		{"families", func(n *Node) { n.Conns[0].Remote = netip.MustParseAddr("2001:db8::2") }, "different families"},
		{"same", func(n *Node) { n.Conns[0].Remote = addrA }, "both 192.0.2.1"},
		{"multicast", func(n *Node) { n.Conns[0].Remote = netip.MustParseAddr("224.0.0.5") }, "must be unicast"},
		{"no psk", func(n *Node) { n.Conns[0].PSK = nil }, "pre-shared key is required"},
		{"algorithm", func(n *Node) { n.Conns[0].Algorithm = "des" }, `unknown IPsec algorithm "des"`},
		{"ts with if_id", func(n *Node) { n.Conns[0].LocalTS = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }, "policy-based connections only"},
		{"policy without ts", func(n *Node) { n.Conns[1].RemoteTS = nil }, "needs local and remote traffic selectors"},
		{"fractional dpd", func(n *Node) { n.Conns[0].DPDDelay = 1500 * time.Millisecond }, "DPD delay 1.5s: a whole number of seconds"},
		{"negative rekey", func(n *Node) { n.Conns[0].RekeyTime = -time.Second }, "rekey time -1s"},
		{"life before rekey", func(n *Node) { n.Conns[1].LifeTime = 10 * time.Minute }, "life time 10m0s must exceed its rekey time 10m0s"},
		{"ike life before rekey", func(n *Node) { n.Conns[1].IKELifeTime = 30 * time.Minute }, "IKE SA life time 30m0s must exceed"},
		{"same pair", func(n *Node) {
			n.Conns[1].Local, n.Conns[1].Remote = addrA, netip.MustParseAddr("::ffff:192.0.2.2")
		}, "connections to-b and branch_1 both join 192.0.2.1 and 192.0.2.2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := testNode(ok.Dir)
			c.change(&n)
			err := n.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "ike: node") {
				t.Errorf("error does not say where: %v", err)
			}
			for _, conn := range testNode("").Conns {
				noPSK(t, "validation error", err.Error(), conn.PSK)
			}
		})
	}
}

// TestConfig checks the generated files against golden copies, and the
// lines that matter one by one.
func TestConfig(t *testing.T) {
	n := testNode("/var/lib/erlab/lab1/a")
	f := filesOf(n)
	ss := strongswanConf(f, "/usr/sbin/swanctl")
	sw := swanctlConf(n.conns())
	golden(t, "strongswan.conf.golden", []byte(ss))
	golden(t, "swanctl.conf.golden", []byte(sw))

	for name, text := range map[string]string{"strongswan.conf": ss, "swanctl.conf": sw} {
		for i, l := range strings.Split(text, "\n") {
			// One setting per line: several on one line silently break
			// the file (interop.md).
			if strings.Count(l, " = ") > 1 || strings.Count(l, "{") > 1 || strings.Contains(l, "{") && strings.Contains(l, "=") {
				t.Errorf("%s:%d: more than one setting on a line: %q", name, i+1, l)
			}
		}
	}
	lines := func(text string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(text, "\n") {
			m[strings.TrimSpace(l)]++
		}
		return m
	}
	ssl, swl := lines(ss), lines(sw)
	for _, want := range []string{
		"load = " + charonPlugins,
		"install_routes = no",
		"routing_table = 0",
		"retransmit_tries = 2",
		"retransmit_timeout = 1.0",
		"retransmit_base = 1.0",
		"socket = unix:///var/lib/erlab/lab1/a/ike/charon.vici",
		"path = /var/lib/erlab/lab1/a/ike/charon.log",
		"default = 1",
		"erlab-load = /usr/sbin/swanctl --load-all --noprompt --file /var/lib/erlab/lab1/a/ike/swanctl.conf",
	} {
		if ssl[want] == 0 {
			t.Errorf("strongswan.conf lacks %q", want)
		}
	}
	if ssl["socket = unix:///var/lib/erlab/lab1/a/ike/charon.vici"] != 2 {
		t.Error("strongswan.conf must name the vici socket for charon and for swanctl")
	}
	for _, want := range []string{
		"mobike = no",
		"version = 2",
		"keyingtries = 0",
		// to-b: route-based, default algorithm and timers, initiator.
		"proposals = aes256gcm16-prfsha384-ecp384",
		"esp_proposals = aes256gcm16-ecp384",
		"if_id_in = 42",
		"if_id_out = 42",
		"local_ts = 0.0.0.0/0,::/0",
		"remote_ts = 0.0.0.0/0,::/0",
		"dpd_delay = 1s",
		"rekey_time = 3600s",
		"life_time = 4200s",
		"rekey_time = 14400s",
		"over_time = 1440s",
		"start_action = start",
		"dpd_action = restart",
		"close_action = start",
		"encap = no",
		// branch_1: policy-based, CBC, responder, NAT-T forced.
		"proposals = aes128-sha256-modp2048",
		"esp_proposals = aes128-sha256-modp2048",
		"local_ts = 10.1.0.0/16,10.3.0.0/24",
		"remote_ts = 10.2.0.0/24",
		"dpd_delay = 5s",
		"rekey_time = 600s",
		"life_time = 720s",
		"over_time = 3600s",
		"start_action = none",
		"dpd_action = clear",
		"encap = yes",
		"id = 2001:db8::1",
		"id-remote = 2001:db8::2",
	} {
		if swl[want] == 0 {
			t.Errorf("swanctl.conf lacks %q", want)
		}
	}
	if swl["mobike = no"] != 2 {
		t.Errorf("mobike = no %d times, want once per connection", swl["mobike = no"])
	}
	// The keys: in swanctl.conf, once each, as hex; nowhere in
	// strongswan.conf.
	for _, c := range n.Conns {
		if swl["secret = 0x"+hex.EncodeToString(c.PSK)] != 1 {
			t.Errorf("swanctl.conf lacks the key of %s", c.Name)
		}
		noPSK(t, "strongswan.conf", ss, c.PSK)
	}
}

// TestWriteFiles checks the modes: swanctl.conf holds the keys.
func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	n := testNode(dir)
	f := filesOf(n)
	// A directory left too open, a stale socket, an old log.
	if err := os.Mkdir(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f.socket, f.log, f.charonPID} {
		if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeFiles(n, "/usr/sbin/swanctl"); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{f.dir: 0o700 | os.ModeDir, f.swanctl: 0o600, f.strongswan: 0o600, f.log + ".1": 0o644}
	for p, mode := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), mode)
		}
	}
	for _, p := range []string{f.socket, f.log, f.charonPID} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	// Written again (a restart): still 0600, even over a file of another
	// mode.
	os.Chmod(f.swanctl, 0o644)
	os.WriteFile(f.swanctl+".new", nil, 0o644)
	if err := writeFiles(n, "/usr/sbin/swanctl"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(f.swanctl); st.Mode() != 0o600 {
		t.Errorf("rewritten swanctl.conf has mode %v", st.Mode())
	}
	// No key in any other file of the directory.
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if e.Name() == "swanctl.conf" {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(f.dir, e.Name()))
		for _, c := range n.Conns {
			noPSK(t, e.Name(), string(b), c.PSK)
		}
	}
	// A missing node directory is an error that says so.
	n.Dir = filepath.Join(dir, "missing")
	if err := writeFiles(n, "/usr/sbin/swanctl"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing node directory: %v", err)
	}
}

// TestSecretNeverShown prints, marshals and logs connections every way a
// caller might.
func TestSecretNeverShown(t *testing.T) {
	n := testNode("/tmp/x")
	c := n.Conns[0]
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, c.PSK), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, n))
	}
	blob, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := json.Marshal(c.PSK)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "node", n, "conn", c, "psk", c.PSK)
	outs = append(outs, string(blob), string(pb), logged.String())
	for _, o := range outs {
		for _, conn := range n.Conns {
			noPSK(t, "output", o, conn.PSK)
		}
	}
	if !strings.Contains(fmt.Sprint(c.PSK), "redacted 32-byte") {
		t.Errorf("PSK prints as %v", c.PSK)
	}
	if strings.Contains(string(blob), "psk") || strings.Contains(string(blob), "redacted") {
		t.Errorf("JSON mentions the key: %s", blob)
	}
	// redact cleans charon's messages, and what vici errors hold.
	h := hex.EncodeToString(c.PSK)
	red := redact("syntax error near 0x"+h+" and "+strings.ToUpper(h)+" and "+string(c.PSK), n.Conns)
	noPSK(t, "redacted message", red, c.PSK)
}

// TestLogLines reads the filelog's lines of one connection, and the
// authentication failures WaitEstablished stops on.
func TestLogLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "charon.log")
	text := `2026-11-22 06:01:05.109 07[IKE] <tun0|1> initiating IKE_SA tun0[1] to 192.0.2.2
2026-11-22 06:01:05.188 15[IKE] <1> 192.0.2.1 is initiating an IKE_SA
2026-11-22 06:01:05.190 15[CFG] <1> received proposals: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384
2026-11-22 06:01:05.191 16[IKE] <4> 192.0.2.7 is initiating an IKE_SA
2026-11-22 06:01:05.200 15[IKE] <tun01|2> initiating IKE_SA tun01[2] to 192.0.2.9
2026-11-22 06:01:05.353 12[IKE] <tun0|1> received AUTHENTICATION_FAILED notify error
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, size := logLines(path, 0, "tun0", "")
	if len(lines) != 2 || size != int64(len(text)) || !strings.Contains(lines[1], authFailures[0].marker) {
		t.Errorf("lines %q, size %d", lines, size)
	}
	// With the peer's address: the responder's lines from before it knew
	// the connection, not other connections' lines.
	if lines, _ := logLines(path, 0, "tun0", "192.0.2.1"); len(lines) != 4 || !strings.Contains(lines[1], "<1>") || !strings.Contains(lines[2], "received proposals") {
		t.Errorf("with the peer: %q", lines)
	}
	lines, _ = logLines(path, int64(strings.Index(text, "2026-11-22 06:01:05.353")), "tun0", "")
	if len(lines) != 1 {
		t.Errorf("from an offset: %q", lines)
	}
	if lines, size := logLines(path+".missing", 0, "tun0", ""); lines != nil || size != 0 {
		t.Errorf("missing log: %q %d", lines, size)
	}
}

// TestSupervisor runs charon's supervisor (lab/supervise: this test binary
// re-executed, see TestMain) with a stand-in for charon (no namespace, no
// root): it restarts the daemon when it dies, keeps its PID, and Stop ends
// both.
func TestSupervisor(t *testing.T) {
	dir := t.TempDir()
	n := Node{NetNS: "none", Dir: dir}
	f := filesOf(n)
	if err := os.Mkdir(f.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "fake-charon")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexec sleep 60\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "supervisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	spec := supervisorSpec(fake, f)
	spec.BaseEnv = os.Environ()
	cmd, err := supervise.Command(spec, logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	if err := os.WriteFile(f.superPID, fmt.Appendf(nil, "%d\n", cmd.Process.Pid), 0o600); err != nil {
		t.Fatal(err)
	}
	waitPID := func(not int) int {
		t.Helper()
		for i := 0; i < 100; i++ {
			if pid, err := readPID(f.charonPID); err == nil && pid != not && alive(pid) {
				return pid
			}
			time.Sleep(50 * time.Millisecond)
		}
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("no charon PID other than %d; supervisor said:\n%s", not, b)
		return 0
	}
	first := waitPID(0)
	if pid, ok := running(f); !ok || pid != cmd.Process.Pid {
		t.Errorf("running: %d %v", pid, ok)
	}
	syscall.Kill(first, syscall.SIGKILL) // a crash: restarted after 1 s
	second := waitPID(first)
	t.Logf("daemon %d killed, restarted as %d", first, second)

	if err := Stop(n); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("supervisor still running after Stop")
	}
	// Stop waits for a real charon (it knows it by its binary and
	// environment); this stand-in it only signals, with its group, so give
	// the signal a moment to land.
	for i := 0; i < 40 && alive(second); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(second) {
		t.Errorf("daemon %d still running 2 s after Stop", second)
	}
	if _, ok := running(f); ok {
		t.Error("running after Stop")
	}
	if _, err := os.Stat(f.superPID); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PID file left: %v", err)
	}
	if b, _ := os.ReadFile(logf.Name()); !strings.Contains(string(b), `exit="killed by signal 9" restarts=1`) {
		t.Errorf("supervisor output: %q", b)
	}
	// Stopping again, or a node never started, is no error; a PID file
	// naming someone else's process is not acted on.
	if err := Stop(n); err != nil {
		t.Error(err)
	}
	os.WriteFile(f.superPID, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o600)
	if err := Stop(n); err != nil {
		t.Error(err)
	}
}
