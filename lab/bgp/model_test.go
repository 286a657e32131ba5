package bgp_test

import (
	"net/netip"
	"testing"

	"github.com/erlab-dev/erlab/lab/bgp"

	"github.com/erlab-dev/erlab/lab/labtest"

	"github.com/google/go-cmp/cmp"
)

func TestBGPResolved(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: b
topology:
  nodes:
    ce:
      kind: router
      interfaces:
        eth1: {addresses: [192.168.100.129/30, "2001:db8::1/126"]}
        lo: {addresses: [10.255.0.9/32, 10.255.0.1/32]}
      bgp:
        asn: 65010
        networks: [10.1.0.0/24, {prefix: 198.51.100.0/24, communities: ["65010:1"]}]
        neighbors:
          - {interface: eth1, remote-as: 12076, bfd: {}}
          - {address: "2001:db8::2", remote-as: 12076, hold-time: 9, import: {prefixes: [{prefix: 10.0.0.0/8, le: 24}], local-pref: 150}}
    msee: {kind: router}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := bgp.Of(top.Node("ce"))
	if b.ASN != 65010 || b.RouterID != netip.MustParseAddr("10.255.0.9") || !top.Node("ce").Forward {
		t.Errorf("global: asn %d, router-id %s (want the highest loopback), forward %v", b.ASN, b.RouterID, top.Node("ce").Forward)
	}
	site := netip.MustParsePrefix("198.51.100.0/24")
	if diff := cmp.Diff([]netip.Prefix{netip.MustParsePrefix("10.1.0.0/24"), site}, b.Networks, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" || len(b.Tags) != 1 || b.Tags[site][0] != "65010:1" {
		t.Errorf("networks (-want +got):\n%s; tags %v", diff, b.Tags)
	}
	n0, n1 := b.Neighbors[0], b.Neighbors[1]
	if n0.Address != netip.MustParseAddr("192.168.100.130") || n0.Interface != "eth1" || n0.HoldTime != 180 || n0.Keepalive != 60 {
		t.Errorf("neighbour from interface: %+v (want the MSEE's address, ExpressRoute's 60/180 s timers)", n0)
	}
	if diff := cmp.Diff(&struct{ MinTx, MinRx, Multiplier int }{300, 300, 3}, &struct{ MinTx, MinRx, Multiplier int }{n0.BFD.MinTx, n0.BFD.MinRx, n0.BFD.Multiplier}); diff != "" {
		t.Errorf("BFD defaults (-want +got):\n%s", diff)
	}
	if n1.HoldTime != 9 || n1.Keepalive != 3 || n1.Import.Prefixes[0].LE != 24 || *n1.Import.LocalPref != 150 {
		t.Errorf("second neighbour: %+v", n1)
	}
}

