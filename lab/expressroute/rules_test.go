package expressroute_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/erlab-dev/erlab/lab/labtest"
)

// A declaration that holds, each rule's case below breaks one line of.
const base = `name: r
expressroute:
  sites:
    - { name: east, asn: 65010, network: 10.1.0.0/24 }
    - { name: west, asn: 65020, network: 10.2.0.0/24 }
  ports:
    - { name: d1, site: east, encapsulation: qinq }
    - { name: d2, site: west, encapsulation: dot1q }
  circuits:
    - name: a
      model: direct
      port: d1
      s-tag: 10
      private-peering: { vlan: 100, subnet: 192.168.10.0/29 }
      microsoft-peering: { vlan: 200, subnet: 203.0.113.0/29, advertise: [198.51.100.0/24] }
    - name: b
      model: direct
      port: d1
      s-tag: 20
      private-peering: { vlan: 100, subnet: 192.168.20.0/29 }
    - name: c
      model: direct
      port: d2
      private-peering: { vlan: 300, subnet: 192.168.30.0/29 }
    - name: d
      model: direct
      port: d2
      private-peering: { vlan: 301, subnets: [192.168.40.0/30, 192.168.40.8/30] }
    - name: e
      model: any-to-any
      site: west
      provider-asn: 64600
      bandwidth: 1Gbps
      private-peering: { vlan: 100, subnet: 192.168.50.0/29 }
  vnets:
    - { name: hub, address-space: 10.10.0.0/16, connections: [{ circuit: a }, { circuit: c, weight: 10 }] }
  global-reach:
    - { circuits: [a, c], subnet: 192.168.99.0/29 }
`

// TestRulesBaseHolds: the base declaration loads, and its two QinQ
// circuits reuse C-tag 100 (free across circuits on QinQ).
func TestRulesBaseHolds(t *testing.T) {
	top, err := labtest.ParseFile(t, base, nil)
	if err != nil {
		t.Fatalf("%v", labtest.Problems(err))
	}
	for _, want := range []string{"d1-ce1", "d1-msee2", "d2-ce1", "e-pe1", "e-ce2", "hub-gw", "hub-vm", "east-host", "west-core"} {
		if top.Node(want) == nil {
			t.Errorf("no node %s in the expansion", want)
		}
	}
}

