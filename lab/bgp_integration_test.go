package lab_test

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/agent"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// eventually polls cond every 50 ms until it holds or the time is up, and
// returns how long it took.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func established(t *testing.T, labName, node string, addrs ...string) bool {
	nbrs, err := lab.BGPNeighbors(context.Background(), labName, node)
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
func kernelNextHops(t *testing.T, labName, node, dst string) []string {
	out, _, _ := labtest.TryExec(labName, node, "ip", "route", "show", dst, "proto", "bgp")
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
	top := labtest.Load(t, "../topologies/er-bgp.yml")
	labtest.Deploy(t, top)
	name := top.Name
	viaCE1, viaCE2 := []string{"10.0.1.2"}, []string{"10.0.2.2"}
	viaMSEE1, viaMSEE2 := []string{"172.16.0.1"}, []string{"172.16.0.5"}

	took := eventually(t, 60*time.Second, "all sessions established", func() bool {
		return established(t, name, "ce1", "192.168.100.130", "10.0.1.1") && established(t, name, "ce2", "192.168.100.134", "10.0.2.1") &&
			established(t, name, "ergw", "172.16.0.1", "172.16.0.5")
	})
	t.Logf("sessions established %s after deploy", took.Round(time.Millisecond))
	eventually(t, 10*time.Second, "the primary preferred both ways, in the kernels", func() bool {
		return slices.Equal(kernelNextHops(t, name, "core", "10.10.0.0/16"), viaCE1) &&
			slices.Equal(kernelNextHops(t, name, "ergw", "10.1.0.0/24"), viaMSEE1)
	})
	nbrs, err := lab.BGPNeighbors(context.Background(), name, "ce1")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nbrs {
		if n.Address == "192.168.100.130" && (n.BFD != "up" || n.Accepted != 1 || n.RemoteAS != 12076) {
			t.Errorf("ce1's primary session %+v: want BFD up and the VNet prefix accepted", n)
		}
	}
	routes, err := lab.BGPRoutes(context.Background(), name, "core", true)
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
	labtest.Exec(t, name, "onprem", "ping", "-c1", "-W2", "10.10.0.4")

	if _, err := exec.LookPath("gobgp"); err == nil {
		out := labtest.Exec(t, name, "ce1", "gobgp", "neighbor")
		if !strings.Contains(out, "192.168.100.130") || strings.Count(out, "Establ") != 2 {
			t.Errorf("gobgp neighbor in ce1:\n%s", out)
		}
		if out := labtest.Exec(t, name, "ce1", "gobgp", "global", "rib"); !strings.Contains(out, "10.10.0.0/16") {
			t.Errorf("gobgp global rib in ce1:\n%s", out)
		}
	} else if labtest.KernelTier() {
		t.Error("the gobgp CLI is not installed (scripts/setup installs it)")
	}

	// The provider's switch stops forwarding on the primary: every carrier
	// stays up, only BFD (300 ms x 3) can tell.
	failed := time.Now()
	labtest.Exec(t, name, "pe1", "ip", "link", "set", "eth2", "nomaster")
	eventually(t, 5*time.Second, "traffic moved to the secondary both ways", func() bool {
		return slices.Equal(kernelNextHops(t, name, "core", "10.10.0.0/16"), viaCE2) &&
			slices.Equal(kernelNextHops(t, name, "ergw", "10.1.0.0/24"), viaMSEE2)
	})
	t.Logf("BFD failover: both ends routed via the secondary %s after the switch failed", time.Since(failed).Round(time.Millisecond))
	labtest.Exec(t, name, "onprem", "ping", "-c1", "-W2", "10.10.0.4")

	restored := time.Now()
	labtest.Exec(t, name, "pe1", "ip", "link", "set", "eth2", "master", "br0")
	eventually(t, 30*time.Second, "failback to the primary", func() bool {
		return slices.Equal(kernelNextHops(t, name, "core", "10.10.0.0/16"), viaCE1) &&
			slices.Equal(kernelNextHops(t, name, "ergw", "10.1.0.0/24"), viaMSEE1)
	})
	t.Logf("failback: the primary carries traffic again %s after the switch was restored", time.Since(restored).Round(time.Millisecond))

	// A speaker that dies must not leave its routes behind; its supervisor
	// has them flushed and starts it again.
	dir := lab.DefaultStateRoot + "/" + name + "/nodes/ce1"
	st, err := agent.ReadStatus(dir)
	if err != nil || st.SpeakerPID == 0 {
		t.Fatalf("agent status: %+v %v", st, err)
	}
	if err := syscall.Kill(st.SpeakerPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the dead speaker's routes flushed", func() bool {
		return kernelNextHops(t, name, "ce1", "10.10.0.0/16") == nil
	})
	eventually(t, 30*time.Second, "the restarted speaker's routes back", func() bool {
		return slices.Equal(kernelNextHops(t, name, "ce1", "10.10.0.0/16"), []string{"192.168.100.130"})
	})
	info := inspect(t, name)
	for _, n := range info.Nodes {
		if n.Name == "ce1" && (n.Agent == nil || !n.Agent.Alive || !n.Agent.Speaking || n.Agent.Restarts != 1 || !strings.Contains(n.Agent.LastExit, "killed")) {
			t.Errorf("inspect ce1 agent after the crash: %+v", n.Agent)
		}
		if n.Name == "onprem" && n.Agent != nil {
			t.Errorf("a netns node shows an agent: %+v", n.Agent)
		}
	}

	// Asking a node with no agent says so, and which nodes have one.
	if _, err := lab.BGPNeighbors(context.Background(), name, "onprem"); err == nil ||
		!strings.Contains(err.Error(), "node onprem runs no BGP agent") || !strings.Contains(err.Error(), "ce1, ce2") {
		t.Errorf("bgp on a netns node: %v", err)
	}
	// An agent that cannot answer (its node's lo down: the API listens
	// there) is reported within the agent timeout, not waited on forever.
	labtest.Exec(t, name, "ce2", "ip", "link", "set", "lo", "down")
	asked := time.Now()
	_, err = lab.BGPNeighbors(context.Background(), name, "ce2")
	if err == nil || !strings.Contains(err.Error(), "loopback is down") || time.Since(asked) > lab.AgentTimeout+5*time.Second {
		t.Errorf("bgp with the node's lo down, after %s: %v", time.Since(asked).Round(time.Millisecond), err)
	}
	labtest.Exec(t, name, "ce2", "ip", "link", "set", "lo", "up")
	// erlab link refuses the loopback: it is no link end.
	if err := lab.LinkSet(name, "ce1", "lo", false, lab.Options{}); err == nil || !strings.Contains(err.Error(), `no link end "ce1:lo"`) {
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
	labtest.Deploy(t, top)
	name := top.Name
	eventually(t, 60*time.Second, "ECMP route with both next hops", func() bool {
		return slices.Equal(kernelNextHops(t, name, "r1", "10.50.0.0/24"), []string{"10.0.12.2", "10.0.13.2"})
	})
	if err := lab.LinkSet(name, "r3", "eth1", false, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the ECMP route keeps the remaining path", func() bool {
		return slices.Equal(kernelNextHops(t, name, "r1", "10.50.0.0/24"), []string{"10.0.12.2"})
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
	labtest.Deploy(t, top)
	name := top.Name
	eventually(t, 60*time.Second, "r1-r2 established (MD5, r1 passive)", func() bool { return established(t, name, "r1", "10.0.12.2") })
	eventually(t, 30*time.Second, "r1 drops r3 over the prefix limit", func() bool {
		nbrs, _ := lab.BGPNeighbors(context.Background(), name, "r1")
		for _, n := range nbrs {
			if n.Address == "10.0.13.2" && n.Down == "max-prefixes" && n.State != "established" {
				return true
			}
		}
		return false
	})
	var got []string
	eventually(t, 10*time.Second, "r2's routes at r1 through the import filter", func() bool {
		routes, err := lab.BGPRoutes(context.Background(), name, "r1", true)
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
	if kernelNextHops(t, name, "r1", "10.30.0.0/16") != nil || kernelNextHops(t, name, "r1", "10.20.3.128/25") != nil {
		t.Error("a prefix the import filter rejects reached r1's kernel")
	}

	// Fast external failover: r2's end goes down, r1 loses carrier.
	pulled := time.Now()
	if err := lab.LinkSet(name, "r2", "eth1", false, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "r1 resets the session on carrier loss", func() bool { return !established(t, name, "r1", "10.0.12.2") })
	eventually(t, 2*time.Second, "r2's routes gone from r1's kernel", func() bool { return kernelNextHops(t, name, "r1", "10.20.1.0/24") == nil })
	t.Logf("fast external failover: session reset and routes withdrawn %s after the carrier loss (hold time 180 s)", time.Since(pulled).Round(time.Millisecond))
}
