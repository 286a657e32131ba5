package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/nodes"
)

// TestIntegrationLinuxContainer deploys a container node (kind linux)
// beside a namespace node: the container gets the link, its address and
// route like any node; exec runs in the container itself (its hostname,
// its environment, its bind mount, stdin and the exit status passed
// through); a deploy's exec commands run there too; and destroy removes
// the container, also when the lab's state is gone.
func TestIntegrationLinuxContainer(t *testing.T) {
	labtest.Integration(t)
	dc := labtest.RequireDocker(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "motd"), []byte("bound from the host\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "vars.env"), []byte("# env-files: env wins over them\nFROM_FILE=yes\nGREETING=overridden\n"), 0o644)
	file := filepath.Join(dir, "lab.yml")
	os.WriteFile(file, []byte(`name: ctr
topology:
  nodes:
    c1:
      kind: linux
      image: `+labtest.TestImage+`
      env: { GREETING: hello }
      env-files: [ vars.env ]
      labels: { team: blue }
      binds: [ "motd:/etc/motd:ro" ]                 # relative to this file
      exec: [ "echo ready > /tmp/ready" ]
      interfaces:
        eth1: { addresses: [10.77.1.1/24] }
      routes:
        - { dst: 10.88.0.0/16, via: 10.77.1.2 }
    c2:                                              # the image's entrypoint and command replaced
      kind: linux
      image: `+labtest.TestImage+`
      entrypoint: /bin/sh -c
      cmd: "'echo started > /tmp/started && exec sleep 1000000'"
      user: nobody
    c3: { kind: linux, image: `+labtest.TestImage+`, privileged: true }
    h:
      interfaces:
        eth1: { addresses: [10.77.1.2/24] }
        lo: { addresses: [10.88.0.1/32] }
  links:
    - type: veth                                     # containerlab's extended form
      endpoints: [{ node: c1, interface: eth1, mac: "02:00:5e:77:01:01" }, "h:eth1"]
`), 0o644)
	top, err := lab.Load(file, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	top.Name = labtest.Name("ctr")
	l := labtest.Deploy(t, top)
	ctx := context.Background()

	labtest.Exec(t, l, "h", "ping", "-c1", "-W2", "10.77.1.1")
	// From inside the container, through its static route.
	if out := labtest.Exec(t, l, "c1", "ping", "-c1", "-W2", "10.88.0.1"); !strings.Contains(out, "1 packets received") {
		t.Errorf("ping from the container:\n%s", out)
	}
	for cmd, want := range map[string]string{
		"cat /sys/class/net/eth1/address": "02:00:5e:77:01:01",
		"hostname":                        "c1",
		"echo $GREETING":                  "hello",
		"echo $FROM_FILE":                 "yes",
		"cat /etc/motd":                   "bound from the host",
		"cat /tmp/ready":                  "ready", // the deploy's exec ran in the container
	} {
		out, _, _ := labtest.TryExec(l, "c1", "/bin/sh", "-c", cmd+" 2>/dev/null")
		if strings.TrimSpace(out) != want {
			t.Errorf("in c1, %s: %q, want %q", cmd, out, want)
		}
	}
	if out := labtest.Exec(t, l, "c2", "cat", "/tmp/started"); out != "started\n" {
		t.Errorf("c2's entrypoint and cmd: %q", out)
	}
	if out := labtest.Exec(t, l, "c2", "id", "-u"); out != "65534\n" {
		t.Errorf("c2's user: uid %q, want nobody's", out)
	}
	// Privileged: its own sysctls writable from inside; not so without.
	labtest.Exec(t, l, "c3", "sysctl", "-w", "net.ipv4.ip_forward=1")
	if _, code, _ := labtest.TryExec(l, "c1", "sysctl", "-w", "net.ipv4.ip_forward=1"); code == 0 {
		t.Error("an unprivileged container wrote its sysctls")
	}
	// This machine's bounding set lacks CAP_SYS_RESOURCE (bit 24): the
	// warning names it. A host with every capability gets no warning.
	status, _ := os.ReadFile("/proc/self/status")
	var bnd uint64
	for _, line := range strings.Split(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			bnd, _ = strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		}
	}
	switch warned := len(top.Warnings) == 1 && strings.Contains(top.Warnings[0].Msg, `node "c3": privileged: this host's capability bounding set lacks SYS_RESOURCE`); {
	case bnd&(1<<24) == 0 && !warned, bnd&(1<<24) != 0 && len(top.Warnings) != 0:
		t.Errorf("bounding set %#x, warnings: %q", bnd, top.Warnings)
	}
	var stdout bytes.Buffer
	code, err := l.Exec(ctx, "c1", []string{"/bin/sh", "-c", "cat; exit 7"}, strings.NewReader("from stdin\n"), &stdout, &stdout)
	if err != nil || code != 7 || stdout.String() != "from stdin\n" {
		t.Errorf("exec with stdin: code %d, err %v, out %q", code, err, stdout.String())
	}
	// The container carries the lab's name, and the user's labels.
	list, err := dc.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", nodes.LabelLab+"="+top.Name, nodes.LabelNode+"=c1")})
	if err != nil || len(list.Items) != 1 || list.Items[0].Labels["team"] != "blue" || list.Items[0].Labels[nodes.LabelNode] != "c1" ||
		list.Items[0].Names[0] != "/"+lab.NetNSName(top.Name, "c1") {
		t.Fatalf("the lab's containers: %v %+v", err, list.Items)
	}
	info, err := l.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range info.Nodes {
		if n.Name == "c1" && (n.Kind != "linux" || n.State != "running" || len(n.Interfaces) != 1 || n.LabName != top.Name ||
			n.ContainerID != list.Items[0].ID || n.Image != labtest.TestImage || n.RuntimeState != "running") {
			t.Errorf("inspect of c1: %+v", n)
		}
		if n.Name == "h" && n.ContainerID != "" {
			t.Errorf("inspect of the namespace node h: %+v", n)
		}
	}

	// Stopped, the container is stopped and keeps its filesystem; started,
	// it gets its link, address and route back; crashed and started, the
	// same.
	labtest.Exec(t, l, "c1", "/bin/sh", "-c", "echo kept > /tmp/kept")
	for _, kill := range []bool{false, true} {
		if _, err := l.StopNodes(ctx, []string{"c1"}, kill); err != nil {
			t.Fatalf("stop c1 (kill %v): %v", kill, err)
		}
		ins, err := dc.ContainerInspect(ctx, lab.NetNSName(top.Name, "c1"), client.ContainerInspectOptions{})
		if err != nil || ins.Container.State.Running || kernel.NetNSExists(lab.NetNSName(top.Name, "c1")) {
			t.Fatalf("stopped c1: %v, running %v", err, ins.Container.State != nil && ins.Container.State.Running)
		}
		if _, code, _ := labtest.TryExec(l, "h", "ping", "-c1", "-W1", "10.77.1.1"); code == 0 {
			t.Error("a ping reached the stopped container")
		}
		if _, err := l.StartNodes(ctx, []string{"c1"}); err != nil {
			t.Fatalf("start c1 (kill %v): %v", kill, err)
		}
		if out := labtest.Exec(t, l, "c1", "ping", "-c1", "-W2", "10.88.0.1"); !strings.Contains(out, "1 packets received") {
			t.Errorf("ping from the started container:\n%s", out)
		}
		if out := labtest.Exec(t, l, "c1", "cat", "/tmp/kept"); out != "kept\n" {
			t.Errorf("the started container's file: %q", out)
		}
	}

	// Restarted behind erlab's back (docker restart), or its process
	// ended: the container runs in a new namespace, away from its link;
	// inspect says detached, and start gives it its link, address and
	// route back.
	nodeState := func() string {
		info, err := l.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range info.Nodes {
			if n.Name == "c1" {
				return n.State + "/" + n.RuntimeState
			}
		}
		return "none"
	}
	for _, how := range []string{"docker restart", "its process killed"} {
		id := lab.NetNSName(top.Name, "c1")
		if how == "docker restart" {
			_, err = dc.ContainerRestart(ctx, id, client.ContainerRestartOptions{})
		} else {
			_, err = dc.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"})
		}
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		want := map[string]string{"docker restart": "detached/running", "its process killed": "detached/exited"}[how]
		var got string
		labtest.Eventually(t, 10*time.Second, "inspect says c1 "+want+" after "+how, func() bool { got = nodeState(); return got == want })
		reps, err := l.StartNodes(ctx, []string{"c1"})
		if err != nil || len(reps) != 1 || reps[0].Did != "reattached" || reps[0].Links != 1 {
			t.Fatalf("start c1 after %s: %+v %v", how, reps, err)
		}
		if out := labtest.Exec(t, l, "c1", "ping", "-c1", "-W2", "10.88.0.1"); !strings.Contains(out, "1 packets received") {
			t.Errorf("ping from c1 repaired after %s:\n%s", how, out)
		}
		if got := nodeState(); got != "running/running" {
			t.Errorf("c1 repaired after %s: %s", how, got)
		}
	}

	// The state gone: destroy by name still finds and removes the container.
	os.RemoveAll(l.Dir())
	rep, err := lab.DestroyWithReport(ctx, top.Name, labtest.Options(t))
	if err != nil || rep.Other != 3 {
		t.Errorf("destroy without state: %+v %v", rep, err)
	}
	list, _ = dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", nodes.LabelLab+"="+top.Name)})
	if len(list.Items) != 0 || kernel.NetNSExists(lab.NetNSName(top.Name, "c1")) {
		t.Errorf("left after destroy: %d containers, namespace %v", len(list.Items), kernel.NetNSExists(lab.NetNSName(top.Name, "c1")))
	}
}

// A linux node's image must be on the host: erlab never pulls one. The
// failed deploy leaves no container of the others, which were being made
// while it failed.
func TestIntegrationLinuxImageMissing(t *testing.T) {
	labtest.Integration(t)
	dc := labtest.RequireDocker(t)
	top := labtest.Parse(t, `name: x
topology:
  nodes:
    c1: { kind: linux, image: "erlab/no-such-image:1" }
    c5: { kind: linux, image: `+labtest.TestImage+`, cmd: /no/such/command }   # fails at its start
    c2: { kind: linux, image: `+labtest.TestImage+` }
    c3: { kind: linux, image: `+labtest.TestImage+` }
    c4: { kind: linux, image: `+labtest.TestImage+` }
`)
	err := lab.FromTopology(top, labtest.Options(t)).Deploy(context.Background())
	if err == nil || !strings.Contains(err.Error(), `image "erlab/no-such-image:1" is not on this host, and erlab never pulls one`) {
		t.Fatalf("deploy with a missing image: %v", err)
	}
	if left, _ := kernel.NetNSList(lab.NetNSName(top.Name, "")); len(left) > 0 {
		t.Errorf("a half-built lab is left: %v", left)
	}
	list, err := dc.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", nodes.LabelLab+"="+top.Name)})
	if err != nil || len(list.Items) > 0 {
		t.Errorf("containers left by the failed deploy: %v %d", err, len(list.Items))
	}
}

// TestIntegrationLinuxMgmt gives container nodes the lab's management
// network, as containerlab does: eth0 on a Docker bridge network of the
// lab's, with the addresses mgmt-ipv4/mgmt-ipv6 ask for; ports published
// on the host's loopback; cpu, memory, shm-size, cap-add, dns and
// healthcheck passed to the runtime and in force in the container; network-mode none left out of
// it; and destroy removes the network with the containers.
func TestIntegrationLinuxMgmt(t *testing.T) {
	labtest.Integration(t)
	dc := labtest.RequireDocker(t)
	ctx := context.Background()
	port := labtest.FreePort(t)
	top := labtest.Parse(t, `name: mg
mgmt:
  ipv4-subnet: 172.31.250.0/24
  ipv6-subnet: 3fff:172:31:250::/64
topology:
  kinds:
    linux: { image: `+labtest.TestImage+` }
  nodes:
    m1:
      kind: linux
      mgmt-ipv4: 172.31.250.11
      mgmt-ipv6: 3fff:172:31:250::11
      ports: ["127.0.0.1:`+strconv.Itoa(port)+`:8080"]
      cpu: 0.5
      memory: 64MB
      shm-size: 32MB
      cap-add: [SYS_TIME]
      dns: { servers: [192.0.2.53], search: [lab.example] }
      healthcheck: { test: [CMD-SHELL, "test -f /tmp/www/index.html"], interval: 1, retries: 2 }
      exec:
        - busybox mkdir -p /tmp/www
        - echo served-by-m1 > /tmp/www/index.html
        - busybox httpd -p 8080 -h /tmp/www
      interfaces: { eth1: { addresses: [10.79.0.1/24] } }
    m2:
      kind: linux
      interfaces: { eth1: { addresses: [10.79.0.2/24] } }
    m3: { kind: linux, network-mode: none }
  links:
    - endpoints: ["m1:eth1", "m2:eth1"]
`)
	l := labtest.Deploy(t, top)
	network := "erlab-" + top.Name

	info, err := l.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	for _, n := range info.Nodes {
		addrs[n.Name] = n.IPv4Address + " " + n.IPv6Address
	}
	if addrs["m1"] != "172.31.250.11/24 3fff:172:31:250::11/64" || !strings.HasPrefix(addrs["m2"], "172.31.250.") || addrs["m3"] != " " {
		t.Errorf("management addresses in inspect: %q", addrs)
	}
	// Over the management network, from container to container; the
	// data link beside it.
	labtest.Exec(t, l, "m2", "ping", "-c1", "-W2", "172.31.250.11")
	labtest.Exec(t, l, "m2", "ping", "-c1", "-W2", "3fff:172:31:250::11")
	labtest.Exec(t, l, "m2", "ping", "-c1", "-W2", "10.79.0.1")
	if out := labtest.Exec(t, l, "m3", "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Errorf("m3, network-mode none, has an eth0:\n%s", out)
	}
	// The published port, from the host's loopback to m1's httpd.
	if body := labtest.GetPage(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/", 10*time.Second); body != "served-by-m1\n" {
		t.Errorf("through the published port: %q", body)
	}
	// The limits in force, as the container's cgroup reads them.
	for cmd, want := range map[string]string{
		"cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes": "67108864",
		"cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us":            "50000",
		"grep ' /dev/shm ' /proc/mounts":                                            "size=32768k",
	} {
		out, _, _ := labtest.TryExec(l, "m1", "/bin/sh", "-c", cmd+" 2>/dev/null")
		if !strings.Contains(out, want) {
			t.Errorf("in m1, %s: %q, want %q in it", cmd, out, want)
		}
	}
	// cap-add: SYS_TIME (bit 25) is in m1's effective set, not in m2's.
	for node, want := range map[string]bool{"m1": true, "m2": false} {
		out := labtest.Exec(t, l, node, "grep", "CapEff", "/proc/self/status")
		eff, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(out, "CapEff:")), 16, 64)
		if got := eff&(1<<25) != 0; got != want {
			t.Errorf("%s: CAP_SYS_TIME %v, want %v (%s)", node, got, want, out)
		}
	}
	// On a network of its own, a container's resolver is Docker's,
	// which forwards to the servers given.
	if out, _, _ := labtest.TryExec(l, "m1", "cat", "/etc/resolv.conf"); !strings.Contains(out, "search lab.example") {
		t.Errorf("m1's resolv.conf:\n%s", out)
	}
	if ins, err := dc.ContainerInspect(ctx, lab.NetNSName(top.Name, "m1"), client.ContainerInspectOptions{}); err != nil ||
		fmt.Sprint(ins.Container.HostConfig.DNS) != "[192.0.2.53]" {
		t.Errorf("m1's DNS servers: %v", err)
	}
	labtest.Eventually(t, 20*time.Second, "m1's health check passes", func() bool {
		ins, err := dc.ContainerInspect(ctx, lab.NetNSName(top.Name, "m1"), client.ContainerInspectOptions{})
		return err == nil && ins.Container.State != nil && ins.Container.State.Health != nil && ins.Container.State.Health.Status == "healthy"
	})

	if _, err := l.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.NetworkInspect(ctx, network, client.NetworkInspectOptions{}); err == nil {
		t.Errorf("network %s left after destroy", network)
	}
}

