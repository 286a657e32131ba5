package ipsec_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/ike"
	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/macsec"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/topo"
)

// s2sLab is a site-to-site VPN: an on-premises device (cpe) and a VPN
// gateway over an "internet" link, a host and a VM behind them. ROUTE is
// how cpe reaches the VNet: through the tunnel, or (misconfigured) in clear.
const s2sLab = `name: s2s
topology:
  nodes:
    cpe:
      forward: true
      interfaces:
        eth1: {addresses: [198.51.100.1/30]}
        eth2: {addresses: [10.1.0.1/24]}
        ipsec0: {addresses: [169.254.21.1/30]}
      routes:
        - ROUTE
    vpngw:
      forward: true
      interfaces:
        eth1: {addresses: [198.51.100.2/30]}
        eth2: {addresses: [10.20.0.1/24]}
        ipsec0: {addresses: [169.254.21.2/30]}
      routes:
        - {dst: 10.1.0.0/16, via: 169.254.21.1}
    host:
      interfaces:
        eth1: {addresses: [10.1.0.10/24]}
      routes:
        - {dst: default, via: 10.1.0.1}
    vm:
      interfaces:
        eth1: {addresses: [10.20.0.4/24]}
      routes:
        - {dst: default, via: 10.20.0.1}
  links:
    - endpoints: ["cpe:eth1", "vpngw:eth1"]
    - endpoints: ["host:eth1", "cpe:eth2"]
    - endpoints: ["vm:eth1", "vpngw:eth2"]
  tunnels:
    - name: s2s
      endpoints:
        - {node: cpe, local: 198.51.100.1}
        - {node: vpngw, local: 198.51.100.2}
      algorithm: ALG
      keys: {a: {env: ERLAB_TEST_ESP_A}, b: {env: ERLAB_TEST_ESP_B}}
      verify: {from: host, to: 10.20.0.4}
`

// Static-key route-based tunnels: deployed from the topology, traffic
// through them, inspect reading the SAs back, verify encryption passing on
// the wire and failing when the route leaks the traffic in clear.
func TestIntegrationTunnelStatic(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, ipsec.KernelESP, ipsec.KernelXfrmi)
	for _, alg := range []struct{ name, keyA, keyB string }{
		{"aes256gcm16", strings.Repeat("1a", 36), strings.Repeat("2b", 36)},
		{"aes128-sha256", strings.Repeat("3c", 48), strings.Repeat("4d", 48)},
	} {
		t.Run(alg.name, func(t *testing.T) {
			t.Setenv("ERLAB_TEST_ESP_A", alg.keyA)
			t.Setenv("ERLAB_TEST_ESP_B", alg.keyB)
			src := strings.NewReplacer("ALG", alg.name, "ROUTE", "{dst: 10.20.0.0/16, via: 169.254.21.2}").Replace(s2sLab)
			top := labtest.Parse(t, src)
			l := labtest.Deploy(t, top)
			labtest.Exec(t, l, "host", "ping", "-c2", "-i", "0.2", "-W2", "10.20.0.4")
			labtest.Exec(t, l, "cpe", "ping", "-c1", "-W2", "169.254.21.2")

			info, err := l.Inspect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ends, _ := info.Features[ipsec.Name].([]ipsec.EndInfo)
			for _, tu := range ends {
				i := tu.XFRM
				if tu.Error != "" || i == nil || i.Out == nil || i.In == nil || string(i.Out.Algorithm) != alg.name || i.Out.Packets < 2 || i.In.Packets < 2 || i.Interface == nil || i.Interface.IfID == 0 {
					b, _ := json.Marshal(tu)
					t.Errorf("%s: tunnel as inspect shows it: %s", tu.Node, b)
				}
			}
			if len(ends) != 2 {
				t.Errorf("inspect shows %d tunnel ends, want 2", len(ends))
			}
			blob, _ := json.Marshal(info)
			if strings.Contains(string(blob), alg.keyA[:16]) || strings.Contains(string(blob), alg.keyB[:16]) {
				t.Error("inspect shows a key")
			}
			res, err := l.VerifyEncryption(context.Background(), []string{"s2s"})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || !res[0].Pass || res[0].ESPPackets < res[0].Sent || res[0].MarkerHits != 0 {
				t.Errorf("verify encryption: %+v", res)
			} else {
				t.Logf("verify: %s", res[0].Reason)
			}
			if alg.name != "aes256gcm16" {
				return
			}
			// cpe restarted: its interface, SAs and routes come back from
			// the topology, the gateway's SAs start over with them (or its
			// replay window would drop cpe's sequence numbers from 1), and
			// the tunnel encrypts as before.
			if _, err := l.RestartNodes(context.Background(), []string{"cpe"}); err != nil {
				t.Fatal(err)
			}
			labtest.Exec(t, l, "host", "ping", "-c2", "-i", "0.2", "-W2", "10.20.0.4")
			res, err = l.VerifyEncryption(context.Background(), []string{"s2s"})
			if err != nil || len(res) != 1 || !res[0].Pass {
				t.Errorf("verify encryption after cpe's restart: %v %+v", err, res)
			}
		})
	}

	// Misconfigured: cpe routes the VNet out of its internet link in clear;
	// the check must fail.
	t.Setenv("ERLAB_TEST_ESP_A", strings.Repeat("1a", 36))
	t.Setenv("ERLAB_TEST_ESP_B", strings.Repeat("2b", 36))
	src := strings.NewReplacer("ALG", "aes256gcm16", "ROUTE", "{dst: 10.20.0.0/16, via: 198.51.100.2}").Replace(s2sLab)
	top := labtest.Parse(t, src)
	l := labtest.Deploy(t, top)
	labtest.Exec(t, l, "host", "ping", "-c1", "-W2", "10.20.0.4")
	res, err := l.VerifyEncryption(context.Background(), []string{"s2s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Pass || res[0].MarkerHits < res[0].Sent {
		t.Errorf("a tunnel bypassed in clear passed the check: %+v", res)
	} else {
		t.Logf("bypassed: %s", res[0].Reason)
	}
}