// TestRules: each of Azure's rules refused where it is broken, with the
// line and a message that says why.
func TestRules(t *testing.T) {
	for _, c := range []struct {
		name, from, to string
		want           string // line:col prefix and a part of the message
	}{
		{"s-tag unique on a port pair", "      s-tag: 20\n", "      s-tag: 10\n",
			`lab.yml:19:14: expressroute: circuit "b": s-tag 10 is circuit "a"'s already: an S-tag is unique on a port pair`},
		{"s-tag required on QinQ", "      s-tag: 20\n", "",
			`lab.yml:16:7: expressroute: circuit "b": s-tag: required on a QinQ port pair`},
		{"no s-tag on Dot1Q", "      port: d2\n      private-peering: { vlan: 300", "      port: d2\n      s-tag: 5\n      private-peering: { vlan: 300",
			`lab.yml:24:14: expressroute: circuit "c": s-tag: port pair "d2" is Dot1Q (one tag)`},
		{"C-tag unique per peering within a circuit", "microsoft-peering: { vlan: 200", "microsoft-peering: { vlan: 100",
			`lab.yml:15:34: expressroute: circuit "a": microsoft peering: VLAN 100 is the private peering's too`},
		{"C-tag unique across a Dot1Q port pair", "{ vlan: 301, subnets", "{ vlan: 300, subnets",
			`lab.yml:28:32: expressroute: circuit "d": private peering: VLAN 300 is circuit "c"'s private peering already: on a Dot1Q port pair a C-tag is unique across all circuits and peerings`},
		{"/29 with host bits (customer first)", "subnet: 192.168.10.0/29", "subnet: 192.168.10.1/29",
			`lab.yml:14:45: expressroute: circuit "a": private peering: subnet 192.168.10.1/29 has host bits set; did you mean 192.168.10.0/29? (the customer takes the first usable address of each /30, the MSEE the second)`},
		{"a /30 given as the customer's address", "192.168.40.8/30]", "192.168.40.9/30]",
			`lab.yml:28:64: expressroute: circuit "d": private peering: subnets[1] 192.168.40.9/30 has host bits set: write the /30 as 192.168.40.8/30; the customer takes its first usable address (192.168.40.9), the MSEE the second`},
		{"a peering subnet is a /29", "subnet: 192.168.20.0/29", "subnet: 192.168.20.0/28",
			`lab.yml:20:45: expressroute: circuit "b": private peering: subnet 192.168.20.0/28: a peering's IPv4 peer subnets are one /29`},
		{"12076 is no customer's", "asn: 65010", "asn: 12076",
			`lab.yml:4:26: expressroute: site "east": asn 12076 cannot be a customer's: 12076 is Microsoft's own AS`},
		{"65515 is the gateway's", "asn: 65010", "asn: 65515",
			`lab.yml:4:26: expressroute: site "east": asn 65515 cannot be a customer's: 65515 is the Azure virtual network gateway's AS`},
		{"65517-65520 are reserved", "asn: 65020", "asn: 65519",
			`lab.yml:5:26: expressroute: site "west": asn 65519 cannot be a customer's: 65517 to 65520 are reserved by Azure`},
		{"the provider's AS too", "provider-asn: 64600", "provider-asn: 65518",
			`lab.yml:32:21: expressroute: circuit "e": provider-asn 65518: 65517 to 65520 are reserved by Azure`},
		{"Global Reach /29 overlaps a peering", "subnet: 192.168.99.0/29 }", "subnet: 192.168.30.0/29 }",
			`lab.yml:38:35: expressroute: the Global Reach subnet 192.168.30.0/29 overlaps circuit "c" private peering's primary subnet 192.168.30.0/30 (line 24)`},
		{"Global Reach /29 overlaps a VNet", "subnet: 192.168.99.0/29 }", "subnet: 10.10.8.0/29 }",
			`lab.yml:38:35: expressroute: the Global Reach subnet 10.10.8.0/29 overlaps vnet "hub"'s address space 10.10.0.0/16 (line 36)`},
		{"Global Reach needs a /29", "subnet: 192.168.99.0/29 }", "subnet: 192.168.99.0/30 }",
			`lab.yml:38:35: expressroute: global-reach[0]: subnet 192.168.99.0/30: Global Reach needs an IPv4 /29`},
		{"Microsoft peering is public", "subnet: 203.0.113.0/29", "subnet: 10.20.0.0/29",
			`lab.yml:15:47: expressroute: circuit "a": microsoft peering: subnet 10.20.0.0/30 is private address space: Microsoft peering uses public addresses only`},
		{"Microsoft peering advertises public prefixes", "advertise: [198.51.100.0/24]", "advertise: [172.16.0.0/12]",
			`lab.yml:15:75: expressroute: circuit "a": microsoft peering: advertise[0] 172.16.0.0/12 is private address space`},
		{"primary and secondary on one VLAN", "{ vlan: 301, subnets", "{ vlan: 301, secondary-vlan: 302, subnets",
			`lab.yml:28:53: expressroute: circuit "d": private peering: secondary-vlan 302 differs from vlan 301: a peering's primary and secondary links use the same VLAN ID`},
		{"VLAN IDs 1-4094", "{ vlan: 300, subnet", "{ vlan: 4095, subnet",
			`lab.yml:24:32: expressroute: circuit "c": private peering: vlan 4095 is out of range (1 to 4094)`},
		{"provider bandwidths", "bandwidth: 1Gbps", "bandwidth: 3Gbps",
			`lab.yml:33:18: expressroute: circuit "e": bandwidth "3Gbps": a provider circuit is one of 50Mbps, 100Mbps`},
		{"a VNet over private peering only", "{ circuit: c, weight: 10 }", "{ circuit: c, weight: 10 }, { circuit: x }",
			`lab.yml:36:118: expressroute: vnet "hub": connections[2]: circuit "x" is not declared`},
		{"Direct encapsulation", "encapsulation: dot1q", "encapsulation: 802.1ad",
			`lab.yml:8:46: expressroute: port pair "d2": encapsulation "802.1ad": dot1q (one tag) or qinq (two tags, both 0x8100)`},
		{"MACsec on both ports or neither", "{ name: d2, site: west, encapsulation: dot1q }", "{ name: d2, site: west, encapsulation: dot1q, macsec-secondary: { cipher: GCM-AES-128 } }",
			`lab.yml:8:71: expressroute: port pair "d2": macsec-secondary: without macsec: for the primary port`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(base, c.from, c.to, 1)
			if src == base && c.want != "" {
				t.Fatalf("%q is not in the base declaration", c.from)
			}
			_, err := labtest.ParseFile(t, src, nil)
			got := labtest.Problems(err)
			if c.want == "" {
				if len(got) != 0 {
					t.Fatalf("refused: %v", got)
				}
				return
			}
			for _, p := range got {
				if strings.HasPrefix(p, c.want) {
					return
				}
			}
			t.Errorf("want a problem starting\n  %s\ngot:\n  %s", c.want, strings.Join(got, "\n  "))
		})
	}
}