// TestIntegrationLinuxDeployKilled kills a deploy of container nodes (with
// a management network and a host link) at random instants, deletes its
// state, and destroys the lab by its name alone: no container, network,
// host end or namespace of it is left, whatever the deploy had made — nor
// a container dockerd was still creating for the dead deploy.
func TestIntegrationLinuxDeployKilled(t *testing.T) {
	labtest.Integration(t)
	dc := labtest.RequireDocker(t)
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "lab.yml")
	tag := fmt.Sprintf("ek%04x", rand.IntN(1<<16))
	os.WriteFile(file, []byte(`name: killed
mgmt: { ipv4-subnet: 172.31.251.0/24, ipv6-subnet: "3fff:172:31:251::/64" }
topology:
  kinds:
    linux: { image: `+labtest.TestImage+` }
  nodes:
    c1: { kind: linux }
    c2: { kind: linux }
    c3: { kind: linux }
    c4: { kind: linux, network-mode: none }
    h: {}
  links:
    - endpoints: ["c1:eth1", "c2:eth1"]
    - endpoints: ["c2:eth2", "c3:eth1"]
    - endpoints: ["c3:eth2", "h:eth1"]
    - endpoints: ["c4:eth1", "host:`+tag+`"]
`), 0o644)
	// Run 0 deploys to the end, and times it; the others are killed at a
	// random instant of that time: the kill is the test's input, not a
	// wait for anything.
	var whole time.Duration
	var names []string
	for run := range 5 {
		name := labtest.Name("kill")
		names = append(names, name)
		opts := labtest.Options(t)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ERLAB_TEST_DEPLOY="+file, "ERLAB_TEST_LAB="+name, "ERLAB_TEST_STATE_ROOT="+opts.StateRoot)
		started := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var at time.Duration
		if run == 0 {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("the whole deploy: %v", err)
			}
			whole = time.Since(started)
			at = whole
		} else {
			at = time.Duration(rand.Int64N(int64(whole)))
			time.Sleep(at)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		os.RemoveAll(filepath.Join(opts.StateRoot, name))
		rep, err := lab.DestroyWithReport(ctx, name, opts)
		if err != nil {
			t.Errorf("run %d, killed after %v: destroy --name: %v", run, at, err)
		}
		cts, _ := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", nodes.LabelLab+"="+name)})
		nws, _ := dc.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", nodes.LabelLab+"="+name)})
		nss, _ := kernel.NetNSList(lab.NetNSName(name, ""))
		_, hostErr := netlink.LinkByName(tag)
		if len(cts.Items) != 0 || len(nws.Items) != 0 || len(nss) != 0 || hostErr == nil {
			t.Errorf("run %d, killed after %v, destroyed (%+v): left %d containers, %d networks, namespaces %v, host end %v",
				run, at, rep, len(cts.Items), len(nws.Items), nss, hostErr == nil)
		}
		what := "killed after"
		if run == 0 {
			what = "deployed whole in"
		}
		t.Logf("run %d: %s %v; destroy removed %+v", run, what, at, rep)
	}
	// Nor later: what a killed deploy's daemon made after destroy had
	// looked would show by now, the later runs' time on.
	for _, name := range names {
		if cts, _ := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", nodes.LabelLab+"="+name)}); len(cts.Items) != 0 {
			t.Errorf("lab %s: %d containers appeared after its destroy", name, len(cts.Items))
		}
	}
}