// A policy-based tunnel: no interface, the subnets behind each end.
func TestIntegrationTunnelPolicy(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, ipsec.KernelESP)
	t.Setenv("ERLAB_TEST_ESP_A", strings.Repeat("5e", 20))
	t.Setenv("ERLAB_TEST_ESP_B", strings.Repeat("6f", 20))
	src := strings.NewReplacer(
		"        ipsec0: {addresses: [169.254.21.1/30]}\n", "",
		"        ipsec0: {addresses: [169.254.21.2/30]}\n", "",
		"ROUTE", "{dst: 10.20.0.0/16, via: 198.51.100.2}",
		"{dst: 10.1.0.0/16, via: 169.254.21.1}", "{dst: 10.1.0.0/16, via: 198.51.100.1}",
		"algorithm: ALG", "algorithm: aes128gcm16\n      mode: policy",
		"{node: cpe, local: 198.51.100.1}", "{node: cpe, local: 198.51.100.1, nets: [10.1.0.0/16]}",
		"{node: vpngw, local: 198.51.100.2}", "{node: vpngw, local: 198.51.100.2, nets: [10.20.0.0/16]}",
	).Replace(s2sLab)
	top := labtest.Parse(t, src)
	l := labtest.Deploy(t, top)
	labtest.Exec(t, l, "host", "ping", "-c2", "-i", "0.2", "-W2", "10.20.0.4")
	res, err := l.VerifyEncryption(context.Background(), []string{"s2s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Pass {
		t.Errorf("verify encryption: %+v", res)
	} else {
		t.Logf("verify: %s", res[0].Reason)
	}
}

// The Virtual WAN variant that never falls back: with disjoint prefixes
// (the circuit carries only the tunnel's ends), a broken tunnel stops the
// traffic, and once BGP over it has timed out there is still no path in
// clear: the shipped drill checks that not one marked frame crossed.
func TestIntegrationVWANDisjoint(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, ipsec.KernelESP, ipsec.KernelXfrmi)
	t.Parallel()
	top := labtest.Load(t, labtest.WithKeys(t, "../../topologies/er-vwan-disjoint.yml"))
	l := labtest.Deploy(t, top)
	// The circuit carries no workload prefix: msee knows the two /32s.
	if err := bgp.WaitConverged(context.Background(), l, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	routes, err := bgp.Routes(context.Background(), l, "msee", false)
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, r := range routes {
		prefixes = append(prefixes, r.Prefix.String())
	}
	slices.Sort(prefixes)
	if strings.Join(prefixes, " ") != "10.100.0.4/32 10.255.0.1/32" {
		t.Errorf("msee's routes: %v, want the tunnel's two ends only", prefixes)
	}
	labtest.RunDrills(t, l, top, "tunnel-sa-broken")
}

