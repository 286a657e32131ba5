package expressroute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/bridgevlan"
	"github.com/erlab-dev/erlab/lab/ike"
	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/labtest/tier"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/lab/vlan"
)

// deployScenario deploys a shipped scenario and checks what every one
// claims: each subnet carries traffic (verify connectivity), and BGP
// converges with every session up.
func deployScenario(t *testing.T, file string) (*lab.Lab, *topo.Topology) {
	t.Helper()
	top := labtest.Load(t, labtest.WithKeys(t, "../../topologies/"+file))
	began := time.Now()
	l := labtest.Deploy(t, top)
	t.Logf("%s: deployed in %s", file, time.Since(began).Round(time.Millisecond))
	if err := bgp.WaitConverged(context.Background(), l, 90*time.Second); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	res, err := l.VerifyConnectivity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) == 0 {
		t.Fatalf("%s: verify connectivity checked nothing", file)
	}
	for _, r := range res {
		if !r.OK {
			t.Errorf("%s: verify connectivity: %s → %s (%s): %s", file, r.From, r.To, r.Addr, r.Error)
		}
	}
	return l, top
}

// TestIntegrationScenarioCircuitL2: the provider Layer 2 circuit, from its
// declaration: the site reaches the VNet over the primary link, whose
// frames on the MSEE's port are the circuit's S-tag (802.1ad) over the
// peering's C-tag; the MSEE runs BFD with the customer and tags the VNet's
// routes with East US's community; the provider's switch going silent
// moves both directions to the secondary within BFD's time.
func TestIntegrationScenarioCircuitL2(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q, vlan.KernelDot1ad, bridgevlan.KernelBridgeVLAN)
	l, top := deployScenario(t, "er-circuit-l2.yml")
	labtest.WaitPing(t, l, "onprem-host", "10.10.0.4", 10*time.Second)
	if via := labtest.RouteVia(t, l, "onprem-core", "10.10.0.4"); via != "100.64.0.2" {
		t.Errorf("the site's router sends to the VNet via %s; want contoso-ce1 (100.64.0.2), the primary", via)
	}
	out := labtest.Capture(t, l, "contoso-msee1", "eth1", 2, "vlan 30 and vlan 100 and icmp", func() {
		labtest.TryExec(l, "onprem-host", "ping", "-c1", "-W2", "10.10.0.4")
	})
	if !strings.Contains(out, "ethertype 802.1Q-QinQ (0x88a8)") || !strings.Contains(out, "vlan 30, p 0, ethertype 802.1Q (0x8100), vlan 100") {
		t.Errorf("frames on msee1's port are not S-tag 30 (802.1ad) over C-tag 100:\n%s", out)
	}
	routes := labtest.Exec(t, l, "contoso-ce1", "gobgp", "global", "rib", "-a", "ipv4", "10.10.0.0/16")
	if !strings.Contains(routes, "12076:50004") || !strings.Contains(routes, "12076 65515") {
		t.Errorf("ce1's route to the VNet lacks AS path 12076 65515 or East US's community 12076:50004:\n%s", routes)
	}
	nb := labtest.Exec(t, l, "contoso-msee1", "gobgp", "neighbor", "192.168.100.129")
	for _, want := range []string{"Hold time is 180, keepalive interval is 60 seconds"} {
		if !strings.Contains(nb, want) {
			t.Errorf("msee1's session with ce1: %q missing:\n%s", want, nb)
		}
	}
	// IPv6 over the same peering: its own sessions, the /126's first
	// address the customer's, a limit of 100 prefixes at the MSEE.
	labtest.WaitPing(t, l, "onprem-host", "2001:db8:10::4", 10*time.Second)
	if got := labtest.Exec(t, l, "contoso-ce1", "gobgp", "global", "rib", "-a", "ipv6", "2001:db8:10::/48"); !strings.Contains(got, "12076 65515") || !strings.Contains(got, "2001:db8:100::2") {
		t.Errorf("ce1's IPv6 route to the VNet is not via msee1's 2001:db8:100::2 with AS path 12076 65515:\n%s", got)
	}
	if nb6 := labtest.Exec(t, l, "contoso-msee1", "gobgp", "neighbor", "2001:db8:100::1"); !strings.Contains(nb6, "BGP state = SESSION_STATE_ESTABLISHED") ||
		!strings.Contains(nb6, "ipv6-unicast:\tMaximum prefixes allowed 100") || strings.Contains(nb6, "ipv4-unicast") {
		t.Errorf("msee1's IPv6 session with ce1:\n%s", nb6)
	}
	labtest.RunDrills(t, l, top)
}

