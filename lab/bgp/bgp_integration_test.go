package bgp_test

import (
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/netem"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
)

func established(t *testing.T, l *lab.Lab, node string, addrs ...string) bool {
	nbrs, err := bgp.Neighbors(context.Background(), l, node)
	if err != nil {
		return false
	}
	up := map[string]bool{}
	for _, n := range nbrs {
		up[n.Address] = n.State == "established"
	}
	for _, a := range addrs {
		if !up[a] {
			return false
		}
	}
	return true
}

// kernelNextHops reads a route from the node's kernel with iproute2, an
// independent reader: the next hops of its proto bgp route to dst.
func kernelNextHops(t *testing.T, l *lab.Lab, node, dst string) []string {
	out, _, _ := labtest.TryExec(l, node, "ip", "route", "show", dst, "proto", "bgp")
	var nhs []string
	f := strings.Fields(out)
	for i, w := range f {
		if w == "via" && i+1 < len(f) {
			nhs = append(nhs, f[i+1])
		}
	}
	slices.Sort(nhs)
	return nhs
}

// TestIntegrationBGP deploys the shipped BGP lab (a CE pair and an MSEE
// pair) and checks the routing story end to end: sessions and BFD up, the
// primary preferred both ways and in the kernels, traffic across, the gobgp
// CLI against the agent, a failure inside the provider's switch (no carrier
// change anywhere) caught by BFD and routed around, failback, and a crashed
// speaker whose routes are flushed and come back.
func TestIntegrationBGP(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Load(t, "../../topologies/er-bgp.yml")
	l := labtest.Deploy(t, top)
	viaCE1, viaCE2 := []string{"10.0.1.2"}, []string{"10.0.2.2"}
	viaMSEE1, viaMSEE2 := []string{"172.16.0.1"}, []string{"172.16.0.5"}

	took := labtest.Eventually(t, 60*time.Second, "all sessions established", func() bool {
		return established(t, l, "ce1", "192.168.100.130", "10.0.1.1") && established(t, l, "ce2", "192.168.100.134", "10.0.2.1") &&
			established(t, l, "ergw", "172.16.0.1", "172.16.0.5")
	})
	t.Logf("sessions established %s after deploy", took.Round(time.Millisecond))
	labtest.Eventually(t, 10*time.Second, "the primary preferred both ways, in the kernels", func() bool {
		return slices.Equal(kernelNextHops(t, l, "core", "10.10.0.0/16"), viaCE1) &&
			slices.Equal(kernelNextHops(t, l, "ergw", "10.1.0.0/24"), viaMSEE1)
	})
	nbrs, err := bgp.Neighbors(context.Background(), l, "ce1")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nbrs {
		if n.Address == "192.168.100.130" && (n.BFD != "up" || n.Accepted != 1 || n.RemoteAS != 12076) {
			t.Errorf("ce1's primary session %+v: want BFD up and the VNet prefix accepted", n)
		}
	}
	routes, err := bgp.Routes(context.Background(), l, "core", true)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range routes {
		if r.Prefix.String() != "10.10.0.0/16" {
			continue
		}
		seen = append(seen, r.NextHop.String())
		switch r.NextHop.String() {
		case "10.0.1.2":
			if !r.Best || !r.Installed || r.LocalPref != 200 || !slices.Equal(r.ASPath, []uint32{12076, 65515}) {
				t.Errorf("core's path via ce1: %+v", r)
			}
		case "10.0.2.2":
			if r.Best || r.Installed || r.LocalPref != 100 {
				t.Errorf("core's path via ce2: %+v", r)
			}
		}
	}
	if slices.Sort(seen); !slices.Equal(seen, []string{"10.0.1.2", "10.0.2.2"}) {
		t.Errorf("core's RIB for the VNet: next hops %v, want both CEs", seen)
	}
	labtest.Exec(t, l, "onprem", "ping", "-c1", "-W2", "10.10.0.4")

	if _, err := exec.LookPath("gobgp"); err == nil {
		out := labtest.Exec(t, l, "ce1", "gobgp", "neighbor")
		if !strings.Contains(out, "192.168.100.130") || strings.Count(out, "Establ") != 2 {
			t.Errorf("gobgp neighbor in ce1:\n%s", out)
		}
		if out := labtest.Exec(t, l, "ce1", "gobgp", "global", "rib"); !strings.Contains(out, "10.10.0.0/16") {
			t.Errorf("gobgp global rib in ce1:\n%s", out)
		}
	} else if labtest.KernelTier() {
		t.Error("the gobgp CLI is not installed (scripts/setup installs it)")
	}

	// The provider's switch stops forwarding on the primary: every carrier
	// stays up, only BFD (300 ms x 3) can tell.
	failed := time.Now()
	labtest.Exec(t, l, "pe1", "ip", "link", "set", "eth2", "nomaster")
	labtest.Eventually(t, 5*time.Second, "traffic moved to the secondary both ways", func() bool {
		return slices.Equal(kernelNextHops(t, l, "core", "10.10.0.0/16"), viaCE2) &&
			slices.Equal(kernelNextHops(t, l, "ergw", "10.1.0.0/24"), viaMSEE2)
	})
	t.Logf("BFD failover: both ends routed via the secondary %s after the switch failed", time.Since(failed).Round(time.Millisecond))
	labtest.Exec(t, l, "onprem", "ping", "-c1", "-W2", "10.10.0.4")

	restored := time.Now()
	labtest.Exec(t, l, "pe1", "ip", "link", "set", "eth2", "master", "br0")
	labtest.Eventually(t, 30*time.Second, "failback to the primary", func() bool {
		return slices.Equal(kernelNextHops(t, l, "core", "10.10.0.0/16"), viaCE1) &&
			slices.Equal(kernelNextHops(t, l, "ergw", "10.1.0.0/24"), viaMSEE1)
	})
	t.Logf("failback: the primary carries traffic again %s after the switch was restored", time.Since(restored).Round(time.Millisecond))

	// A speaker that dies must not leave its routes behind; its supervisor
	// has them flushed and starts it again.
	dir := l.NodeDir("ce1")
	st, err := bgp.ReadStatus(dir)
	if err != nil || st.SpeakerPID == 0 {
		t.Fatalf("agent status: %+v %v", st, err)
	}
	if err := syscall.Kill(st.SpeakerPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 3*time.Second, "the dead speaker's routes flushed", func() bool {
		return kernelNextHops(t, l, "ce1", "10.10.0.0/16") == nil
	})
	labtest.Eventually(t, 30*time.Second, "the restarted speaker's routes back", func() bool {
		return slices.Equal(kernelNextHops(t, l, "ce1", "10.10.0.0/16"), []string{"192.168.100.130"})
	})
	agents := labtest.Inspect(t, l).Features[bgp.Name].([]bgp.AgentInfo)
	for _, a := range agents {
		if a.Node == "ce1" && (!a.Alive || !a.Speaking || a.Restarts != 1 || !strings.Contains(a.LastExit, "killed")) {
			t.Errorf("inspect ce1 agent after the crash: %+v", a)
		}
		if a.Node == "onprem" {
			t.Errorf("a netns node shows an agent: %+v", a)
		}
	}

	// Asking a node with no agent says so, and which nodes have one.
	if _, err := bgp.Neighbors(context.Background(), l, "onprem"); err == nil ||
		!strings.Contains(err.Error(), "node onprem runs no BGP agent") || !strings.Contains(err.Error(), "ce1, ce2") {
		t.Errorf("bgp on a netns node: %v", err)
	}
	// An agent that cannot answer (its node's lo down: the API listens
	// there) is reported within the agent timeout, not waited on forever.
	labtest.Exec(t, l, "ce2", "ip", "link", "set", "lo", "down")
	asked := time.Now()
	_, err = bgp.Neighbors(context.Background(), l, "ce2")
	if err == nil || !strings.Contains(err.Error(), "loopback is down") || time.Since(asked) > bgp.AgentTimeout+5*time.Second {
		t.Errorf("bgp with the node's lo down, after %s: %v", time.Since(asked).Round(time.Millisecond), err)
	}
	labtest.Exec(t, l, "ce2", "ip", "link", "set", "lo", "up")
	// erlab link refuses the loopback: it is no link end.
	if err := l.LinkSet(context.Background(), "ce1", "lo", false); err == nil || !strings.Contains(err.Error(), `no link end "ce1:lo"`) {
		t.Errorf("link down ce1:lo: %v", err)
	}
}