// IPsec over ExpressRoute private peering (Virtual WAN): with more-specific
// prefixes over the tunnel, vm → host is ESP on the circuit; advertising
// the same prefix over both leaks it in clear, and verify encryption
// catches it.
func TestIntegrationVWANIPsecOverER(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, ipsec.KernelESP, ipsec.KernelXfrmi)
	t.Parallel() // beside the disjoint variant: both wait out the same hold timer
	path := labtest.WithKeys(t, "../../topologies/er-vwan-ipsec.yml")
	ctx := context.Background()
	check := func(top *topo.Topology) (lab.EncryptionCheck, *lab.Lab) {
		t.Helper()
		l := labtest.Deploy(t, top)
		// Wait for the routes over the tunnel (BGP over ipsec0, itself over
		// the circuit's BGP), then for traffic.
		labtest.Eventually(t, 90*time.Second, "hub's two BGP sessions established with routes", func() bool {
			nb, _ := bgp.Neighbors(ctx, l, "hub")
			up := 0
			for _, n := range nb {
				if n.State == "established" && n.Accepted > 0 {
					up++
				}
			}
			return up == 2
		})
		labtest.Exec(t, l, "vm", "ping", "-c2", "-i", "0.2", "-W2", "10.1.0.10")
		res, err := l.VerifyEncryption(ctx, []string{"vwan"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 {
			t.Fatalf("verify: %+v", res)
		}
		return res[0], l
	}
	good := labtest.Load(t, path)
	c, l := check(good)
	if !c.Pass {
		t.Errorf("more-specifics over the tunnel: %+v", c)
	} else {
		t.Logf("more-specifics over the tunnel: %s", c.Reason)
	}
	// The shipped drill: the hub's outbound SA keyed wrong; once BGP over
	// the tunnel times out, vm → host falls back to ExpressRoute in clear.
	labtest.RunDrills(t, l, good, "tunnel-sa-broken")
	labtest.Destroy(t, l)
	// Misconfigured: on-premises advertises the same /24 over the tunnel
	// as over ExpressRoute; the hub prefers ExpressRoute, in clear.
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "export: { prefixes: [{ prefix: 10.1.0.0/25 }, { prefix: 10.1.0.128/25 }] }", "export: { prefixes: [{ prefix: 10.1.0.0/24 }] }", 1)
	badPath := filepath.Join(filepath.Dir(path), "bad.yml")
	os.WriteFile(badPath, []byte(bad), 0o644)
	if c, _ := check(labtest.Load(t, badPath)); c.Pass || c.MarkerHits == 0 {
		t.Errorf("the same prefix over both paths passed the check: %+v", c)
	} else {
		t.Logf("same prefix over both: %s", c.Reason)
	}
}

