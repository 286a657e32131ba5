package lab_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/bridgevlan"
	"github.com/erlab-dev/erlab/lab/vlan"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/probe"
	"github.com/erlab-dev/erlab/lab/topo"
)

// TestMain doubles as a deploy process for TestIntegrationDestroyAfterKill,
// which needs a deploy it can kill -9 half-way.
func TestMain(m *testing.M) {
	lab.MaybeRunHelper(lab.Options{}) // deploys re-execute this test binary as their helpers (agents, keepers)
	if file := os.Getenv("ERLAB_TEST_DEPLOY"); file != "" {
		opts := lab.Options{StateRoot: os.Getenv("ERLAB_TEST_STATE_ROOT")}
		top, err := lab.Load(file, opts)
		if err == nil {
			top.Name = os.Getenv("ERLAB_TEST_LAB")
			err = lab.Deploy(context.Background(), top, opts)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestIntegrationPrivatePeering deploys the shipped dual-link lab and checks
// it end to end: addresses and routes as written, forwarding on where a node
// routes, IPv4 and IPv6 across four hops, and the CE moving its routes to the
// secondary link when the primary loses carrier.
func TestIntegrationPrivatePeering(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Load(t, "../topologies/er-private-peering.yml")
	l := labtest.Deploy(t, top)
	name := top.Name

	info := labtest.Inspect(t, l)
	if info.Status != "deployed" || len(info.Nodes) != 8 || len(info.Links) != 8 {
		t.Fatalf("inspect: status %s, %d nodes, %d links", info.Status, len(info.Nodes), len(info.Links))
	}
	eth1 := labtest.Iface(t, info, "ce", "eth1")
	if !slices.Equal(eth1.Addresses, []string{"192.168.100.129/30", "2001:db8:100::1/126"}) || eth1.State != "up" || eth1.MTU != 1500 {
		t.Errorf("ce:eth1 = %+v", eth1)
	}
	if port := labtest.Iface(t, info, "pe1", "eth1"); port.Master != "br0" {
		t.Errorf("pe1:eth1 is not a bridge port: %+v", port)
	}
	for node, want := range map[string]string{"ce": "1", "msee1": "1", "onprem": "0"} {
		got, err := kernel.SysctlGet(lab.NetNSName(name, node), "net.ipv4.ip_forward")
		if err != nil || got != want {
			t.Errorf("%s: ip_forward = %q (%v), want %s", node, got, err, want)
		}
	}
	labtest.Exec(t, l, "onprem", "ping", "-c1", "-W2", "10.10.0.4")
	labtest.Exec(t, l, "onprem", "ping", "-6", "-c1", "-W2", "2001:db8:10::4")
	if via := labtest.RouteVia(t, l, "ce", "10.10.0.4"); via != "192.168.100.130" {
		t.Fatalf("primary path: ce routes via %q, want the primary MSEE 192.168.100.130", via)
	}

	// Pull the primary link at the CE: its routes over eth1 go dead
	// (ignore_routes_with_linkdown), so traffic takes the secondary.
	if err := l.LinkSet(context.Background(), "ce", "eth1", false); err != nil {
		t.Fatal(err)
	}
	info = labtest.Inspect(t, l)
	if s := labtest.Iface(t, info, "ce", "eth1").State; s != "down" {
		t.Errorf("ce:eth1 after link down: %s", s)
	}
	if s := labtest.Iface(t, info, "pe1", "eth1").State; s != "no-carrier" {
		t.Errorf("pe1:eth1 (the peer) after link down: %s, want no-carrier", s)
	}
	if l := info.Links[1]; l.A != "ce:eth1" || l.AState != "down" || l.BState != "no-carrier" {
		t.Errorf("link 2 after link down: %+v", l)
	}
	if via := labtest.RouteVia(t, l, "ce", "10.10.0.4"); via != "192.168.100.134" {
		t.Errorf("after pulling the primary: ce routes via %q, want the secondary 192.168.100.134", via)
	}

	if err := l.LinkSet(context.Background(), "ce", "eth1", true); err != nil {
		t.Fatal(err)
	}
	if s := labtest.Iface(t, labtest.Inspect(t, l), "pe1", "eth1").State; s != "up" {
		t.Errorf("pe1:eth1 after link up: %s", s)
	}
	// The kernel revives routes on carrier events, which linkwatch delivers
	// up to a second late.
	labtest.Eventually(t, 3*time.Second, "after restoring the primary, ce routes via 192.168.100.130", func() bool {
		return labtest.RouteVia(t, l, "ce", "10.10.0.4") == "192.168.100.130"
	})
	if err := l.LinkSet(context.Background(), "ce", "eth9", false); err == nil {
		t.Error("link down of a missing interface succeeded")
	}
}

const twoNodes = `name: x
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
      exec:
        - echo deployed > /run/erlab-test-$ERLAB_NETNS
        - setsid sleep 300 >/dev/null 2>&1 < /dev/null &
    b:
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`

// TestIntegrationExecAndProcesses checks the exec commands of a deploy, the
// exit status erlab exec passes through, and that destroy stops a process a
// node left running.
func TestIntegrationExecAndProcesses(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, twoNodes)
	l := labtest.Deploy(t, top)
	ns := lab.NetNSName(top.Name, "a")
	marker := "/run/erlab-test-" + ns
	defer os.Remove(marker)
	if b, err := os.ReadFile(marker); err != nil || string(b) != "deployed\n" {
		t.Errorf("exec command did not run: %q, %v", b, err)
	}
	if _, code, err := labtest.TryExec(l, "b", "sh", "-c", "exit 7"); err != nil || code != 7 {
		t.Errorf("exit status: %d, %v; want 7", code, err)
	}
	if _, _, err := labtest.TryExec(l, "nosuch", "true"); err == nil {
		t.Error("exec in a missing node succeeded")
	}
	pids, err := kernel.PIDsIn([]string{ns})
	if err != nil || len(pids[ns]) != 1 {
		t.Fatalf("want the one sleep in %s, got %v (%v)", ns, pids, err)
	}
	sleeper := pids[ns][0]
	labtest.Destroy(t, l)
	if err := syscall.Kill(sleeper, 0); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sleeper)); !strings.Contains(string(b), ") Z") {
			t.Errorf("process %d in the lab survived destroy", sleeper)
		}
	}
}