// TestIntegrationScenarioDirectCircuits: ExpressRoute Direct from its
// declaration: a QinQ port pair under MACsec XPN-256 carrying two circuits
// that reuse C-tag 100 in S-tags 10 and 20. Each circuit's customer gets
// only its own VNet; Microsoft peering carries the customer's public
// prefix in and nothing out (no route filter); the ports verify as
// encrypted; the primary port going down moves both ways to the secondary.
func TestIntegrationScenarioDirectCircuits(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q, macsec.KernelMACsec)
	l, top := deployScenario(t, "er-direct-circuits.yml")
	labtest.WaitPing(t, l, "hq-host", "10.10.0.4", 10*time.Second)
	labtest.WaitPing(t, l, "hq-host", "10.20.0.4", 10*time.Second)
	for nb, want := range map[string]string{"192.168.100.130": "10.10.0.0/16", "192.168.200.130": "10.20.0.0/16"} {
		got := labtest.Exec(t, l, "direct-ce1", "gobgp", "neighbor", nb, "adj-in")
		other := map[string]string{"10.10.0.0/16": "10.20.0.0/16", "10.20.0.0/16": "10.10.0.0/16"}[want]
		if !strings.Contains(got, want) || strings.Contains(got, other) {
			t.Errorf("ce1 from %s: want %s only:\n%s", nb, want, got)
		}
	}
	if got, _, _ := labtest.TryExec(l, "direct-ce1", "gobgp", "neighbor", "203.0.113.2", "adj-in"); strings.Contains(got, "/") {
		t.Errorf("Microsoft sent routes over Microsoft peering with no route filter attached:\n%s", got)
	}
	if got := labtest.Exec(t, l, "direct-msee1", "gobgp", "neighbor", "203.0.113.1", "adj-in"); !strings.Contains(got, "198.51.100.0/24") {
		t.Errorf("the MSEE did not get the customer's public prefix over Microsoft peering:\n%s", got)
	}
	if checked := verified(t, l); checked != 2 {
		t.Errorf("verify encryption checked %d links, want the two ports", checked)
	}
	// Each circuit's bandwidth holds its S-tag's subinterface, each side's
	// egress (the rate itself is TestIntegrationImpairRate's to measure).
	for _, node := range []string{"direct-ce1", "direct-ce2", "direct-msee1", "direct-msee2"} {
		for dev, rate := range map[string]string{"macsec0.10": "rate 5Gbit", "macsec0.20": "rate 1Gbit"} {
			if got := labtest.Exec(t, l, node, "tc", "qdisc", "show", "dev", dev, "root"); !strings.Contains(got, "qdisc tbf") || !strings.Contains(got, rate) {
				t.Errorf("%s:%s: want its circuit's bandwidth as tbf %s:\n%s", node, dev, rate, got)
			}
		}
	}
	out := labtest.Capture(t, l, "direct-msee1", "eth1", 1, "ether proto 0x88e5", func() {
		labtest.TryExec(l, "hq-host", "ping", "-c1", "-W2", "10.20.0.4")
	})
	if !strings.Contains(out, "MACsec") && !strings.Contains(out, "0x88e5") {
		t.Errorf("no MACsec frame on the primary port:\n%s", out)
	}
	labtest.RunDrills(t, l, top)
}

