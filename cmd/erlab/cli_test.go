package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/probe"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// run runs the CLI in-process and returns its stdout, stderr and exit status.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb}
	root := newRoot(g)
	root.SetArgs(args)
	code := report(&errb, root.Execute())
	return out.String(), errb.String(), code
}

func TestValidateReportsEveryProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(file, []byte("name: bad\ntopology:\n  nodes:\n    a: {kind: vm}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"), 0o644)
	_, stderr, code := run(t, "validate", "--no-kernel", "-t", file)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		file + `:4:15: node "a": unknown kind "vm" (supported: bridge, linux, netns, router)`,
		file + `:6:29: links[0]: endpoint "b:eth1": no node named "b"`,
		"2 problem(s) in the topology; nothing was changed",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"deploy"},
		{"destroy"},
		{"destroy", "--all", "--name", "x"},
		{"link", "sideways", "-t", "x.yml", "a:eth1"},
		{"link", "down", "--name", "x", "a"},
		{"link", "impair", "--name", "x", "a:eth1"},
		{"inspect", "--name", "x", "--format", "yaml"},
		{"graph", "-t", "../../topologies/er-peerings-vlan.yml", "--format", "svg"},
	} {
		_, stderr, code := run(t, args...)
		if code != 1 || !strings.HasPrefix(stderr, "erlab: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestNeedsRoot: run as an ordinary user, a command that needs root says so,
// and why, before it touches anything; those that do not need it work.
func TestNeedsRoot(t *testing.T) {
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 1000 }
	file := "../../topologies/er-private-peering.yml"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "-t", file}, "erlab deploy needs root: it creates network namespaces"},
		{[]string{"inspect", "--all"}, "erlab inspect needs root: it reads the lab's namespaces, and its state in /run/erlab"},
		{[]string{"validate", "-t", file}, "checking this kernel needs root"},
		{[]string{"macsec", "rotate", "-t", file, "ce:eth1"}, "erlab macsec rotate needs root"},
		{[]string{"link", "impair", "-t", file, "ce:eth1", "--delay", "5ms"}, "erlab link impair needs root: it changes queueing disciplines"},
	} {
		_, stderr, code := run(t, c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "permission denied") || strings.Contains(stderr, "not permitted") {
			t.Errorf("%v: exit %d\n%s", c.args, code, stderr)
		}
	}
	if _, stderr, code := run(t, "validate", "--no-kernel", "-t", file); code != 0 {
		t.Errorf("validate --no-kernel as a user: exit %d %s", code, stderr)
	}
	if _, stderr, code := run(t, "graph", "-t", file); code != 0 {
		t.Errorf("graph as a user: exit %d %s", code, stderr)
	}
}

// link impair refuses a bad impairment before it opens the lab, saying
// which value and why.
func TestImpairUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "x", "a:eth1"}, "give an impairment (--delay, --jitter, --loss, --corrupt, --duplicate, --reorder, --rate) or --clear"},
		{[]string{"--name", "x", "a:eth1", "--clear", "--delay", "5ms"}, "--clear removes the impairment: give it alone"},
		{[]string{"--name", "x", "a:eth1", "--jitter", "2ms"}, "impair: jitter 2ms needs a delay"},
		{[]string{"--name", "x", "a:eth1", "--loss", "150%", "--rate", "fast"}, `impair: loss "150%": a percentage from 0 to 100, such as 0.5%; impair: rate "fast": a rate such as 100mbit`},
		{[]string{"--name", "x", "a", "--delay", "1ms"}, `"a": expected NODE:IFACE`},
	} {
		_, stderr, code := run(t, append([]string{"link", "impair"}, c.args...)...)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, stderr, c.want)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, code := run(t, args...)
		if code != 0 || !strings.HasPrefix(out, "erlab ") || !strings.Contains(out, "go1.") || !strings.Contains(out, "GoBGP v4.8.0") {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
}

// TestRefusedBeforeAnything: bad flags are refused before any output that
// would read as a start (a probe at "0 pps" once sent 1000).
func TestRefusedBeforeAnything(t *testing.T) {
	file := "../../topologies/er-private-peering.yml"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"probe", "-t", file, "onprem", "vnet", "--rate", "0"}, "rate 0 pps: between 1 and 100000"},
		{[]string{"probe", "-t", file, "onprem", "vnet", "--rate", "1000000"}, "rate 1000000 pps"},
		{[]string{"probe", "-t", file, "onprem", "vnet", "--duration", "0s"}, "duration 0s"},
		{[]string{"exec", "onprem", "-t", file, "--", "true"}, "erlab's own flags go before NODE"},
		{[]string{"exec", "-t", file, "onprem"}, "no command after NODE"},
		{[]string{"verify", "encryption", "-t", file, "--format", "yaml"}, `unknown format "yaml"`},
	} {
		out, stderr, code := run(t, c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "probing") || out != "" {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q", c.args, code, out, stderr)
		}
	}
}