// TestRuleNodeNameTaken: a node of the file's own that takes a name the
// model makes is refused at the node, naming the declaration.
func TestRuleNodeNameTaken(t *testing.T) {
	src := base + `topology:
  nodes:
    hub-vm: {}
`
	_, err := labtest.ParseFile(t, src, nil)
	got := strings.Join(labtest.Problems(err), "\n")
	if !strings.Contains(got, `lab.yml:41:5: node "hub-vm" is also made by expressroute: at line 36; rename the node`) {
		t.Errorf("got:\n%s", got)
	}
}

// A declaration with Microsoft peering, a route filter and both kinds of
// VPN connection, that holds; the cases below break one line of it each.
const baseVPN = `name: m
expressroute:
  sites:
    - { name: east, asn: 65010, network: 10.1.0.0/24 }
    - { name: west, asn: 65020, network: 10.2.0.0/24 }
  circuits:
    - name: a
      site: east
      model: point-to-point
      private-peering: { vlan: 100, subnet: 192.168.10.0/29 }
      microsoft-peering: { vlan: 200, subnet: 203.0.113.0/29, advertise: [198.51.100.0/24], route-filter: { communities: [exchange-online, "12076:51004"] } }
    - name: b
      site: west
      model: point-to-point
      private-peering: { vlan: 100, subnet: 192.168.20.0/29 }
  vnets:
    - name: hub
      address-space: 10.10.0.0/16
      connections: [{ circuit: a }, { circuit: b }]
      vpn-connections: [{ site: east, psk: { env: S2S_PSK } }, { site: east, over: a, psk: { env: S2S_PSK } }]
`

// TestRulesVPNAndRouteFilter: the base holds and makes a VPN gateway, two
// tunnels and a route filter; each rule of route filters and VPN
// connections is refused where it is broken.
func TestRulesVPNAndRouteFilter(t *testing.T) {
	env := map[string]string{"S2S_PSK": "0123456789abcdef0123456789abcdef"}
	top, err := labtest.ParseFile(t, baseVPN, env)
	if err != nil {
		t.Fatalf("%v", labtest.Problems(err))
	}
	if top.Node("hub-vpngw") == nil || top.Node("microsoft") == nil || top.Node("east-public") == nil {
		t.Errorf("the expansion lacks the VPN gateway, Microsoft's network or the site's public host")
	}
	for _, c := range []struct {
		name, from, to string
		want           string
	}{
		{"route filter on private peering", "private-peering: { vlan: 100, subnet: 192.168.10.0/29 }", "private-peering: { vlan: 100, subnet: 192.168.10.0/29, route-filter: { communities: [exchange-online] } }",
			`lab.yml:10:76: expressroute: circuit "a": private peering: route-filter: is for Microsoft peering`},
		{"route filter with no community", `communities: [exchange-online, "12076:51004"]`, `communities: []`,
			`lab.yml:11:107: expressroute: circuit "a": microsoft peering: route-filter: communities: required`},
		{"route filter with a private peering community", `"12076:51004"`, `"12076:50004"`,
			`lab.yml:11:107: expressroute: circuit "a": microsoft peering: route-filter: "12076:50004" is neither a service`},
		{"route filter with an unknown service", `exchange-online,`, `exchange,`,
			`lab.yml:11:107: expressroute: circuit "a": microsoft peering: route-filter: "exchange" is neither a service`},
		{"tunnel over an undeclared circuit", "over: a,", "over: z,",
			`lab.yml:20:84: expressroute: vnet "hub": vpn-connections[1]: over: circuit "z" is not declared`},
		{"tunnel over another site's circuit", "{ site: east, over: a,", "{ site: west, over: a,",
			`lab.yml:20:84: expressroute: vnet "hub": vpn-connections[1]: over: circuit "a" is site "east"'s, not "west"'s`},
		{"tunnel over a circuit not connected", "connections: [{ circuit: a }, { circuit: b }]", "connections: [{ circuit: b }]",
			`lab.yml:20:84: expressroute: vnet "hub": vpn-connections[1]: over: circuit "a" is not connected to hub`},
		{"a VPN connection without a key", "[{ site: east, psk: { env: S2S_PSK } },", "[{ site: east },",
			`lab.yml:20:25: expressroute: vnet "hub": vpn-connections[0]: psk: required`},
		{"a site connected twice over the internet", "{ site: east, over: a, psk: { env: S2S_PSK } }", "{ site: east, psk: { env: S2S_PSK } }",
			`lab.yml:20:64: expressroute: vnet "hub": vpn-connections[1]: site "east" is connected twice over the internet`},
		{"a VNet too small for two gateways", "address-space: 10.10.0.0/16", "address-space: 10.10.0.0/24",
			`lab.yml:18:22: expressroute: vnet "hub": address-space 10.10.0.0/24: with a VPN gateway, a /23 or shorter`},
		{"ExpressRoute preferred over the VPN", "      site: east\n      model: point-to-point\n", "      site: east\n      local-pref: 40\n      model: point-to-point\n",
			`lab.yml:9:19: expressroute: circuit "a": local-pref 40: site "east" has a VPN connection to hub, whose routes get 50`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(baseVPN, c.from, c.to, 1)
			if src == baseVPN {
				t.Fatalf("%q is not in the base declaration", c.from)
			}
			_, err := labtest.ParseFile(t, src, env)
			got := labtest.Problems(err)
			for _, p := range got {
				if strings.HasPrefix(p, c.want) {
					return
				}
			}
			t.Errorf("want a problem starting\n  %s\ngot:\n  %s", c.want, strings.Join(got, "\n  "))
		})
	}
}