// TestIntegrationScenarioCircuitL3: the any-to-any circuit from its
// declaration: the provider's PEs, not the customer's routers, peer with
// the MSEEs (the MSEE's neighbour is AS 64500), so the VNet reaches the
// site with AS path 64500 12076 65515; the provider's PE cut off from
// msee1 moves both directions to the secondary, BFD and the provider's
// withdrawal between them.
func TestIntegrationScenarioCircuitL3(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q)
	l, top := deployScenario(t, "er-circuit-l3.yml")
	labtest.WaitPing(t, l, "onprem-host", "10.10.0.4", 10*time.Second)
	nbs, err := bgp.Neighbors(context.Background(), l, "fabrikam-msee1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, nb := range nbs {
		if nb.Address == "192.168.100.129" {
			found = nb.RemoteAS == 64500 && nb.State == "established"
		}
	}
	if !found {
		t.Errorf("msee1 has no established session with the provider's PE (AS 64500) at 192.168.100.129: %+v", nbs)
	}
	routes := labtest.Exec(t, l, "fabrikam-ce1", "gobgp", "global", "rib", "-a", "ipv4", "10.10.0.0/16")
	if !strings.Contains(routes, "64500 12076 65515") {
		t.Errorf("ce1's route to the VNet lacks AS path 64500 12076 65515:\n%s", routes)
	}
	labtest.RunDrills(t, l, top)
}

// TestIntegrationScenarioMicrosoftPeering: Microsoft peering with a route
// filter, from its declaration. The customer's edge gets the prefixes of
// the services the filter lists, with their communities, and not the one
// it leaves out; Microsoft's network gets the customer's public prefix
// with the private AS removed; the public host reaches Exchange Online;
// the drill detaches and attaches the filter.
func TestIntegrationScenarioMicrosoftPeering(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q, bridgevlan.KernelBridgeVLAN)
	l, top := deployScenario(t, "er-microsoft-peering.yml")
	labtest.WaitPing(t, l, "onprem-public", "40.96.0.1", 10*time.Second)
	rib := labtest.Exec(t, l, "contoso-ce1", "gobgp", "neighbor", "203.0.113.2", "adj-in")
	for _, want := range []string{"40.96.0.0/13", "13.107.136.0/22"} {
		if !strings.Contains(rib, want) {
			t.Errorf("ce1 did not get %s over Microsoft peering:\n%s", want, rib)
		}
	}
	if strings.Contains(rib, "52.112.0.0/14") {
		t.Errorf("ce1 got Skype for Business Online's prefix, which the route filter leaves out:\n%s", rib)
	}
	if got := labtest.Exec(t, l, "contoso-ce1", "gobgp", "global", "rib", "-a", "ipv4", "40.96.0.0/13"); !strings.Contains(got, "12076:5010") {
		t.Errorf("Exchange Online's route lacks its community 12076:5010:\n%s", got)
	}
	paths, err := bgp.Routes(context.Background(), l, "microsoft", true)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, p := range paths {
		if p.Prefix.String() == "198.51.100.0/24" {
			seen++
			if fmt.Sprint(p.ASPath) != "[12076]" {
				t.Errorf("Microsoft's network has the customer's prefix with AS path %v; want 12076 alone (private AS removed)", p.ASPath)
			}
		}
	}
	if seen != 2 {
		t.Errorf("Microsoft's network has %d paths to the customer's public prefix; want one from each MSEE", seen)
	}
	if got, _, _ := labtest.TryExec(l, "contoso-ce1", "gobgp", "neighbor", "192.168.100.130", "adj-in"); strings.Contains(got, "40.96.0.0") {
		t.Errorf("Microsoft's services came over private peering:\n%s", got)
	}
	labtest.RunDrills(t, l, top)
}