const multipathLab = `name: mp
topology:
  nodes:
    r1:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.12.1/30]}
        eth2: {addresses: [10.0.13.1/30]}
      bgp:
        asn: 65001
        multipath: true
        neighbors:
          - {address: 10.0.12.2, remote-as: 65002}
          - {address: 10.0.13.2, remote-as: 65002}
    r2:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.12.2/30]}
      bgp: {asn: 65002, networks: [10.50.0.0/24], neighbors: [{address: 10.0.12.1, remote-as: 65001}]}
    r3:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.13.2/30]}
      bgp: {asn: 65002, networks: [10.50.0.0/24], neighbors: [{address: 10.0.13.1, remote-as: 65001}]}
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
    - endpoints: ["r1:eth2", "r3:eth1"]
`

// TestIntegrationBGPMultipath: two equal paths become one ECMP kernel route
// with both next hops; when one goes, the route keeps the other.
func TestIntegrationBGPMultipath(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, multipathLab)
	l := labtest.Deploy(t, top)
	labtest.Eventually(t, 60*time.Second, "ECMP route with both next hops", func() bool {
		return slices.Equal(kernelNextHops(t, l, "r1", "10.50.0.0/24"), []string{"10.0.12.2", "10.0.13.2"})
	})
	if err := l.LinkSet(context.Background(), "r3", "eth1", false); err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 3*time.Second, "the ECMP route keeps the remaining path", func() bool {
		return slices.Equal(kernelNextHops(t, l, "r1", "10.50.0.0/24"), []string{"10.0.12.2"})
	})
}