// TestIntegrationFailedDeployRollsBack: a failing exec fails the deploy with
// the command's output, and nothing of the lab is left.
func TestIntegrationFailedDeployRollsBack(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, strings.Replace(twoNodes, "echo deployed > /run/erlab-test-$ERLAB_NETNS", "echo broken config >&2; exit 3", 1))
	l := lab.FromTopology(top, labtest.Options(t))
	t.Cleanup(func() { labtest.Destroy(t, l) })
	err := l.Deploy(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "broken config") {
		t.Fatalf("deploy error = %v; want the exec's status and output", err)
	}
	if left, _ := kernel.NetNSList(lab.NetNSName(top.Name, "")); len(left) > 0 {
		t.Errorf("failed deploy left namespaces: %v", left)
	}
	if _, err := os.Stat(l.Dir()); err == nil {
		t.Error("failed deploy left its state directory")
	}
	if labs, _ := lab.Deployed(l.Options()); slices.Contains(labs, top.Name) {
		t.Error("failed deploy still listed as deployed")
	}
}

// TestIntegrationSideBySide deploys the same topology twice under two lab
// names: same node and interface names, same addresses, no interference.
func TestIntegrationSideBySide(t *testing.T) {
	labtest.Integration(t)
	one, two := labtest.Parse(t, twoNodes), labtest.Parse(t, twoNodes)
	one.Nodes[0].Exec, two.Nodes[0].Exec = nil, nil
	l1, l2 := labtest.Deploy(t, one), labtest.Deploy(t, two)
	again := *one
	if err := lab.FromTopology(&again, l1.Options()).Deploy(context.Background()); !errors.As(err, new(*lab.AlreadyDeployedError)) {
		t.Errorf("second deploy of %s: %v, want AlreadyDeployedError", one.Name, err)
	}
	if err := l1.LinkSet(context.Background(), "a", "eth1", false); err != nil {
		t.Fatal(err)
	}
	if _, code, _ := labtest.TryExec(l1, "a", "ping", "-c1", "-W1", "10.0.0.2"); code == 0 {
		t.Error("ping across a pulled link succeeded")
	}
	labtest.Exec(t, l2, "a", "ping", "-c1", "-W2", "10.0.0.2")
	labtest.Destroy(t, l1)
	labtest.Exec(t, l2, "a", "ping", "-c1", "-W2", "10.0.0.2")
	if s := labtest.Iface(t, labtest.Inspect(t, l2), "a", "eth1").State; s != "up" {
		t.Errorf("the other lab's interface: %s", s)
	}
}