// TestIntegrationFRRContainerLab deploys the shipped mixed lab: FRR in a
// container, configured by the frr.conf the topology binds in, peers over
// eBGP with an erlab router; both install the other's prefix in their
// kernels, the hosts (containers) reach each other through them, and the
// student's view (vtysh in the container) shows the session and the route;
// and the lab's drill runs and passes.
func TestIntegrationFRRContainerLab(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireImage(t, "erlab/frr:1")
	labtest.RequireImage(t, labtest.TestImage)
	top := labtest.Load(t, "../topologies/er-ce-frr.yml")
	l := labtest.Deploy(t, top)
	route := func(node, dst string) string {
		out, _, _ := labtest.TryExec(l, node, "ip", "route", "show", dst)
		return out
	}
	learnt := func() bool {
		return strings.Contains(route("ce", "10.20.0.0/24"), "via 192.168.100.130") &&
			strings.Contains(route("msee", "10.10.0.0/24"), "via 192.168.100.129")
	}
	start := time.Now()
	for deadline := start.Add(60 * time.Second); !learnt(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			// What each side says, for the failure to be read.
			frr, _, _ := labtest.TryExec(l, "ce", "vtysh", "-c", "show bgp summary", "-c", "show ip route")
			ps, _, _ := labtest.TryExec(l, "ce", "ps", "ax")
			rt, _, _ := labtest.TryExec(l, "msee", "ip", "route")
			agent, _ := os.ReadFile(filepath.Join(l.Dir(), "nodes", "msee", "agent.status.json"))
			t.Fatalf("routes learnt over eBGP on both sides: not within 60s\nce (FRR):\n%s\n%s\nmsee's routes:\n%s\nmsee's agent:\n%s", frr, ps, rt, agent)
		}
	}
	took := time.Since(start)
	t.Logf("both sides' kernels have the other's prefix %v after the deploy returned", took)
	if r := route("ce", "10.20.0.0/24"); !strings.Contains(r, "proto bgp") {
		t.Errorf("ce's route, not FRR's: %q", r)
	}
	labtest.WaitPing(t, l, "onprem", "10.20.0.4", 10*time.Second)
	labtest.Exec(t, l, "vm", "ping", "-c1", "-W2", "10.10.0.4")
	out := labtest.Exec(t, l, "ce", "vtysh", "-c", "show bgp ipv4 unicast summary json")
	var sum struct {
		Peers map[string]struct {
			State  string `json:"state"`
			PfxRcd int    `json:"pfxRcd"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Peers["192.168.100.130"].State != "Established" || sum.Peers["192.168.100.130"].PfxRcd != 1 {
		t.Errorf("vtysh in ce: %v\n%s", err, out)
	}
	// The shipped drill: the MSEE's speaker stopped and started; FRR
	// withdraws and learns the route again (bounds in the file).
	labtest.RunDrills(t, l, top, "msee-agent-stopped")
}