const policyLab = `name: pol
topology:
  nodes:
    r1:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.12.1/30]}
        eth2: {addresses: [10.0.13.1/30]}
      bgp:
        asn: 65001
        neighbors:
          - address: 10.0.12.2
            remote-as: 65002
            passive: true
            password: ${ERLAB_TEST_MD5:=s3cret}
            import:
              prefixes: [{prefix: 10.20.0.0/16, le: 24}]
              local-pref: 150
              communities: ["12076:50004"]
          - {address: 10.0.13.2, remote-as: 65003, max-prefixes: 1}
    r2:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.12.2/30]}
      bgp:
        asn: 65002
        networks: [10.20.1.0/24, 10.20.2.0/24, 10.20.0.0/16, 10.30.0.0/16, 10.20.3.128/25]
        neighbors:
          - address: 10.0.12.1
            remote-as: 65001
            password: ${ERLAB_TEST_MD5:=s3cret}
            export: {prepend: 2, med: 7}
    r3:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.13.2/30]}
      bgp:
        asn: 65003
        networks: [10.40.1.0/24, 10.40.2.0/24]
        neighbors:
          - {address: 10.0.13.1, remote-as: 65001}
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
    - endpoints: ["r1:eth2", "r3:eth1"]
`

// TestIntegrationBGPPolicy checks the neighbour and policy settings on real
// sessions: MD5 and passive (the session still comes up), an import prefix
// filter with ge/le, local preference and communities set on import, AS-path
// prepend and MED on export, and a prefix limit that drops the session, as
// ExpressRoute's does. Then fast external failover: without BFD and with a
// 180 s hold time, a carrier loss still resets the session at once.
func TestIntegrationBGPPolicy(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, policyLab)
	l := labtest.Deploy(t, top)
	labtest.Eventually(t, 60*time.Second, "r1-r2 established (MD5, r1 passive)", func() bool { return established(t, l, "r1", "10.0.12.2") })
	if nbrs, err := bgp.Neighbors(context.Background(), l, "r1"); err != nil || !slices.ContainsFunc(nbrs, func(n bgp.NeighborInfo) bool { return n.Address == "10.0.12.2" && n.Passive }) {
		t.Errorf("r1's neighbours do not show its passive session: %+v %v", nbrs, err)
	}
	labtest.Eventually(t, 30*time.Second, "r1 drops r3 over the prefix limit", func() bool {
		nbrs, _ := bgp.Neighbors(context.Background(), l, "r1")
		for _, n := range nbrs {
			if n.Address == "10.0.13.2" && n.Down == "max-prefixes" && n.State != "established" {
				return true
			}
		}
		return false
	})
	var got []string
	labtest.Eventually(t, 10*time.Second, "r2's routes at r1 through the import filter", func() bool {
		routes, err := bgp.Routes(context.Background(), l, "r1", true)
		if err != nil {
			return false
		}
		got = nil
		for _, r := range routes {
			if r.Neighbor != "10.0.12.2" {
				continue
			}
			got = append(got, r.Prefix.String())
			if r.LocalPref != 150 || !slices.Equal(r.ASPath, []uint32{65002, 65002, 65002}) || r.MED != 7 || !slices.Contains(r.Communities, "12076:50004") || !r.Installed {
				t.Logf("route %+v", r)
				return false
			}
		}
		slices.Sort(got)
		return slices.Equal(got, []string{"10.20.0.0/16", "10.20.1.0/24", "10.20.2.0/24"})
	})
	if kernelNextHops(t, l, "r1", "10.30.0.0/16") != nil || kernelNextHops(t, l, "r1", "10.20.3.128/25") != nil {
		t.Error("a prefix the import filter rejects reached r1's kernel")
	}

	// Fast external failover: r2's end goes down, r1 loses carrier.
	pulled := time.Now()
	if err := l.LinkSet(context.Background(), "r2", "eth1", false); err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 2*time.Second, "r1 resets the session on carrier loss", func() bool { return !established(t, l, "r1", "10.0.12.2") })
	labtest.Eventually(t, 2*time.Second, "r2's routes gone from r1's kernel", func() bool { return kernelNextHops(t, l, "r1", "10.20.1.0/24") == nil })
	t.Logf("fast external failover: session reset and routes withdrawn %s after the carrier loss (hold time 180 s)", time.Since(pulled).Round(time.Millisecond))
}