// TestKeygenMakesTheFolder: the README's keygen commands write into
// topologies/keys/, which a fresh checkout does not have.
func TestKeygenMakesTheFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out, stderr, code := run(t, "macsec", "keygen", "--bytes", "16", filepath.Join(dir, "a.cak"), filepath.Join(dir, "a.ckn"))
	if code != 0 {
		t.Fatalf("keygen: exit %d %s", code, stderr)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("keys folder: %v %v", st.Mode(), err)
	}
	for _, f := range []string{"a.cak", "a.ckn"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		st, _ := os.Stat(filepath.Join(dir, f))
		if err != nil || len(strings.TrimSpace(string(b))) != 32 || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %q %v %v", f, b, err, st.Mode())
		}
	}
	if !strings.Contains(out, "16 random bytes, mode 0600") {
		t.Errorf("keygen said %q", out)
	}
	if _, stderr, code := run(t, "macsec", "keygen", filepath.Join(dir, "a.cak")); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("keygen over an existing key: exit %d %s", code, stderr)
	}
}

// TestGenerateKeys: a lab whose key files are missing is refused with the
// command that makes them; --generate-keys makes them (the folder too), of
// the cipher's length, mode 0600, says so, and never prints a key.
func TestGenerateKeys(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../topologies/er-direct.yml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "er-direct.yml")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run(t, "validate", "--no-kernel", "-t", file); code != 1 || !strings.Contains(stderr, "does not exist; make one with: erlab macsec keygen --bytes 32") {
		t.Fatalf("missing keys: exit %d %s", code, stderr)
	}
	out, stderr, code := run(t, "validate", "--no-kernel", "--generate-keys", "-t", file)
	if code != 0 || !strings.Contains(stderr, "made key file keys/primary-ce.key (32 random bytes, mode 0600)") {
		t.Fatalf("--generate-keys: exit %d\n%s%s", code, out, stderr)
	}
	for _, k := range []string{"primary-ce", "primary-msee", "secondary-ce", "secondary-msee"} {
		path := filepath.Join(dir, "keys", k+".key")
		b, err := os.ReadFile(path)
		st, _ := os.Stat(path)
		if err != nil || len(strings.TrimSpace(string(b))) != 64 || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", path, err, st)
		}
		if strings.Contains(out+stderr, strings.TrimSpace(string(b))) {
			t.Errorf("a key was printed")
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "keys")); st.Mode().Perm() != 0o700 {
		t.Errorf("keys folder mode %v", st.Mode())
	}
	// Made once: a second run finds them.
	if _, stderr, code := run(t, "validate", "--no-kernel", "--generate-keys", "-t", file); code != 0 || strings.Contains(stderr, "made key file") {
		t.Errorf("second run: exit %d %s", code, stderr)
	}
}