// TestIntegrationDestroyAfterKill kills a deploy with SIGKILL half-way (while
// an exec command runs), deletes the lab's state directory, and checks that
// destroy by name still removes every namespace and process.
func TestIntegrationDestroyAfterKill(t *testing.T) {
	labtest.Integration(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "slow.yml")
	src := strings.Replace(twoNodes, "- echo deployed > /run/erlab-test-$ERLAB_NETNS", "- sleep 120", 1)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	name := labtest.Name("kill")
	opts := labtest.Options(t)
	l, _ := lab.OpenName(name, opts)
	t.Cleanup(func() { labtest.Destroy(t, l) })
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ERLAB_TEST_DEPLOY="+file, "ERLAB_TEST_LAB="+name, "ERLAB_TEST_STATE_ROOT="+opts.StateRoot)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ns := lab.NetNSName(name, "a")
	deadline := time.Now().Add(30 * time.Second)
	// Wait for the exec phase: namespaces and links exist, and the sleep
	// runs. (A thread of the deploy itself can be in the namespace for a
	// moment too, while it configures it: that is not the sign.)
	sleeping := func() bool {
		pids, _ := kernel.PIDsIn([]string{ns})
		for _, pid := range pids[ns] {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "sleep" {
				return true
			}
		}
		return false
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	labtest.Eventually(t, time.Until(deadline), "the deploy reaches its exec phase", sleeping)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if err := os.RemoveAll(l.Dir()); err != nil {
		t.Fatal(err)
	}
	labs, err := lab.Deployed(opts)
	if err != nil || !slices.Contains(labs, name) {
		t.Fatalf("the killed lab is not found from its namespaces: %v %v", labs, err)
	}
	info := labtest.Inspect(t, l)
	if info.Status != "incomplete" || len(info.Nodes) != 2 {
		t.Errorf("inspect of the killed lab: %+v", info)
	}
	pids, _ := kernel.PIDsIn([]string{ns})
	rep, err := l.Destroy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Namespaces != 2 || rep.Processes != len(pids[ns]) || rep.Processes == 0 {
		t.Errorf("destroy report %+v; want 2 namespaces and the %d orphaned processes", rep, len(pids[ns]))
	}
	for _, pid := range pids[ns] {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z") {
			t.Errorf("orphan %d survived destroy", pid)
		}
	}
	if rep, err := l.Destroy(context.Background()); err != nil || rep.Namespaces != 0 {
		t.Errorf("second destroy: %+v, %v; want nothing to do", rep, err)
	}
}

// TestIntegrationCapabilityGate deploys the VLAN starter lab. On a kernel
// without 802.1Q the deploy must refuse before touching anything, naming the
// feature, its kernel option, who needs it and the way out; on a kernel with
// it (the kernel tier) it must deploy and carry both peerings.
func TestIntegrationCapabilityGate(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Load(t, "../topologies/er-peerings-vlan.yml")
	missing, err := kernel.Probe([]*kernel.Feature{vlan.KernelDot1Q})
	if err != nil {
		t.Fatal(err)
	}
	if _, lacks := missing[vlan.KernelDot1Q]; lacks {
		if labtest.KernelTier() {
			t.Fatal("the kernel tier's kernel lacks 802.1Q")
		}
		opts := labtest.Options(t)
		err := lab.Deploy(context.Background(), top, opts)
		var mf *lab.MissingFeaturesError
		if !errors.As(err, &mf) {
			t.Fatalf("deploy on a kernel without 802.1Q: %v", err)
		}
		msg := err.Error()
		for _, want := range []string{"802.1Q VLAN", "CONFIG_VLAN_8021Q", "ce:eth1.100", "msee:eth1.200", "scripts/vm-run"} {
			if !strings.Contains(msg, want) {
				t.Errorf("refusal does not name %q:\n%s", want, msg)
			}
		}
		if labs, _ := lab.Deployed(opts); slices.Contains(labs, top.Name) {
			t.Error("a refused deploy left something behind")
		}
		return
	}
	l := labtest.Deploy(t, top)
	info := labtest.Inspect(t, l)
	if i := labtest.Iface(t, info, "ce", "eth1.100"); i.Detail != "802.1Q 100 on eth1" || i.Parent != "eth1" || i.State != "up" {
		t.Errorf("ce:eth1.100 = %+v", i)
	}
	labtest.Exec(t, l, "onprem", "ping", "-c1", "-W2", "10.10.0.4")                             // private peering
	labtest.Exec(t, l, "onprem", "ping", "-c1", "-W2", "198.51.100.10")                         // Microsoft peering
	labtest.Exec(t, l, "ce", "ping", "-6", "-c1", "-W2", "2001:db8:10::4")                      // IPv6 private peering
	labtest.Exec(t, l, "ce", "ping", "-M", "do", "-s", "1472", "-c1", "-W2", "192.168.100.130") // full 1500-byte frame, DF
}