// TestIntegrationScenarioPrefixLimit: a leak past the Standard SKU's
// 4,000 prefixes drops the MSEE's session with the leaking edge, which
// stays down, naming the prefix limit, until the drill resets it; the
// secondary carries the traffic meanwhile.
func TestIntegrationScenarioPrefixLimit(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q, bridgevlan.KernelBridgeVLAN)
	l, top := deployScenario(t, "er-prefix-limit.yml")
	nb := labtest.Exec(t, l, "contoso-msee1", "gobgp", "neighbor", "192.168.100.129")
	if !strings.Contains(nb, "4000") {
		t.Errorf("msee1's session with ce1 shows no prefix limit of 4000:\n%s", nb)
	}
	labtest.RunDrills(t, l, top)
}

// TestIntegrationScenarioVPNCoexistence: ExpressRoute with a site-to-site
// VPN beside it, from the declaration: the drills pull both of
// ExpressRoute's links (traffic moves into the tunnel, encrypted, and back
// in clear), rekey the tunnel's CHILD and IKE SAs under traffic, and kill
// the site's charon; afterwards inspect shows both IKE ends established.
// Before them, the backup path is in place: the VPN gateway routes the
// site through its tunnel, and the ExpressRoute gateway holds that path.
func TestIntegrationScenarioVPNCoexistence(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q, bridgevlan.KernelBridgeVLAN, ipsec.KernelESP, ipsec.KernelXfrmi)
	l, top := deployScenario(t, "er-vpn-coexistence.yml")
	// Both ends prefer ExpressRoute: the VNet via the primary CE, the site
	// via msee1.
	if via := labtest.RouteVia(t, l, "onprem-core", "10.10.0.4"); via != "100.64.0.2" {
		t.Errorf("the site's router sends to the VNet via %s; want contoso-ce1 (100.64.0.2), over ExpressRoute", via)
	}
	if via := labtest.RouteVia(t, l, "hub-gw", "10.1.0.10"); via != "100.64.0.9" {
		t.Errorf("the ExpressRoute gateway sends to the site via %s; want msee1 (100.64.0.9)", via)
	}
	// The backup waits in the VNet's router: the VPN gateway sends to the
	// site through its tunnel even while ExpressRoute is up, and offers
	// that path to the ExpressRoute gateway, which holds it beside
	// ExpressRoute's.
	if via := labtest.RouteVia(t, l, "hub-vpngw", "10.1.0.10"); via != "169.254.21.1" {
		t.Errorf("the VPN gateway sends to the site via %s; want its tunnel (169.254.21.1)", via)
	}
	if rib := labtest.Exec(t, l, "hub-gw", "gobgp", "global", "rib", "-a", "ipv4", "10.1.0.0/24"); !strings.Contains(rib, "10.10.255.226") {
		t.Errorf("the ExpressRoute gateway holds no path to the site through the VPN gateway (10.10.255.226):\n%s", rib)
	}
	labtest.RunDrills(t, l, top)
	info, err := l.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ikes, _ := info.Features[ike.Name].([]ike.TunnelInfo)
	for _, tu := range ikes {
		if tu.Error != "" || tu.IKEState != "ESTABLISHED" || tu.ChildState != "INSTALLED" {
			b, _ := json.Marshal(tu)
			t.Errorf("%s: tunnel as inspect shows it: %s", tu.Node, b)
		}
	}
	if len(ikes) != 2 {
		t.Errorf("inspect shows %d IKE tunnel ends, want 2", len(ikes))
	}
}

// TestIntegrationScenarioIPsecOverER: IPsec over the circuit's private
// peering, from the declaration: the circuit carries the site's /24 and
// the tunnel's ends but not the more-specifics the tunnel carries, verify
// encryption passes for site ↔ VNet, and the primary link's silent failure
// moves the tunnel to the secondary, encrypted throughout.
func TestIntegrationScenarioIPsecOverER(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q, bridgevlan.KernelBridgeVLAN, ipsec.KernelESP, ipsec.KernelXfrmi)
	l, top := deployScenario(t, "er-ipsec-over-er.yml")
	adj := labtest.Exec(t, l, "contoso-msee1", "gobgp", "neighbor", "192.168.100.129", "adj-in")
	for _, want := range []string{"10.1.0.0/24", "100.64.0.1/32"} {
		if !strings.Contains(adj, want) {
			t.Errorf("msee1 lacks %s from the customer:\n%s", want, adj)
		}
	}
	if strings.Contains(adj, "/25") {
		t.Errorf("the circuit carries the tunnel's more-specifics, which would pull the traffic out of IPsec:\n%s", adj)
	}
	if via := labtest.RouteVia(t, l, "onprem-core", "10.10.0.4"); via != "169.254.21.2" {
		t.Errorf("the site's router sends to the VNet's workload via %s; want the tunnel (169.254.21.2)", via)
	}
	if checked := verified(t, l); checked != 1 {
		t.Errorf("verify encryption checked %d links and tunnels, want the tunnel", checked)
	}
	labtest.RunDrills(t, l, top)
}

