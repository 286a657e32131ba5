package bgp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
)

const frrLab = `name: frr
topology:
  nodes:
    r1:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
        lo: {addresses: [10.1.0.1/24]}
      bgp:
        asn: 65001
        networks: [10.1.0.0/24]
        neighbors:
          - {address: 10.0.0.2, remote-as: 65002, hold-time: 9, bfd: {}}
    frr:
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
        lo: {addresses: [10.2.0.1/24]}
  links:
    - endpoints: ["r1:eth1", "frr:eth1"]
`

// frrConf is FRR's side, as interop.md measured it: eBGP without a policy
// needs "no bgp ebgp-requires-policy"; a short connect timer keeps
// failback quick; BFD at 300 ms x 3 like erlab's default.
const frrConf = `frr defaults traditional
hostname frr
log file %[1]s/frr.log
!
router bgp 65002
 bgp router-id 10.2.0.1
 no bgp ebgp-requires-policy
 neighbor 10.0.0.1 remote-as 65001
 neighbor 10.0.0.1 timers 3 9
 neighbor 10.0.0.1 timers connect 5
 neighbor 10.0.0.1 bfd
 address-family ipv4 unicast
  network 10.2.0.0/24
 exit-address-family
!
bfd
 peer 10.0.0.1
  receive-interval 300
  transmit-interval 300
  detect-multiplier 3
 !
!
`

// startFRR starts zebra, bfdd and bgpd from Debian's frr inside the node,
// each with its own config file (with -N alone they would start empty) and
// their sockets under /var/run/frr/NAME. Destroying the lab stops them, as
// it stops every process in its namespaces.
func startFRR(t *testing.T, l *lab.Lab, node string) (vtysh func(cmd string) string, pids func() map[string]int) {
	t.Helper()
	for _, bin := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/lib/frr/bfdd", "vtysh"} {
		if _, err := exec.LookPath(bin); err != nil {
			if labtest.KernelTier() {
				t.Fatalf("FRR is not installed (scripts/setup installs frr): %v", err)
			}
			t.Skipf("FRR is not installed (scripts/setup installs frr): %v", err)
		}
	}
	inst := "erlab-" + l.Name()
	dir, err := os.MkdirTemp("", "erlab-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir); os.RemoveAll("/var/run/frr/" + inst) })
	run := "/var/run/frr/" + inst
	for _, d := range []string{dir, run} {
		os.MkdirAll(d, 0o755)
		exec.Command("chown", "frr:frr", d).Run()
	}
	conf := filepath.Join(dir, "frr.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(frrConf, dir)), 0o644)
	for _, d := range []string{"zebra", "bfdd", "bgpd"} {
		labtest.Exec(t, l, node, "/usr/lib/frr/"+d, "-d", "-N", inst, "-A", "127.0.0.1", "-f", conf)
	}
	vtysh = func(cmd string) string {
		out, _ := exec.Command("vtysh", "-N", inst, "-c", cmd).Output() // stderr: a missing vtysh.conf
		return string(out)
	}
	pids = func() map[string]int {
		out := map[string]int{}
		for _, d := range []string{"zebra", "bfdd", "bgpd"} {
			b, err := os.ReadFile(filepath.Join(run, d+".pid"))
			if err == nil {
				var pid int
				fmt.Sscan(string(b), &pid)
				out[d] = pid
			}
		}
		return out
	}
	return vtysh, pids
}

// TestIntegrationFRRInterop peers an erlab router with FRR (Debian's bgpd,
// bfdd and zebra): the session comes up and routes flow both ways, each
// side installs the other's prefix in its kernel, BFD comes up, and killing
// FRR's bfdd is detected by erlab's BFD within multiplier x interval.
func TestIntegrationFRRInterop(t *testing.T) {
	labtest.Integration(t)
	top := labtest.Parse(t, frrLab)
	l := labtest.Deploy(t, top)
	name := top.Name
	vtysh, pids := startFRR(t, l, "frr")

	took := labtest.Eventually(t, 60*time.Second, "erlab and FRR established", func() bool { return established(t, l, "r1", "10.0.0.2") })
	t.Logf("established with FRR %s after FRR started", took.Round(time.Millisecond))
	labtest.Eventually(t, 15*time.Second, "FRR's prefix in r1's kernel", func() bool {
		return slices.Equal(kernelNextHops(t, l, "r1", "10.2.0.0/24"), []string{"10.0.0.2"})
	})
	labtest.Eventually(t, 15*time.Second, "erlab's prefix in FRR's kernel", func() bool {
		return slices.Equal(kernelNextHops(t, l, "frr", "10.1.0.0/24"), []string{"10.0.0.1"})
	})
	var sum struct {
		IPv4Unicast struct {
			Peers map[string]struct {
				State  string `json:"state"`
				PfxRcd int    `json:"pfxRcd"`
				PfxSnt int    `json:"pfxSnt"`
			} `json:"peers"`
		} `json:"ipv4Unicast"`
	}
	out := vtysh("show bgp summary json")
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("FRR summary: %v\n%s", err, out)
	}
	// FRR also sends erlab's own prefix back (eBGP has no split horizon);
	// erlab drops it on the AS-path loop.
	if p := sum.IPv4Unicast.Peers["10.0.0.1"]; p.State != "Established" || p.PfxRcd != 1 || p.PfxSnt < 1 {
		t.Errorf("FRR's view of erlab: %+v", p)
	}
	labtest.Exec(t, l, "r1", "ping", "-c1", "-W2", "-I", "10.1.0.1", "10.2.0.1")

	// BFD: up on both sides. FRR 8.4 flaps once at start-up (FRR issue
	// #17337): 	// wait for it to settle: up on both sides, and still up 2 s later.
	var upSince time.Time
	labtest.Eventually(t, 30*time.Second, "BFD up on both sides for 2 s", func() bool {
		nbrs, err := bgp.Neighbors(context.Background(), l, "r1")
		if err != nil || len(nbrs) != 1 || nbrs[0].BFD != "up" || !strings.Contains(vtysh("show bfd peers brief"), "up") {
			upSince = time.Time{}
			return false
		}
		if upSince.IsZero() {
			upSince = time.Now()
		}
		return time.Since(upSince) >= 2*time.Second
	})

	bfdd := pids()["bfdd"]
	if bfdd == 0 {
		t.Fatal("no bfdd pid")
	}
	killed := time.Now()
	if err := syscall.Kill(bfdd, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 3*time.Second, "erlab's BFD detects FRR's bfdd gone", func() bool {
		nbrs, err := bgp.Neighbors(context.Background(), l, "r1")
		return err == nil && len(nbrs) == 1 && nbrs[0].BFD != "up"
	})
	detect := time.Since(killed)
	t.Logf("erlab's BFD detected the silent peer %s after bfdd was killed (300 ms x 3 = 900 ms)", detect.Round(time.Millisecond))
	if detect > 900*time.Millisecond+600*time.Millisecond {
		t.Errorf("detection took %s; multiplier x interval is 900 ms", detect)
	}
	labtest.Eventually(t, 3*time.Second, "the BGP session torn down with BFD", func() bool { return !established(t, l, "r1", "10.0.0.2") })
	if pids, _ := kernel.PIDsIn([]string{lab.NetNSName(name, "frr")}); len(pids[lab.NetNSName(name, "frr")]) < 2 {
		t.Errorf("zebra and bgpd should still run: %v", pids)
	}
}
