package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/agent"
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
		file + `:4:15: node "a": unknown kind "vm" (supported: bridge, netns, router)`,
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
		{"inspect", "--name", "x", "--format", "yaml"},
		{"graph", "-t", "../../topologies/er-peerings-vlan.yml", "--format", "svg"},
	} {
		_, stderr, code := run(t, args...)
		if code != 1 || !strings.HasPrefix(stderr, "erlab: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestGraphCommand(t *testing.T) {
	out, _, code := run(t, "graph", "-t", "../../topologies/er-private-peering.yml", "--format", "dot")
	if code != 0 || !strings.Contains(out, `"ce" -- "pe1" [taillabel="eth1 192.168.100.129/30", headlabel="eth1"];`) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestIntegrationCLI walks the commands a new user runs, in order, through
// the CLI itself: deploy, inspect (table and JSON), exec, link down/up,
// inspect --all, destroy twice.
func TestIntegrationCLI(t *testing.T) {
	labtest.Integration(t)
	dir := t.TempDir()
	name := labtest.Name("cli")
	src, err := os.ReadFile("../../topologies/er-private-peering.yml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "lab.yml")
	os.WriteFile(file, bytes.Replace(src, []byte("name: er-private"), []byte("name: "+name), 1), 0o644)
	t.Cleanup(func() { labtest.Destroy(t, name) })

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

	// capture: two ICMP frames of a ping across ce:eth1, to a pcap file.
	pcap := filepath.Join(dir, "c.pcap")
	captured := make(chan int, 1)
	go func() {
		_, _, code := run(t, "capture", "-t", file, "ce:eth1", "-w", pcap, "-c", "2", "icmp")
		captured <- code
	}()
	time.Sleep(time.Second) // tcpdump is listening
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
	agent.MaybeRun()  // router nodes re-execute this test binary as their agent
	lab.MaybeRunMKA() // and as an MKA link end's keeper
	os.Exit(m.Run())
}