// verified runs verify encryption on the lab, fails the test for each
// check that does not pass, and returns how many it checked (the links
// declared plaintext are not).
func verified(t *testing.T, l *lab.Lab) int {
	t.Helper()
	enc, err := l.VerifyEncryption(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range enc {
		if e.Checked {
			checked++
			if !e.Pass {
				t.Errorf("not encrypted: %s: %s", e.Link, e.Reason)
			}
		}
	}
	return checked
}

// TestIntegrationScenarioCircuitWeights: two circuits to two VNets. hub's
// gateway, which weighs chicago 100, sends to the site over chicago though
// the customer prepends there; spoke's, with equal weights, over seattle,
// the shorter AS path; the drill fails chicago's provider and brings it
// back.
func TestIntegrationScenarioCircuitWeights(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q, bridgevlan.KernelBridgeVLAN)
	l, top := deployScenario(t, "er-circuit-weights.yml")
	best := func(node string) bgp.RouteInfo {
		routes, err := bgp.Routes(context.Background(), l, node, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Prefix.String() == "10.1.0.0/24" {
				return r
			}
		}
		t.Fatalf("%s has no route to the site", node)
		return bgp.RouteInfo{}
	}
	// hub-gw's links: eth2/eth3 to seattle's MSEEs, eth4/eth5 to chicago's
	// (100.64.0.25 is chicago-msee1's end).
	if r := best("hub-gw"); r.NextHop.String() != "100.64.0.25" || r.LocalPref != 200 || len(r.ASPath) != 4 {
		t.Errorf("hub-gw's best path to the site: %+v; want chicago-msee1 (100.64.0.25), local preference 200 from weight 100, over AS path 12076 65010 65010 65010", r)
	}
	if r := best("spoke-gw"); fmt.Sprint(r.ASPath) != "[12076 65010]" {
		t.Errorf("spoke-gw's best path to the site: %+v; want seattle's, AS path 12076 65010 (equal weights: the shorter path)", r)
	}
	labtest.RunDrills(t, l, top)
}

// TestIntegrationScenarioGlobalReach: two sites reach each other through
// Microsoft's network: each site's edge has the other's network with AS
// path 12076 and the other's AS, and the drill moves both directions to the
// secondary Global Reach link while seattle's primary is silent.
func TestIntegrationScenarioGlobalReach(t *testing.T) {
	tier.Integration(t)
	tier.RequireFeatures(t, vlan.KernelDot1Q, vlan.KernelDot1ad, bridgevlan.KernelBridgeVLAN)
	l, top := deployScenario(t, "er-global-reach.yml")
	labtest.WaitPing(t, l, "seattle-host", "10.2.0.10", 10*time.Second)
	for node, want := range map[string]string{"sea-ce1": "12076 65020", "dal-ce1": "12076 65010"} {
		other := map[string]string{"sea-ce1": "10.2.0.0/24", "dal-ce1": "10.1.0.0/24"}[node]
		if got := labtest.Exec(t, l, node, "gobgp", "global", "rib", "-a", "ipv4", other); !strings.Contains(got, want) {
			t.Errorf("%s's route to %s lacks AS path %s:\n%s", node, other, want, got)
		}
	}
	labtest.RunDrills(t, l, top)
}