// TestIntegrationQinQ stacks a C-tag on an S-tag, with each outer EtherType:
// 802.1ad as providers use, and 802.1Q as ExpressRoute Direct requires.
func TestIntegrationQinQ(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, vlan.KernelDot1Q, vlan.KernelDot1ad)
	for _, proto := range []string{"802.1ad", "802.1Q"} {
		t.Run(proto, func(t *testing.T) {
			top := labtest.Parse(t, `name: q
topology:
  nodes:
    ce:
      interfaces:
        s10: {parent: eth1, vlan: 10, vlan-protocol: `+proto+`}
        s10.100: {addresses: [192.168.100.129/30]}
    msee:
      interfaces:
        s10: {parent: eth1, vlan: 10, vlan-protocol: `+proto+`}
        s10.100: {addresses: [192.168.100.130/30]}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
`)
			l := labtest.Deploy(t, top)
			info := labtest.Inspect(t, l)
			if i := labtest.Iface(t, info, "ce", "s10"); i.Detail != proto+" 10 on eth1" {
				t.Errorf("outer tag: %+v", i)
			}
			if i := labtest.Iface(t, info, "ce", "s10.100"); i.Detail != "802.1Q 100 on s10" || i.Parent != "s10" {
				t.Errorf("inner tag: %+v", i)
			}
			labtest.Exec(t, l, "ce", "ping", "-c1", "-W2", "192.168.100.130")
		})
	}
}

// TestIntegrationProbeAgreesWithConfig checks the probe against an
// independent reader: the kernel's own configuration (/proc/config.gz, or
// /boot/config-RELEASE). In the kernel tier every feature must be there.
func TestIntegrationProbeAgreesWithConfig(t *testing.T) {
	labtest.Integration(t)
	all := lab.KernelFeatures(lab.Options{})
	missing, err := kernel.Probe(all)
	if err != nil {
		t.Fatal(err)
	}
	if labtest.KernelTier() && len(missing) > 0 {
		t.Errorf("the kernel tier's kernel is incomplete: %v", missing)
	}
	config := readKernelConfig(t)
	if config == nil {
		if labtest.KernelTier() {
			return
		}
		t.Skip("no kernel configuration to compare with (/proc/config.gz, /boot/config-*)")
	}
	for _, f := range all {
		built := true
		for _, opt := range strings.Split(f.Option, ", ") {
			if v := config[opt]; v != "y" && v != "m" {
				built = false
			}
		}
		_, lacks := missing[f]
		if built == lacks {
			t.Errorf("%s: kernel config says built=%v, probe says missing=%v (%v)", f, built, lacks, missing[f])
		}
	}
}

func readKernelConfig(t *testing.T) map[string]string {
	var r io.Reader
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	} else {
		var u syscall.Utsname
		syscall.Uname(&u)
		var rel []byte
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			rel = append(rel, byte(c))
		}
		f, err := os.Open("/boot/config-" + string(rel))
		if err != nil {
			return nil
		}
		defer f.Close()
		r = f
	}
	config := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			config[k] = v
		}
	}
	return config
}