// TestExpandCommand: erlab expand prints a topology of its own, every hop
// of the circuit in it; a broken declaration fails with its position.
func TestExpandCommand(t *testing.T) {
	out, stderr, code := run(t, "expand", "-t", "../../topologies/er-circuit-l2.yml")
	if code != 0 {
		t.Fatalf("exit %d %s", code, stderr)
	}
	for _, want := range []string{"# erlab expand -t ../../topologies/er-circuit-l2.yml", "\n    contoso-msee1:\n", "\n    contoso-pe1:\n", "asn: 12076", "eth1.30.100", "provider-silent-failure:"} {
		if !strings.Contains(out, want) {
			t.Errorf("expand output lacks %q", want)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("name: x\nexpressroute:\n  sites:\n    - { name: s, asn: 12076, network: 10.1.0.0/24 }\n"), 0o644)
	if _, stderr, code := run(t, "expand", "-t", bad); code != 1 || !strings.Contains(stderr, "bad.yml:4:23: expressroute: site \"s\": asn 12076 cannot be a customer's") {
		t.Errorf("bad declaration: exit %d %s", code, stderr)
	}
}

func TestGraphCommand(t *testing.T) {
	out, _, code := run(t, "graph", "-t", "../../topologies/er-private-peering.yml", "--format", "dot")
	if code != 0 || !strings.Contains(out, `"ce" -- "pe1" [taillabel="eth1 192.168.100.129/30", headlabel="eth1"];`) {
		t.Errorf("exit %d:\n%s", code, out)
	}
	// The circuit-level view of a declaration: its peering's tags and ASNs.
	out, _, code = run(t, "graph", "-t", "../../topologies/er-circuit-l2.yml", "--view", "circuits")
	if code != 0 || !strings.Contains(out, "private: C-tag 100 · 192.168.100.128/29 · 2001:db8:100::/126 + 2001:db8:100::4/126 · AS 65010 ↔ 12076 · limit 4,000") {
		t.Errorf("--view circuits: exit %d:\n%s", code, out)
	}
	if _, stderr, code := run(t, "graph", "-t", "../../topologies/er-circuit-l2.yml", "--view", "hops"); code != 1 || !strings.Contains(stderr, `unknown graph view "hops" (links, circuits)`) {
		t.Errorf("an unknown view: exit %d %s", code, stderr)
	}
}

// TestIntegrationCLI walks the commands a new user runs, in order, through
// the CLI itself: deploy, inspect (table and JSON), exec, link impair,
// link down/up, inspect --all, destroy twice.
func TestIntegrationCLI(t *testing.T) {
	labtest.Integration(t)
	dir := t.TempDir()
	file, name := cliLab(t, privatePeering(t), "er-private", "cli")

	out, stderr, code := run(t, "deploy", "-t", file)
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(out, "192.168.100.129/30, 2001:db8:100::1/126") || !strings.Contains(stderr, "Creating links (8)") {
		t.Errorf("deploy summary:\n%s\nprogress:\n%s", out, stderr)
	}
	if _, stderr, code := run(t, "deploy", "-t", file); code != 1 || !strings.Contains(stderr, "already deployed") {
		t.Errorf("second deploy: exit %d %s", code, stderr)
	}

	out, _, _ = run(t, "inspect", "-t", file, "--format", "json")
	var info lab.LabInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Name != name || len(info.Nodes) != 8 {
		t.Fatalf("inspect json: %v\n%s", err, out)
	}

	if out, _, code := run(t, "exec", "-t", file, "onprem", "--", "ping", "-c1", "-W2", "10.10.0.4"); code != 0 || !strings.Contains(out, "1 received") {
		t.Errorf("exec ping: exit %d\n%s", code, out)
	}
	if _, _, code := run(t, "exec", "-t", file, "ce", "--", "sh", "-c", "exit 42"); code != 42 {
		t.Errorf("exec exit status %d, want 42", code)
	}

	// The command's own flags need no --; a typo of a node is told apart.
	if out, _, code := run(t, "exec", "-t", file, "onprem", "ping", "-c1", "-W2", "10.10.0.4"); code != 0 || !strings.Contains(out, "1 received") {
		t.Errorf("exec without --: exit %d\n%s", code, out)
	}
	if _, stderr, code := run(t, "exec", "-t", file, "msee", "--", "true"); code != 1 || !strings.Contains(stderr, `has no node "msee" (did you mean "msee1"?`) {
		t.Errorf("exec in a node that is not there: exit %d %s", code, stderr)
	}
	if _, stderr, code := run(t, "link", "down", "-t", file, "ce:lo"); code != 1 || !strings.Contains(stderr, `no link end "ce:lo"`) || !strings.Contains(stderr, "ce:eth1") {
		t.Errorf("link down of the loopback: exit %d %s", code, stderr)
	}
	if _, stderr, code := run(t, "bgp", "-t", file, "ce"); code != 1 || !strings.Contains(stderr, "node ce runs no BGP agent") {
		t.Errorf("bgp on a netns node: exit %d %s", code, stderr)
	}

	// verify: a verdict in every format, and the exit status with it.
	for _, format := range []string{"table", "json"} {
		out, stderr, code := run(t, "verify", "connectivity", "-t", file, "--format", format)
		if code != 0 || !strings.Contains(out, "10.10.0.4") {
			t.Errorf("verify connectivity --format %s: exit %d\n%s\n%s", format, code, out, stderr)
		}
		// No MACsec or IPsec in this lab: nothing checked is no pass.
		out, stderr, code = run(t, "verify", "encryption", "-t", file, "--format", format)
		if code != 1 || !strings.Contains(stderr, "nothing to check") {
			t.Errorf("verify encryption of a lab with nothing encrypted --format %s: exit %d\n%s\n%s", format, code, out, stderr)
		}
		// A plaintext link named: checked, and it fails.
		out, stderr, code = run(t, "verify", "encryption", "-t", file, "--format", format, "ce:eth1")
		if code != 1 || !strings.Contains(stderr, "1 of 1 links and tunnels failed") {
			t.Errorf("verify encryption of a plaintext link --format %s: exit %d\n%s\n%s", format, code, out, stderr)
		}
		if format == "json" {
			var v struct {
				Pass   bool
				Checks []lab.EncryptionCheck
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil || v.Pass || len(v.Checks) != 1 || v.Checks[0].Pass {
				t.Errorf("verify encryption json: %v\n%s", err, out)
			}
		}
		for _, target := range []string{"nosuch", "ce:eth7"} {
			out, stderr, code = run(t, "verify", "encryption", "-t", file, "--format", format, target)
			if code != 1 || !strings.Contains(stderr, "has no link end (NODE:IFACE) or tunnel") || out != "" {
				t.Errorf("verify encryption %s --format %s: exit %d\n%s\n%s", target, format, code, out, stderr)
			}
		}
	}
	if _, stderr, _ := run(t, "verify", "encryption", "-t", file, "ce:eth7"); !strings.Contains(stderr, `(did you mean "ce:eth1"?)`) {
		t.Errorf("verify encryption ce:eth7: %s", stderr)
	}

	// probe --both: a stream each way, each saying which way it went.
	out, stderr, code = run(t, "probe", "-t", file, "onprem", "vnet", "--both", "--rate", "200", "--duration", "1s", "--format", "json")
	var flows []probe.FlowReport
	if err := json.Unmarshal([]byte(out), &flows); code != 0 || err != nil || len(flows) != 2 {
		t.Fatalf("probe --both: exit %d %v\n%s\n%s", code, err, out, stderr)
	}
	for i, want := range [][2]string{{"onprem", "vnet"}, {"vnet", "onprem"}} {
		f := flows[i]
		if f.From != want[0] || f.Receiver != want[1] || f.Direction != "one-way" || f.Sent != 200 || f.Received != 200 || f.Duration > 2*time.Second {
			t.Errorf("probe --both stream %d: %+v", i, f)
		}
	}
	if out, _, _ := run(t, "graph", "--name", name); !strings.Contains(out, "title: "+name) && !strings.Contains(out, "n_ce") {
		t.Errorf("graph --name:\n%s", out)
	}

	// capture: two ICMP frames of a ping across ce:eth1, to a pcap file.
	pcap := filepath.Join(dir, "c.pcap")
	captured := make(chan int, 1)
	go func() {
		_, _, code := run(t, "capture", "-t", file, "ce:eth1", "-w", pcap, "-c", "2", "icmp")
		captured <- code
	}()
	// tcpdump writes the file's header once it listens.
	labtest.Eventually(t, 10*time.Second, "capture listening", func() bool {
		st, err := os.Stat(pcap)
		return err == nil && st.Size() >= 24
	})
	run(t, "exec", "-t", file, "onprem", "--", "ping", "-c2", "-i", "0.2", "10.10.0.4")
	select {
	case code := <-captured:
		b, _ := os.ReadFile(pcap)
		if code != 0 || len(b) < 24+2*(16+98) || !bytes.HasPrefix(b, []byte{0xd4, 0xc3, 0xb2, 0xa1}) {
			t.Errorf("capture: exit %d, %d bytes of pcap", code, len(b))
		}
	case <-time.After(10 * time.Second):
		t.Error("capture -c 2 did not end")
	}

	// link impair: a rate alone is tbf, which the host kernel has; both
	// ends; inspect reads it back from the kernel; --clear removes it.
	out, stderr, code = run(t, "link", "impair", "-t", file, "ce:eth1", "--both", "--rate", "50mbit")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || lines[0] != "ce:eth1: rate 50mbit" || !strings.HasSuffix(lines[1], ": rate 50mbit") {
		t.Errorf("link impair --both: exit %d\n%s\n%s", code, out, stderr)
	}
	out, _, _ = run(t, "inspect", "--name", name, "--format", "json")
	if strings.Count(out, `"qdisc": "tbf"`) != 2 || strings.Count(out, `"rate_bps": 50000000`) != 2 {
		t.Errorf("inspect json after link impair: %s", out)
	}
	if out, _, _ = run(t, "inspect", "--name", name); !hasRow(out, "ce:eth1", "tbf", "-", "-", "-", "-", "-", "-", "50mbit") {
		t.Errorf("inspect table after link impair:\n%s", out)
	}
	if _, stderr, code := run(t, "link", "impair", "-t", file, "ce:eth9", "--delay", "5ms"); code != 1 || !strings.Contains(stderr, `node ce has no interface "eth9" (it has: eth1`) {
		t.Errorf("link impair of an interface that is not there: exit %d %s", code, stderr)
	}
	if out, stderr, code := run(t, "link", "impair", "-t", file, "ce:eth1", "--both", "--clear"); code != 0 || strings.Count(out, "impairment cleared") != 2 {
		t.Errorf("link impair --clear: exit %d\n%s\n%s", code, out, stderr)
	}
	if out, _, _ = run(t, "inspect", "--name", name, "--format", "json"); strings.Contains(out, `"netem"`) {
		t.Errorf("inspect json after --clear still shows impairments: %s", out)
	}

	if _, stderr, code := run(t, "link", "down", "-t", file, "msee1:eth1"); code != 0 {
		t.Fatalf("link down: %s", stderr)
	}
	out, _, _ = run(t, "inspect", "--name", name)
	if !hasRow(out, "msee1", "netns", "erlab-"+name+".msee1", "eth1", "down", "1500", "192.168.100.130/30,", "2001:db8:100::2/126") ||
		!hasRow(out, "3", "pe1:eth2", "no-carrier", "msee1:eth1", "down") {
		t.Errorf("inspect after link down:\n%s", out)
	}
	run(t, "link", "up", "--name", name, "msee1:eth1")

	if out, _, _ = run(t, "inspect", "--all"); !strings.Contains(out, "lab "+name+" (deployed)") {
		t.Errorf("inspect --all:\n%s", out)
	}
	out, _, code = run(t, "destroy", "-t", file)
	if code != 0 || !strings.Contains(out, "removed 8 namespaces") {
		t.Errorf("destroy: exit %d %s", code, out)
	}
	if out, _, code = run(t, "destroy", "--name", name); code != 0 || !strings.Contains(out, "removed 0 namespaces") {
		t.Errorf("second destroy: exit %d %s", code, out)
	}
	if _, stderr, code := run(t, "inspect", "--name", name); code != 1 || !strings.Contains(stderr, "not deployed") {
		t.Errorf("inspect after destroy: exit %d %s", code, stderr)
	}
}

// cliLab writes a topology renamed to a unique lab name (its name: line
// replaced) into a temporary directory for the CLI to deploy, points the
// CLI's state root at the test's own, and destroys the lab when the test
// ends. It returns the file and the lab's name.
func cliLab(t *testing.T, src, oldName, prefix string) (file, name string) {
	t.Helper()
	name = labtest.Name(prefix)
	file = filepath.Join(t.TempDir(), "lab.yml")
	if err := os.WriteFile(file, []byte(strings.Replace(src, "name: "+oldName, "name: "+name, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := labtest.Options(t)
	t.Setenv(lab.StateRootEnv, opts.StateRoot)
	l, _ := lab.OpenName(name, opts)
	t.Cleanup(func() { labtest.Destroy(t, l) })
	return file, name
}

// privatePeering is topologies/er-private-peering.yml, for cliLab.
func privatePeering(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../../topologies/er-private-peering.yml")
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// hasRow reports whether a table has a line of exactly these fields.
func hasRow(table string, fields ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

func TestMain(m *testing.M) {
	lab.MaybeRunHelper(lab.Options{}) // deploys re-execute this test binary as their helpers (agents, keepers)
	os.Exit(m.Run())
}

// erlab drill as a CI user runs it: list, a run whose bound is tighter
// than what it measures exits 1 in every format, the JSON carries the
// contract's fields, and the JUnit file one failing testcase.
func TestIntegrationCLIDrill(t *testing.T) {
	labtest.Integration(t)
	dir := t.TempDir()
	name := labtest.Name("drill")
	file := filepath.Join(dir, "lab.yml")
	os.WriteFile(file, []byte(`name: `+name+`
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.9.0.1/30]}
    b:
      interfaces:
        eth1: {addresses: [10.9.0.2/30]}
  links:
    - endpoints: [a:eth1, b:eth1]
drills:
  hole:
    description: 300 ms of silence
    flows:
      - {from: a, to: b, rate: 1000}
    steps:
      - {after: 500ms, do: {blackhole: a:eth1}}
      - {after: 300ms, do: {restore: a:eth1}}
      - {after: 500ms}
    expect:
      - {flow: a->b, max-outage: 50ms}
      - {encrypted: false, link: a:eth1}   # at the last step's end: plaintext, the marker crosses in clear
`), 0o644)
	opts := labtest.Options(t)
	t.Setenv(lab.StateRootEnv, opts.StateRoot)
	l, _ := lab.OpenName(name, opts)
	t.Cleanup(func() { labtest.Destroy(t, l) })
	if _, stderr, code := run(t, "deploy", "-q", "-t", file); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}
	out, _, code := run(t, "drill", "list", "-t", file)
	if code != 0 || !hasRow(out, "hole", "1", "3", "2", "300", "ms", "of", "silence") {
		t.Errorf("drill list: exit %d\n%s", code, out)
	}
	if _, stderr, code := run(t, "drill", "run", "-t", file, "hol"); code != 1 || !strings.Contains(stderr, `no drill "hol" (it has: hole); did you mean hole?`) {
		t.Errorf("a drill name that names nothing: exit %d\n%s", code, stderr)
	}
	svgDir := filepath.Join(dir, "timelines")
	out, stderr, code := run(t, "drill", "run", "-t", file, "--svg", svgDir)
	if code != 1 || !strings.Contains(out, "FAIL  a->b max-outage 50ms: outage") || !strings.Contains(out, "PASS  encrypted false: a:eth1 at step 3: verify encryption: FAIL: the marker crossed in clear") ||
		!strings.Contains(stderr, "1 of 1 drills failed") ||
		!strings.Contains(stderr, "timeline: "+filepath.Join(svgDir, "hole-run1.svg")) {
		t.Errorf("table: exit %d\n%s\n%s", code, out, stderr)
	}
	if svg, err := os.ReadFile(filepath.Join(svgDir, "hole-run1.svg")); err != nil || !strings.Contains(string(svg), `class="loss"`) {
		t.Errorf("timeline: %v\n%.300s", err, svg)
	}
	t.Run("browser", func(t *testing.T) { checkTimelineInBrowser(t, filepath.Join(svgDir, "hole-run1.svg")) })
	junit := filepath.Join(dir, "drills.xml")
	out, _, code = run(t, "drill", "run", "-q", "-t", file, "--format", "json", "--junit", junit)
	var rep struct {
		Pass   bool `json:"pass"`
		Drills []struct {
			Name string `json:"name"`
			Pass bool   `json:"pass"`
			Runs []struct {
				Flows []struct {
					From     string  `json:"from"`
					To       string  `json:"to"`
					Sent     int     `json:"sent"`
					Received int     `json:"received"`
					Lost     int     `json:"lost"`
					OutageMS float64 `json:"outage_ms"`
				} `json:"flows"`
				Expectations []struct {
					Flow     string `json:"flow"`
					At       int    `json:"at_step"`
					Pass     bool   `json:"pass"`
					Measured string `json:"measured"`
				} `json:"expectations"`
			} `json:"runs"`
		} `json:"drills"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != 1 || rep.Pass || len(rep.Drills) != 1 || rep.Drills[0].Pass || len(rep.Drills[0].Runs) != 1 {
		t.Fatalf("json: exit %d, %+v", code, rep)
	}
	f := rep.Drills[0].Runs[0].Flows[0]
	if f.From != "a" || f.To != "b" || f.Sent == 0 || f.Received+f.Lost != f.Sent || f.OutageMS < 250 || f.OutageMS > 600 {
		t.Errorf("json flow: %+v; want a 300 ms outage", f)
	}
	if ex := rep.Drills[0].Runs[0].Expectations; len(ex) != 2 || ex[0].Flow != "a->b" || ex[0].Pass || ex[1].Flow != "" || ex[1].At != 3 || !ex[1].Pass {
		t.Errorf("json expectations: %+v", ex)
	}
	x, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(x), `<testsuite name="hole" tests="2" failures="1">`) || !strings.Contains(string(x), `<failure message="outage`) {
		t.Errorf("junit: %v\n%s", err, x)
	}
}

// deploy --wait and erlab wait return once the routing has converged,
// and fail, saying what is missing, when it does not within the timeout.
func TestIntegrationCLIWait(t *testing.T) {
	labtest.Integration(t)
	dir := t.TempDir()
	name := labtest.Name("wait")
	file := filepath.Join(dir, "lab.yml")
	os.WriteFile(file, []byte(`name: `+name+`
topology:
  nodes:
    r1:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
        eth2: {addresses: [10.1.0.1/24]}
      bgp: {asn: 65001, networks: [10.1.0.0/24], neighbors: [{address: 10.0.0.2, remote-as: 65002}]}
    r2:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
      bgp: {asn: 65002, neighbors: [{address: 10.0.0.1, remote-as: 65001}]}
    h:
      interfaces:
        eth1: {addresses: [10.1.0.2/24]}
  links:
    - endpoints: [r1:eth1, r2:eth1]
    - endpoints: [r1:eth2, h:eth1]
`), 0o644)
	opts := labtest.Options(t)
	t.Setenv(lab.StateRootEnv, opts.StateRoot)
	l, _ := lab.OpenName(name, opts)
	t.Cleanup(func() { labtest.Destroy(t, l) })
	_, stderr, code := run(t, "deploy", "-t", file, "--wait")
	if code != 0 || !strings.Contains(stderr, "ready: routing converged in") {
		t.Fatalf("deploy --wait: exit %d\n%s", code, stderr)
	}
	// Converged means the route is in r2's kernel already, not soon.
	if got := labtest.RouteVia(t, l, "r2", "10.1.0.2"); got != "10.0.0.1" {
		t.Errorf("after deploy --wait, r2's route to h: %q", got)
	}
	if _, stderr, code := run(t, "wait", "-t", file); code != 0 || !strings.Contains(stderr, "ready") {
		t.Errorf("wait: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := run(t, "wait", "-t", file, "--timeout", "10ms"); code != 1 || !strings.Contains(stderr, "not converged within 10ms") {
		t.Errorf("wait with a timeout shorter than the quiet second: exit %d\n%s", code, stderr)
	}
}

// TestIntegrationCLIStopStart stops and starts nodes through the CLI (the
// README's example of Stopping a node, and more): a
// stopped node's namespace goes and its far ends lose carrier, commands
// that need it say it is stopped, and start gives it back its links,
// addresses (IPv6 too), sysctls and routes, so that traffic crosses it
// again; destroy of a lab with a stopped node leaves nothing.
func TestIntegrationCLIStopStart(t *testing.T) {
	labtest.Integration(t)
	file, name := cliLab(t, privatePeering(t), "er-private", "stop")
	if _, stderr, code := run(t, "deploy", "-q", "-t", file); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}
	ping := func(to string) bool {
		_, _, code := run(t, "exec", "-t", file, "onprem", "--", "ping", "-c1", "-W1", to)
		return code == 0
	}
	if !ping("10.10.0.4") {
		t.Fatal("no ping before the stop")
	}

	// Both paths cross ce: stopped, nothing gets through.
	out, stderr, code := run(t, "stop", "-t", file, "ce")
	if code != 0 || strings.TrimSpace(out) != "ce stopped: 3 links parked, 0 processes ended" {
		t.Fatalf("stop: exit %d\n%s\n%s", code, out, stderr)
	}
	if kernel.NetNSExists(lab.NetNSName(name, "ce")) {
		t.Error("ce's namespace is still there")
	}
	out, _, _ = run(t, "inspect", "-t", file)
	if !hasRow(out, "ce", "netns", "erlab-"+name+".ce", "-", "stopped", "(links", "parked)", "-", "-") ||
		!hasRow(out, "onprem", "netns", "erlab-"+name+".onprem", "eth1", "no-carrier", "1500", "10.1.0.10/24,", "2001:db8:1::10/64") ||
		!hasRow(out, "2", "ce:eth1", "parked", "pe1:eth1", "no-carrier") {
		t.Errorf("inspect of a stopped node:\n%s", out)
	}
	out, _, _ = run(t, "inspect", "-t", file, "--format", "json")
	var info lab.LabInfo
	json.Unmarshal([]byte(out), &info)
	states := map[string]string{}
	for _, n := range info.Nodes {
		states[n.Name] = n.State
	}
	if states["ce"] != "stopped" || states["onprem"] != "running" {
		t.Errorf("inspect json node states: %v", states)
	}
	if ping("10.10.0.4") {
		t.Error("a ping crossed the stopped node")
	}
	for _, args := range [][]string{{"exec", "-t", file, "ce", "--", "true"}, {"link", "down", "-t", file, "ce:eth1"}} {
		if _, stderr, code := run(t, args...); code != 1 || !strings.Contains(stderr, "node ce is stopped: start it first") {
			t.Errorf("%s on a stopped node: exit %d %s", args[0], code, stderr)
		}
	}
	if out, _, code := run(t, "stop", "-t", file, "ce"); code != 0 || strings.TrimSpace(out) != "ce already stopped" {
		t.Errorf("second stop: exit %d %s", code, out)
	}
	if _, stderr, code := run(t, "stop", "-t", file, "cee"); code != 1 || !strings.Contains(stderr, `has no node "cee" (did you mean "ce"?)`) {
		t.Errorf("stop of no node: exit %d %s", code, stderr)
	}

	out, stderr, code = run(t, "start", "-t", file, "ce")
	if code != 0 || strings.TrimSpace(out) != "ce started: 3 links back" {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, stderr)
	}
	if !ping("10.10.0.4") || !ping("2001:db8:10::4") {
		t.Error("no ping through ce after its start (IPv4 and IPv6)")
	}
	// Its sysctls and routes are the topology's again.
	if out, _, _ := run(t, "exec", "-t", file, "ce", "--", "sysctl", "-n", "net.ipv4.conf.all.ignore_routes_with_linkdown"); strings.TrimSpace(out) != "1" {
		t.Errorf("ce's sysctl after start: %q", out)
	}
	if out, _, _ := run(t, "exec", "-t", file, "ce", "--", "ip", "route", "get", "10.10.0.4"); !strings.Contains(out, "via 192.168.100.130 dev eth1") {
		t.Errorf("ce's route after start: %s", out)
	}
	if kernel.NetNSExists(lab.NetNSName(name, "-parked")) {
		t.Error("the parking namespace is left with nothing parked")
	}
	if out, _, code := run(t, "start", "-t", file, "ce"); code != 0 || strings.TrimSpace(out) != "ce already running" {
		t.Errorf("second start: exit %d %s", code, out)
	}
	if out, _, code := run(t, "restart", "-t", file, "pe1", "msee1"); code != 0 || !strings.Contains(out, "pe1 started: 2 links back\nmsee1 started: 2 links back") {
		t.Errorf("restart: exit %d %s", code, out)
	} else if !ping("10.10.0.4") {
		t.Error("no ping after the restart of pe1 and msee1")
	}

	run(t, "stop", "-t", file, "--kill", "msee2")
	out, _, code = run(t, "destroy", "-t", file)
	if code != 0 || !strings.Contains(out, "removed 8 namespaces") {
		t.Errorf("destroy with a stopped node: exit %d %s", code, out)
	}
	if left, _ := kernel.NetNSList(lab.NetNSName(name, "")); len(left) > 0 {
		t.Errorf("left after destroy: %v", left)
	}
}

// timelineProbe reads, in the browser, what a person sees of a drill's
// timeline: where the flows, their received-rate lines, the shaded
// losses and the action markers are drawn, and what they say.
const timelineProbe = `
const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; };
const svg = document.querySelector('svg');
return {
  parseError: document.getElementsByTagName('parsererror').length > 0,
  svg: svg ? box(svg) : null,
  verdict: document.querySelector('.verdict')?.textContent ?? '',
  flows: [...document.querySelectorAll('g.flow')].map((g) => ({
    flow: g.dataset.flow,
    label: g.querySelector('text')?.textContent ?? '',
    frame: box(g.querySelector('rect:not(.loss)')),
    line: g.querySelector('polyline.received') ? box(g.querySelector('polyline.received')) : null,
    losses: [...g.querySelectorAll('rect.loss')].map((r) => ({...box(r), title: r.querySelector('title')?.textContent ?? ''})),
  })),
  actions: [...document.querySelectorAll('g.action')].map((g) => ({label: g.textContent, x: box(g.querySelector('line')).x})),
};`

type rect struct{ X, Y, W, H float64 }

// checkTimelineInBrowser opens the timeline of the hole drill (a->b, a
// 300 ms blackhole) in chromium: it must render, say which flow and what
// verdict, draw the flow's line across the plot, and shade the loss
// between the blackhole's marker and the restore's.
func checkTimelineInBrowser(t *testing.T, svg string) {
	var page struct {
		ParseError bool
		SVG        *rect
		Verdict    string
		Flows      []struct {
			Flow, Label string
			Frame       rect
			Line        *rect
			Losses      []struct {
				rect
				Title string
			}
		}
		Actions []struct {
			Label string
			X     float64
		}
	}
	labtest.Browser(t, "file://"+svg, "drill-timeline.png", timelineProbe, &page)
	if page.ParseError || page.SVG == nil || page.SVG.W < 600 || page.SVG.H < 150 {
		t.Fatalf("the timeline does not render: parse error %v, drawn %+v", page.ParseError, page.SVG)
	}
	if page.Verdict != "FAIL" || len(page.Flows) != 1 || len(page.Actions) != 2 {
		t.Fatalf("timeline: verdict %q, %d flows, %d actions, want FAIL, 1, 2: %+v", page.Verdict, len(page.Flows), len(page.Actions), page)
	}
	f, hole, back := page.Flows[0], page.Actions[0], page.Actions[1]
	if f.Flow != "a->b" || !strings.Contains(f.Label, "a->b") || !strings.Contains(hole.Label, "blackhole a:eth1") || !strings.Contains(back.Label, "restore a:eth1") {
		t.Errorf("timeline labels: flow %q %q, actions %q, %q", f.Flow, f.Label, hole.Label, back.Label)
	}
	// Across the plot, and inside it (the stroke may stick out by its width).
	inside := func(r rect) bool {
		return r.X >= f.Frame.X-1 && r.X+r.W <= f.Frame.X+f.Frame.W+1 && r.Y >= f.Frame.Y-1 && r.Y+r.H <= f.Frame.Y+f.Frame.H+1
	}
	if f.Line == nil || f.Line.W < f.Frame.W*0.9 || !inside(*f.Line) {
		t.Errorf("the received line is drawn at %+v, in a plot at %+v", f.Line, f.Frame)
	}
	// 300 ms of a 1.3 s run: shaded, and where the markers say.
	bucket := page.SVG.W * 0.05 / 1.3
	if len(f.Losses) == 0 {
		t.Fatal("no loss is shaded")
	}
	for _, l := range f.Losses {
		if l.W <= 0 || l.H <= 0 || !inside(l.rect) || l.X < hole.X-bucket || l.X+l.W > back.X+2*bucket || !strings.Contains(l.Title, "lost") {
			t.Errorf("a shaded loss at x %.0f-%.0f (%q), outside the blackhole's %.0f-%.0f", l.X, l.X+l.W, l.Title, hole.X, back.X)
		}
	}
}