// IPsec over a MACsec link: verify encryption reports both layers — the
// link as MACsec, the tunnel as ESP inside MACsec.
func TestIntegrationIPsecOverMACsec(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, ipsec.KernelESP, ipsec.KernelXfrmi, macsec.KernelMACsec)
	t.Setenv("ERLAB_TEST_SAK", strings.Repeat("7a", 16))
	t.Setenv("ERLAB_TEST_ESP_A", strings.Repeat("1a", 36))
	t.Setenv("ERLAB_TEST_ESP_B", strings.Repeat("2b", 36))
	top := labtest.Parse(t, `name: dbl
topology:
  nodes:
    ce:
      interfaces:
        macsec0: {addresses: [192.168.100.129/30]}
        ipsec0: {addresses: [169.254.21.1/30]}
    msee:
      interfaces:
        macsec0: {addresses: [192.168.100.130/30]}
        ipsec0: {addresses: [169.254.21.2/30]}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec: {keys: {a: {env: ERLAB_TEST_SAK}, b: {env: ERLAB_TEST_SAK}}}
  tunnels:
    - name: inner
      endpoints: [{node: ce, local: 192.168.100.129}, {node: msee, local: 192.168.100.130}]
      keys: {a: {env: ERLAB_TEST_ESP_A}, b: {env: ERLAB_TEST_ESP_B}}
`)
	l := labtest.Deploy(t, top)
	labtest.Exec(t, l, "ce", "ping", "-c1", "-W2", "169.254.21.2")
	res, err := l.VerifyEncryption(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("verify: %+v", res)
	}
	for _, r := range res {
		switch {
		case !r.Pass:
			t.Errorf("%s: %+v", r.Link, r)
		case strings.HasPrefix(r.Declared, "macsec") && r.MACsecFrames < r.Sent:
			t.Errorf("MACsec layer: %+v", r)
		case strings.HasPrefix(r.Declared, "ipsec") && !strings.Contains(r.Layers, "inside MACsec"):
			t.Errorf("the tunnel's check does not see the MACsec under it: %+v", r)
		default:
			t.Logf("%s: %s (%s)", r.Link, r.Reason, r.Layers)
		}
	}
}

// An IKEv2 tunnel from the topology with NAT traversal forced: ESP in UDP
// 4500 on the wire, and verify encryption reads it as such.
func TestIntegrationTunnelIKENATT(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, ipsec.KernelESP, ipsec.KernelXfrmi)
	t.Setenv("ERLAB_TEST_PSK", strings.Repeat("k3", 16))
	src := strings.NewReplacer("ALG", "aes128gcm16\n      nat-t: true", "ROUTE", "{dst: 10.20.0.0/16, via: 169.254.21.2}",
		"keys: {a: {env: ERLAB_TEST_ESP_A}, b: {env: ERLAB_TEST_ESP_B}}", "ike: {psk: {env: ERLAB_TEST_PSK}}").Replace(s2sLab)
	top := labtest.Parse(t, src)
	l := labtest.Deploy(t, top)
	// erlab events sees the tunnel up at both ends (its IKE SA
	// established, its CHILD SA installed).
	evs := labtest.Watch(t, l, lab.WatchOptions{Initial: true})
	for _, node := range []string{"cpe", "vpngw"} {
		e := evs.Wait(t, 10*time.Second, node+"'s IKE state", 0, labtest.Is(node, "ike", "s2s", "established"))
		if !e.Initial || !strings.HasPrefix(e.Detail, "CHILD installed, SPI 0x") {
			t.Errorf("%s's IKE state: %+v", node, e)
		}
	}
	labtest.Exec(t, l, "host", "ping", "-c2", "-i", "0.2", "-W2", "10.20.0.4")
	out := labtest.Capture(t, l, "vpngw", "eth1", 2, "udp port 4500", func() { labtest.TryExec(l, "host", "ping", "-c2", "-i", "0.2", "10.20.0.4") })
	if !strings.Contains(out, "UDP-encap") && !strings.Contains(out, ".4500:") {
		t.Errorf("no ESP in UDP 4500 on the wire:\n%s", out)
	}
	res, err := l.VerifyEncryption(context.Background(), []string{"s2s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Pass || res[0].Declared != "ipsec aes128gcm16 (IKEv2)" {
		t.Errorf("verify encryption: %+v", res)
	} else {
		t.Logf("verify: %s", res[0].Reason)
	}
	// A rekey: events shows the CHILD SA's new SPIs as they come.
	from := evs.Len()
	rep, err := ike.Rekey(context.Background(), l, "cpe", "s2s", false)
	if err != nil {
		t.Fatal(err)
	}
	spi := fmt.Sprintf("SPI %#x out", rep.SPIAfter)
	e := evs.Wait(t, 10*time.Second, "the rekeyed CHILD SA's "+spi, from, func(e lab.Event) bool {
		return labtest.Is("cpe", "ike", "s2s", "established")(e) && strings.Contains(e.Detail, spi)
	})
	t.Logf("rekey: %s → %s", fmt.Sprintf("%#x", rep.SPIBefore), e.Detail)
}