// TestRouteFiltersKey: a plain topology's route filters are checked as the
// model's are, and a drill step naming a circuit without one is refused.
func TestRouteFiltersKey(t *testing.T) {
	src := `name: rf
topology:
  nodes:
    msee:
      kind: router
      interfaces:
        eth1: {addresses: [203.0.113.2/30]}
        eth2: {addresses: [203.0.113.6/30]}
      bgp:
        asn: 12076
        neighbors:
          - {address: 203.0.113.1, remote-as: 65010, export: {match-communities: []}}
          - {address: 203.0.113.5, remote-as: 65010}
    ce: {kind: router}
    ce2: {kind: router}
  links:
    - endpoints: [msee:eth1, ce:eth1]
    - endpoints: [msee:eth2, ce2:eth1]
  route-filters:
    - {circuit: c1, communities: ["12076:5010"], attached: true, sessions: ["msee:203.0.113.1"]}
    - {circuit: c1, communities: ["12076:5020"], sessions: ["msee:203.0.113.1"]}
    - {circuit: c2, communities: ["12076:50004"], sessions: ["msee:203.0.113.5", "msee:203.0.113.9", "ce"]}
    - {communities: ["12076:5010"]}
drills:
  d:
    description: d
    flows: [{from: ce, to: 203.0.113.2}]
    steps:
      - {do: {route-filter-detach: c9}}
    expect:
      - {flow: ce->203.0.113.2, lossless: true}
`
	_, err := labtest.ParseFile(t, src, nil)
	want := []string{
		`lab.yml:21:7: route-filters[1]: circuit "c1" has a route filter already`,
		`lab.yml:22:7: route-filters[2]: community "12076:50004": a Microsoft peering community (12076:5000-5999 for services, 12076:51000-51999 for regions)`,
		`lab.yml:22:7: route-filters[2]: session "msee:203.0.113.5": its export policy matches no communities (export: {match-communities: [...]})`,
		`lab.yml:22:7: route-filters[2]: session "msee:203.0.113.9": no router of the lab has that neighbour (NODE:NEIGHBOUR-ADDRESS)`,
		`lab.yml:22:7: route-filters[2]: session "ce": no router of the lab has that neighbour (NODE:NEIGHBOUR-ADDRESS)`,
		`lab.yml:23:7: route-filters[3]: circuit: required (the drill steps and erlab route-filter name it)`,
		`lab.yml:23:7: route-filters[3]: sessions: required, the MSEE sessions it is on (NODE:NEIGHBOUR)`,
		`lab.yml:29:36: drill "d": step 1: route-filter-detach: circuit "c9" has no route filter; circuits that do: c1`,
	}
	if diff := cmp.Diff(want, labtest.Problems(err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// A dual-stack declaration that holds; the cases below break a line each.
const baseIPv6 = `name: six
expressroute:
  sites:
    - { name: east, asn: 65010, network: 10.1.0.0/24, ipv6-network: "2001:db8:1::/48" }
    - { name: west, asn: 65020, network: 10.2.0.0/24 }
  circuits:
    - name: a
      site: east
      model: point-to-point
      private-peering: { vlan: 100, subnet: 192.168.10.0/29, ipv6-subnet: "2001:db8:100::/125" }
      microsoft-peering: { vlan: 200, subnet: 203.0.113.0/29 }
    - name: b
      site: west
      model: any-to-any
      provider-asn: 64500
      private-peering: { vlan: 100, subnet: 192.168.20.0/29 }
  vnets:
    - { name: hub, address-space: 10.10.0.0/16, ipv6-address-space: "2001:db8:10::/48", connections: [{ circuit: a }, { circuit: b }] }
`

// TestRulesIPv6: IPv6 private peering as Azure takes it: a /125 or two
// /126s without host bits, the customer on each /126's first usable
// address; only where the site has an IPv6 network; 100 prefixes.
func TestRulesIPv6(t *testing.T) {
	top, err := labtest.ParseFile(t, baseIPv6, nil)
	if err != nil {
		t.Fatalf("%v", labtest.Problems(err))
	}
	ce := top.Node("a-ce1").Interface("eth1.100")
	if ce == nil || len(ce.Addresses) != 2 || ce.Addresses[1].String() != "2001:db8:100::1/126" {
		t.Errorf("a-ce1's peering subinterface: %+v; want 2001:db8:100::1/126 beside its IPv4 address", ce)
	}
	for _, c := range []struct {
		name, from, to string
		want           string
	}{
		{"a /125", `ipv6-subnet: "2001:db8:100::/125"`, `ipv6-subnet: "2001:db8:100::/124"`,
			`lab.yml:10:75: expressroute: circuit "a": private peering: ipv6-subnet 2001:db8:100::/124: a peering's IPv6 peer subnets are one /125`},
		{"no host bits", `ipv6-subnet: "2001:db8:100::/125"`, `ipv6-subnet: "2001:db8:100::1/125"`,
			`lab.yml:10:75: expressroute: circuit "a": private peering: ipv6-subnet 2001:db8:100::1/125 has host bits set; did you mean 2001:db8:100::/125?`},
		{"two /126s", `ipv6-subnet: "2001:db8:100::/125"`, `ipv6-subnets: ["2001:db8:100::/126", "2001:db8:100::/125"]`,
			`lab.yml:10:99: expressroute: circuit "a": private peering: ipv6-subnets[1] 2001:db8:100::/125: each of the two IPv6 peer subnets is a /126`},
		{"a site without IPv6", `ipv6-network: "2001:db8:1::/48" }`, `}`,
			`lab.yml:10:75: expressroute: circuit "a": private peering: IPv6 subnets, but site "east" has no ipv6-network`},
		{"Microsoft peering", "microsoft-peering: { vlan: 200, subnet: 203.0.113.0/29 }", `microsoft-peering: { vlan: 200, subnet: 203.0.113.0/29, ipv6-subnet: "2001:db8:200::/125" }`,
			`lab.yml:11:76: expressroute: circuit "a": microsoft peering: IPv6 is modelled on private peering only`},
		{"overlaps the VNet", `ipv6-subnet: "2001:db8:100::/125"`, `ipv6-subnet: "2001:db8:10::/125"`,
			`lab.yml:18:69: expressroute: vnet "hub": ipv6-address-space 2001:db8:10::/48 overlaps circuit "a": private peering's primary IPv6 subnet 2001:db8:10::/126 (line 10)`},
		{"an IPv6 network", `ipv6-network: "2001:db8:1::/48"`, `ipv6-network: "10.9.0.0/16"`,
			`lab.yml:4:69: expressroute: site "east": ipv6-network: 10.9.0.0/16: give an IPv6 prefix`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(baseIPv6, c.from, c.to, 1)
			if src == baseIPv6 {
				t.Fatalf("%q is not in the base declaration", c.from)
			}
			_, err := labtest.ParseFile(t, src, nil)
			got := labtest.Problems(err)
			for _, p := range got {
				if strings.HasPrefix(p, c.want) {
					return
				}
			}
			t.Errorf("want a problem starting\n  %s\ngot:\n  %s", c.want, strings.Join(got, "\n  "))
		})
	}
}