// TestIntegrationProbeMeasuresAPull streams 1000 pps across a link, pulls
// the far end for 300 ms half a second in, and checks that the probe
// accounts for it: losses start when the link went down, and the
// loss-derived outage is about as long as the pull (the machine is noisy:
// within 150 ms).
func TestIntegrationProbeMeasuresAPull(t *testing.T) {
	labtest.Integration(t)
	// A permanent neighbour entry keeps ARP out of the measurement: after a
	// carrier flap the kernel would re-resolve b, holding packets for up to a
	// second (what the probe's max delay shows in a real drill).
	top := labtest.Parse(t, `name: x
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
      exec: ["ip neigh replace 10.0.0.2 lladdr 02:00:00:00:00:02 dev eth1 nud permanent"]
    b:
      interfaces:
        eth1: {addresses: [10.0.0.2/30], mac: "02:00:00:00:00:02"}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`)
	l := labtest.Deploy(t, top)
	if _, owner, err := probe.Target(top, "b"); err != nil || owner != "b" {
		t.Fatalf("target b: %s %v", owner, err)
	}
	type result struct {
		rep probe.Report
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		rep, err := probe.Between(context.Background(), top, "a", "b:eth1", probe.Config{Rate: 1000, Duration: 1500 * time.Millisecond, Port: 7001})
		done <- result{rep, err}
	}()
	time.Sleep(500*time.Millisecond - time.Since(start))
	pulled := time.Now()
	if err := l.LinkSet(context.Background(), "b", "eth1", false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := l.LinkSet(context.Background(), "b", "eth1", true); err != nil {
		t.Fatal(err)
	}
	pull := time.Since(pulled)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	rep := r.rep
	t.Logf("pulled for %s: %s", pull.Round(time.Millisecond), rep)
	if rep.Sent != 1500 || rep.Received+rep.Lost != rep.Sent || rep.Duplicated != 0 {
		t.Errorf("accounting: %+v", rep)
	}
	if d := rep.Outage - pull; d < -150*time.Millisecond || d > 150*time.Millisecond {
		t.Errorf("outage %s for a pull of %s", rep.Outage, pull)
	}
	if rep.FirstLoss < 350*time.Millisecond || rep.FirstLoss > 700*time.Millisecond {
		t.Errorf("first loss at %s, the link went down at about 500ms", rep.FirstLoss)
	}
	if _, _, err := probe.Target(top, "10.9.9.9"); err == nil {
		t.Error("a target no node owns was accepted")
	}
}

// TestIntegrationVerifyEncryptionPlaintext: verify encryption reports a
// plaintext link as such, and fails it when asked to check it — the marker
// is on the wire in clear.
func TestIntegrationVerifyEncryptionPlaintext(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, twoNodes)
	top.Nodes[0].Exec = nil
	l := labtest.Deploy(t, top)
	res, err := l.VerifyEncryption(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Checked || res[0].Declared != "plaintext" {
		t.Errorf("declared plaintext: %+v", res)
	}
	res, err = l.VerifyEncryption(context.Background(), []string{"a:eth1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Pass || res[0].MarkerHits < res[0].Sent || res[0].Sent == 0 || res[0].ClearFrames == 0 {
		t.Errorf("a plaintext link checked: %+v", res)
	}
}

// TestIntegrationProviderQinQ deploys the provider QinQ lab: a provider
// bridge pushes each circuit's S-tag, the MSEE terminates S- and C-tags, two
// circuits reuse C-tag 100 apart (their S-tags differ), and on the MSEE's
// port the frames are 802.1ad → 802.1Q, as tcpdump decodes them.
func TestIntegrationProviderQinQ(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, vlan.KernelDot1Q, vlan.KernelDot1ad, bridgevlan.KernelBridgeVLAN)
	top := labtest.Load(t, "../topologies/er-provider-qinq.yml")
	l := labtest.Deploy(t, top)
	labtest.Exec(t, l, "ce1", "ping", "-c1", "-W2", "192.168.100.130") // circuit 1, private
	labtest.Exec(t, l, "ce1", "ping", "-c1", "-W2", "203.0.113.2")     // circuit 1, Microsoft
	labtest.Exec(t, l, "ce2", "ping", "-c1", "-W2", "192.168.200.130") // circuit 2, private, same C-tag
	// On the MSEE's port circuit 2's frames carry S-tag 20 over C-tag 100
	// (the filter matches the two tags: a plain "icmp" would not).
	out := labtest.Capture(t, l, "msee", "eth1", 2, "vlan 20 and vlan 100 and icmp", func() { labtest.TryExec(l, "ce2", "ping", "-c1", "-W2", "192.168.200.130") })
	if !strings.Contains(out, "ethertype 802.1Q-QinQ (0x88a8)") || !strings.Contains(out, "vlan 20, p 0, ethertype 802.1Q (0x8100), vlan 100") {
		t.Errorf("frames on the MSEE's port are not S-tag 20 over C-tag 100:\n%s", out)
	}
	// A full 1500-byte packet on the C-tag subinterface crosses without
	// fragmentation (don't-fragment ping at the top interface's MTU).
	labtest.Exec(t, l, "ce1", "ping", "-c1", "-W2", "-M", "do", "-s", "1472", "192.168.100.130")
}

// TestIntegrationSysctlsNotInherited: a new namespace takes its IPv4
// settings from the host's, and dockerd turns the host's ip_forward on. So
// the test turns on, in the host, what erlab must not inherit (forwarding,
// rp_filter), deploys, and checks that each node has what the topology
// says, whatever the host has.
func TestIntegrationSysctlsNotInherited(t *testing.T) {
	labtest.Integration(t)
	for key, val := range map[string]string{
		"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/rp_filter": "1", "net/ipv4/conf/default/rp_filter": "1",
	} {
		path := filepath.Join("/proc/sys", key)
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(path, old, 0) })
		if err := os.WriteFile(path, []byte(val), 0); err != nil {
			t.Fatal(err)
		}
	}
	top := labtest.Parse(t, `name: x
topology:
  kinds:
    netns: {forward: false}
  nodes:
    a:
      interfaces: {eth1: {addresses: [10.0.0.1/30]}}
    r:
      forward: true
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
        eth2: {addresses: [10.0.1.1/30]}
    b:
      interfaces: {eth1: {addresses: [10.0.1.2/30]}}
  links:
    - endpoints: ["a:eth1", "r:eth1"]
    - endpoints: ["r:eth2", "b:eth1"]
`)
	l := labtest.Deploy(t, top)
	for node, want := range map[string]map[string]string{
		"a": {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"},
		"r": {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1", "net.ipv4.conf.all.rp_filter": "0"},
		"b": {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"},
	} {
		for key, v := range want {
			if got, err := kernel.SysctlGet(lab.NetNSName(top.Name, node), key); err != nil || got != v {
				t.Errorf("%s: %s = %q (%v), want %s whatever the host has", node, key, got, err, v)
			}
		}
	}
	// r forwards: a reaches b through it.
	labtest.Exec(t, l, "a", "ip", "route", "add", "10.0.1.0/30", "via", "10.0.0.2")
	labtest.Exec(t, l, "b", "ip", "route", "add", "10.0.0.0/30", "via", "10.0.1.1")
	labtest.Exec(t, l, "a", "ping", "-c1", "-W2", "10.0.1.2")
}

// TestIntegrationSysctlsChecked: validate (CheckKernel) checks every
// sysctl name against this kernel and locates the ones it lacks, before a
// deploy would fail on them.
func TestIntegrationSysctlsChecked(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, `name: x
topology:
  nodes:
    a:
      sysctls:
        net.ipv4.no_such_knob: 1
        net.ipv4.conf.eth1.rp_filter: 1
        net.ipv4.conf.eth9.rp_filter: 1
        net.ipv6.conf.all.forwarding: 0
        net/ipv4/conf/eth1.100/rp_filter: 0
        net.ipv4.conf.eth1.100.rp_filter: 0
      interfaces:
        eth1.100: {}
    b: {}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`)
	err := lab.CheckKernel(top, lab.Options{})
	var el topo.ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("CheckKernel = %v, want the file's problems", err)
	}
	var got []string
	for _, p := range el {
		got = append(got, fmt.Sprintf("%d:%d: %s", p.Pos.Line, p.Pos.Col, p.Msg))
	}
	uname, _ := exec.Command("uname", "-r").Output()
	release := strings.TrimSpace(string(uname))
	want := []string{
		`6:9: node "a": sysctl "net.ipv4.no_such_knob": this kernel (` + release + `) has no such setting in a network namespace`,
		`8:9: node "a": sysctl "net.ipv4.conf.eth9.rp_filter": eth9 is not an interface of this node`,
		`11:9: node "a": sysctl "net.ipv4.conf.eth1.100.rp_filter": the interface name holds a dot, so write the key with slashes: net/ipv4/conf/eth1.100/rp_filter`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