// Two erlab routers that both would dial each other: the connection
// collision GoBGP v4.8.0 can leave stuck in OpenConfirm for good (see
// passiveRule), which erlab avoids by making the end with the higher
// address passive. A 50 ms delay on the link (netem) widens the collision
// window as a loaded host does. The session must establish after the
// deploy and after each of five flaps of the link, where both ends reset
// at once — each time within 30 s.
func TestIntegrationBGPCollision(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, netem.KernelNetem)
	top := labtest.Parse(t, `name: col
topology:
  nodes:
    r1:
      kind: router
      interfaces: {eth1: {addresses: [10.0.12.1/30]}}
      bgp: {asn: 65001, neighbors: [{address: 10.0.12.2, remote-as: 65002}]}
    r2:
      kind: router
      interfaces: {eth1: {addresses: [10.0.12.2/30]}}
      bgp: {asn: 65002, neighbors: [{address: 10.0.12.1, remote-as: 65001}]}
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
      impair: {delay: 50ms}
`)
	if n := bgp.Of(top.Node("r2")).Neighbors[0]; !n.Passive || !n.AutoPassive || bgp.Of(top.Node("r1")).Neighbors[0].Passive {
		t.Fatalf("the higher address's end should be the passive one: r2 %+v", n)
	}
	l := labtest.Deploy(t, top)
	up := func() bool { return established(t, l, "r1", "10.0.12.2") && established(t, l, "r2", "10.0.12.1") }
	var took []string
	took = append(took, labtest.Eventually(t, 30*time.Second, "the session established after deploy", up).Round(time.Millisecond).String())
	for i := range 5 {
		if err := l.LinkSet(context.Background(), "r1", "eth1", false); err != nil {
			t.Fatal(err)
		}
		labtest.Eventually(t, 5*time.Second, "both ends reset on carrier loss", func() bool {
			return !established(t, l, "r1", "10.0.12.2") && !established(t, l, "r2", "10.0.12.1")
		})
		if err := l.LinkSet(context.Background(), "r1", "eth1", true); err != nil {
			t.Fatal(err)
		}
		d := labtest.Eventually(t, 30*time.Second, "the session established after flap "+strconv.Itoa(i+1), up)
		took = append(took, d.Round(time.Millisecond).String())
	}
	t.Logf("established after deploy and five flaps: %s", strings.Join(took, ", "))
}