func TestBGPErrors(t *testing.T) {
	_, err := labtest.ParseFile(t, `name: b
topology:
  nodes:
    ce:
      kind: router
      interfaces:
        eth1: {addresses: [192.168.100.130/30]}
        eth2: {addresses: [10.0.0.1/24]}
      bgp:
        asn: 65010
        neighbors:
          - {address: 10.9.9.9, remote-as: 1}
          - {address: 192.168.100.129, remote-as: 12076, hold-time: 2}
          - {interface: eth2, remote-as: 1}
          - {address: 10.0.0.2, remote-as: 1, multihop: 2, bfd: {}}
          - {address: 10.0.0.3, remote-as: 1, import: {next-hop-self: true, communities: ["x"], prefixes: [{prefix: 10.0.0.0/8, ge: 4}]}}
          - {address: 10.0.0.4, remote-as: 65010, remove-private-as: true, export: {match-communities: ["12076:5010", "12076"]}}
        networks: [10.1.0.1/24, {prefix: 10.2.0.0/24, communities: ["12076:70000"]}, {communities: ["1:1"]}]
    n:
      bgp: {asn: 1}
  links:
    - endpoints: ["ce:eth1", "n:eth1"]
    - endpoints: ["ce:eth2", "n:eth2"]
`, nil)
	want := []string{
		`lab.yml:12:13: node "ce": bgp: neighbors[0]: 10.9.9.9 is on no subnet of node "ce"; a neighbour further away needs multihop: TTL`,
		`lab.yml:13:69: node "ce": bgp: neighbors[1]: hold-time 2: 0, or 3 to 65535 seconds`,
		`lab.yml:14:13: node "ce": bgp: neighbors[2]: interface "eth2" has no /30, /31, /126 or /127 address to take the neighbour's from; give address:`,
		`lab.yml:15:65: node "ce": bgp: neighbors[3]: bfd: erlab's BFD is single-hop (RFC 5881); this neighbour is multihop`,
		`lab.yml:16:55: node "ce": bgp: neighbors[4]: import: next-hop-self applies to routes sent (export), not received`,
		`lab.yml:16:55: node "ce": bgp: neighbors[4]: import: community "x" is not ASN:VALUE (each 0-65535), such as 12076:50004`,
		`lab.yml:16:108: node "ce": bgp: neighbors[4]: import: prefixes[0]: ge/le must satisfy 8 <= ge <= le <= 32`,
		`lab.yml:17:13: node "ce": bgp: neighbors[5]: remove-private-as acts on what is sent to an external neighbour; 10.0.0.4 is internal (AS 65010)`,
		`lab.yml:17:84: node "ce": bgp: neighbors[5]: export: match-communities: community "12076" is not ASN:VALUE (each 0-65535), such as 12076:50004`,
		`lab.yml:18:20: node "ce": bgp: network 10.1.0.1/24 has host bits set; did you mean 10.1.0.0/24?`,
		`lab.yml:18:33: node "ce": bgp: network 10.2.0.0/24: community "12076:70000" is not ASN:VALUE (each 0-65535), such as 12076:50004`,
		`lab.yml:18:86: node "ce": bgp: networks: a prefix, or {prefix: P, communities: [...]}`,
		`lab.yml:20:12: node "n": bgp: router-id: required, as the node has no IPv4 address to take it from`,
	}
	if diff := cmp.Diff(want, labtest.Problems(err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestPeeringAddressWarning(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: b
topology:
  nodes:
    ce:
      kind: router
      interfaces:
        eth1: {addresses: [192.168.100.130/30]}
      bgp: {asn: 65010, neighbors: [{interface: eth1, remote-as: 12076}]}
    msee: {kind: router}
    msee2:
      kind: router
      interfaces:
        eth1: {addresses: [192.168.99.2/30]}
      bgp: {asn: 12076, neighbors: [{interface: eth1, remote-as: 12076}]}   # Global Reach: two MSEEs, no rule
    msee3: {kind: router}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
    - endpoints: ["msee2:eth1", "msee3:eth1"]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`lab.yml:8:37: node "ce": bgp: neighbors[0]: on an ExpressRoute peering's /30 the customer edge takes the first usable address (192.168.100.129) and the MSEE the second`}
	var got []string
	for _, w := range top.Warnings {
		got = append(got, w.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestPassiveRule: of two erlab routers peering with each other, neither
// saying passive:, exactly one — the higher address — waits; a side that
// says passive: (either way) keeps it and leaves the other alone; a peer
// that is no erlab router (an FRR, outside the lab) changes nothing.
func TestPassiveRule(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: p
topology:
  nodes:
    a:
      kind: router
      interfaces: {eth1: {addresses: [10.0.0.1/30]}, eth2: {addresses: [10.0.1.1/30]}, eth3: {addresses: [10.0.2.1/30]}}
      bgp:
        asn: 65001
        neighbors:
          - {address: 10.0.0.2, remote-as: 65002}
          - {address: 10.0.1.2, remote-as: 65003, passive: false}
          - {address: 10.0.2.2, remote-as: 65004}
    b:
      kind: router
      interfaces: {eth1: {addresses: [10.0.0.2/30]}}
      bgp: {asn: 65002, neighbors: [{interface: eth1, remote-as: 65001}]}
    c:
      kind: router
      interfaces: {eth1: {addresses: [10.0.1.2/30]}}
      bgp: {asn: 65003, neighbors: [{address: 10.0.1.1, remote-as: 65001}]}
    frr: {interfaces: {eth1: {addresses: [10.0.2.2/30]}}}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
    - endpoints: ["a:eth2", "c:eth1"]
    - endpoints: ["a:eth3", "frr:eth1"]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	passive := map[string]bool{}
	for _, n := range top.Nodes {
		if c := bgp.Of(n); c != nil {
			for _, nb := range c.Neighbors {
				passive[n.Name+"→"+nb.Address.String()] = nb.Passive
			}
		}
	}
	want := map[string]bool{
		"a→10.0.0.2": false, "b→10.0.0.1": true, // a pair: the higher address (b's) waits
		"a→10.0.1.2": false, "c→10.0.1.1": false, // a said passive: false: left as written
		"a→10.0.2.2": false, // no erlab router there
	}
	if diff := cmp.Diff(want, passive); diff != "" {
		t.Errorf("passive (-want +got):\n%s", diff)
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		p      string
		length int
		n      int
		first  string
		last   string
	}{
		{"10.1.0.0/16", 28, 4096, "10.1.0.0/28", "10.1.255.240/28"},
		{"10.1.0.0/24", 24, 1, "10.1.0.0/24", "10.1.0.0/24"},
		{"10.0.0.0/15", 16, 2, "10.0.0.0/16", "10.1.0.0/16"},
		{"2001:db8::/48", 64, 65536, "2001:db8::/64", "2001:db8:0:ffff::/64"},
	} {
		got := bgp.Split(netip.MustParsePrefix(tc.p), tc.length)
		if len(got) != tc.n || got[0].String() != tc.first || got[len(got)-1].String() != tc.last {
			t.Errorf("Split(%s, %d): %d prefixes, %s ... %s; want %d, %s ... %s", tc.p, tc.length, len(got), got[0], got[len(got)-1], tc.n, tc.first, tc.last)
		}
	}
}

// TestAnnounceSteps: a bgp-announce step names a router and a range whose
// split stays within 65,536 prefixes; each mistake is refused where it is.
func TestAnnounceSteps(t *testing.T) {
	_, err := labtest.ParseFile(t, `name: a
topology:
  nodes:
    r:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
      bgp: {asn: 65010, neighbors: [{address: 10.0.0.2, remote-as: 65020}]}
    h:
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
  links:
    - endpoints: [r:eth1, h:eth1]
drills:
  d:
    description: d
    flows: [{from: h, to: 10.0.0.1}]
    steps:
      - {do: {bgp-announce: {node: r, prefix: 10.1.0.0/16, length: 28}}}
      - {do: {bgp-announce: {node: r, prefix: 10.0.0.0/8, length: 28}}}
      - {do: {bgp-announce: {node: h, prefix: 10.1.0.0/16}}}
      - {do: {bgp-announce: {node: x, prefix: 10.1.0.0/16}}}
      - {do: {bgp-withdraw: {node: r, prefix: 10.1.0.1/16}}}
      - {do: {bgp-withdraw: {node: r}}}
    expect:
      - {flow: h->10.0.0.1, lossless: true}
`, nil)
	want := []string{
		`lab.yml:20:29: drill "d": step 2: bgp-announce: length 28: from 8 (the prefix itself) to 24, at most 65536 prefixes`,
		`lab.yml:21:29: drill "d": step 3: bgp-announce: node h runs no BGP (it has no bgp: block)`,
		`lab.yml:22:29: drill "d": step 4: bgp-announce: lab a has no router "x" (did you mean "r"?); it has: r`,
		`lab.yml:23:47: drill "d": step 5: bgp-withdraw: prefix 10.1.0.1/16 has host bits set; did you mean 10.1.0.0/16?`,
		`lab.yml:24:29: drill "d": step 6: bgp-withdraw: prefix: required, the range to announce split`,
	}
	if diff := cmp.Diff(want, labtest.Problems(err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
