package expressroute_test

import (
	"strings"
	"testing"

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
