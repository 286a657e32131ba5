package topo_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/lab/vlan"
)

// TestLoadErrors covers each kind of bad input the loader must refuse, with
// the exact message and position a user sees.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{{
		name: "unknown keys at every level",
		src: `name: x
topology:
  nodez: {}
  nodes:
    a:
      knd: netns
      interfaces:
        eth1: {adresses: [10.0.0.1/24]}
  links:
    - endpoints: ["a:eth1", "a:eth2"]
      mtu2: 1
`,
		want: []string{
			`lab.yml:3:3: unknown key "nodez" (did you mean "nodes"?)`,
			`lab.yml:6:7: node "a": unknown key "knd" (did you mean "kind"?)`,
			`lab.yml:8:16: node "a": interface "eth1": unknown key "adresses" (did you mean "addresses"?)`,
			`lab.yml:11:7: links[0]: unknown key "mtu2" (did you mean "mtu"?)`,
		},
	}, {
		name: "unknown kind, with a suggestion",
		src: `name: x
topology:
  nodes:
    a: {kind: bridg}
    b: {kind: vm}
`,
		want: []string{
			`lab.yml:4:15: node "a": unknown kind "bridg" (did you mean "bridge"? supported: bridge, linux, netns, router)`,
			`lab.yml:5:15: node "b": unknown kind "vm" (supported: bridge, linux, netns, router)`,
		},
	}, {
		name: "duplicate node",
		src: `name: x
topology:
  nodes:
    a: {}
    a: {}
`,
		want: []string{`lab.yml:5:5: nodes: duplicate node "a" (first defined at line 4)`},
	}, {
		name: "link to unknown node and bad endpoints",
		src: `name: x
topology:
  nodes:
    ce1: {}
  links:
    - endpoints: ["ce1:eth1", "ce2:eth1"]
    - endpoints: ["ce1:eth2"]
    - endpoints: ["ce1", "ce1:eth3"]
`,
		want: []string{
			`lab.yml:6:31: links[0]: endpoint "ce2:eth1": no node named "ce2" (did you mean "ce1"?)`,
			`lab.yml:7:18: links[1]: needs exactly two endpoints, such as endpoints: ["ce1:eth1", "pe1:eth1"]; got 1`,
			`lab.yml:8:19: links[2]: endpoint "ce1": expected "node:interface"`,
		},
	}, {
		name: "interface used by two links",
		src: `name: x
topology:
  nodes: {a: {}, b: {}, c: {}}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
    - endpoints: ["a:eth1", "c:eth1"]
`,
		want: []string{`lab.yml:6:19: links[1]: interface a:eth1 is already used by the link at line 5`},
	}, {
		name: "invalid and overlapping addresses",
		src: `name: x
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.0.0.1/24, 10.0.0.300/24, 10.0.0.2, 10.0.0.0/24]}
        eth2: {addresses: [10.0.0.9/25, "2001:db8::1/64"]}
        eth3: {addresses: ["2001:db8::1/64"]}
    b: {}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
    - endpoints: ["a:eth2", "b:eth2"]
    - endpoints: ["a:eth3", "b:eth3"]
`,
		want: []string{
			`lab.yml:6:41: node "a": interface "eth1": addresses[1]: "10.0.0.300/24" is not an address with prefix length such as 192.0.2.1/30`,
			`lab.yml:6:56: node "a": interface "eth1": addresses[2]: address "10.0.0.2" has no prefix length (write it as 10.0.0.2/24, 10.0.0.2/64, ...)`,
			`lab.yml:6:66: node "a": interface "eth1": 10.0.0.0/24 is the network address of its subnet, not a host address`,
			`lab.yml:7:9: node "a": address 10.0.0.9/25 on eth2 overlaps 10.0.0.1/24 on eth1`,
			`lab.yml:8:9: node "a": address 2001:db8::1 is given twice (on eth2 and eth3)`,
		},
	}, {
		name: "bad MTU",
		src: `name: x
topology:
  nodes:
    a:
      interfaces:
        eth1: {mtu: 70000}
        eth2: {mtu: 1000, addresses: ["2001:db8::1/64"]}
        eth3: {mtu: big}
    b: {}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
    - endpoints: ["a:eth2", "b:eth2"]
    - endpoints: ["a:eth3", "b:eth3"]
      mtu: 20
`,
		want: []string{
			`lab.yml:6:21: node "a": interface "eth1": mtu 70000 is out of range (68 to 65535)`,
			`lab.yml:7:39: node "a": interface "eth2": IPv6 needs an mtu of at least 1280, the interface has 1000`,
			`lab.yml:8:21: node "a": interface "eth3": mtu: expected an integer, got "big"`,
			`lab.yml:14:12: links[2]: mtu 20 is out of range (68 to 65535)`,
		},
	}, {
		name: "interface names over 15 bytes",
		src: `name: x
topology:
  nodes:
    a:
      interfaces:
        averyveryverylongname.100: {}
    b: {}
  links:
    - endpoints: ["a:averyveryverylongname", "b:eth1"]
`,
		want: []string{
			`lab.yml:6:9: node "a": interface name "averyveryverylongname.100" is 25 bytes; Linux allows at most 15`,
			`lab.yml:9:19: links[0]: endpoint "a:averyveryverylongname": interface name "averyveryverylongname" is 21 bytes; Linux allows at most 15`,
		},
	}, {
		name: "VLAN rules",
		src: `name: x
topology:
  nodes:
    a:
      interfaces:
        eth1.0: {}
        eth1.5000: {}
        eth9.10: {}
        q1: {parent: eth1, vlan: 10, vlan-protocol: 802.1x}
        eth3: {addresses: [10.0.0.1/24]}
        eth1.7: {}
        private: {parent: eth1, vlan: 7}
        s7: {parent: eth1, vlan: 7, vlan-protocol: 802.1ad}
    b: {}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`,
		want: []string{
			`lab.yml:6:9: node "a": interface "eth1.0": VLAN ID 0 is out of range (1 to 4094; 0 and 4095 are reserved by 802.1Q)`,
			`lab.yml:7:9: node "a": interface "eth1.5000": VLAN ID 5000 is out of range (1 to 4094; 0 and 4095 are reserved by 802.1Q)`,
			`lab.yml:8:9: node "a": interface "eth9.10": parent "eth9" is not an interface of this node`,
			`lab.yml:9:53: node "a": interface "q1": vlan-protocol "802.1x": expected 802.1Q (0x8100) or 802.1ad (0x88A8)`,
			`lab.yml:10:9: node "a": interface "eth3": is on no link; add a link with endpoint "a:eth3", or make it a VLAN subinterface (parent:, vlan:)`,
			`lab.yml:12:9: node "a": interface "private": VLAN 7 (802.1Q) on eth1 is already eth1.7`,
		},
	}, {
		name: "routes",
		src: `name: x
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.0.0.1/24]}
      routes:
        - {dst: 10.1.0.0/16, via: 10.9.0.1}
        - {dst: 10.2.0.1/16, via: 10.0.0.2}
        - {dst: 10.3.0.0/16}
        - {dst: 10.4.0.0/16, via: "2001:db8::1"}
        - {dst: 10.5.0.0/16, dev: eth7}
    b: {}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`,
		want: []string{
			`lab.yml:8:35: node "a": routes[0]: gateway 10.9.0.1 is on no subnet of node "a" (add an address in its subnet, or set onlink: true)`,
			`lab.yml:9:17: node "a": routes[1]: dst 10.2.0.1/16 has host bits set; did you mean 10.2.0.0/16?`,
			`lab.yml:10:11: node "a": routes[2]: needs via: (a gateway) or dev: (an interface)`,
			`lab.yml:11:35: node "a": routes[3]: via 2001:db8::1 and dst 10.4.0.0/16 are of different address families`,
			`lab.yml:12:35: node "a": routes[4]: dev "eth7" is not an interface of node "a"`,
		},
	}, {
		name: "names, sysctls, kinds and bridges",
		src: `name: "my lab"
topology:
  kinds:
    switch: {}
    bridge: {kind: netns}
  nodes:
    a.b: {}
    br:
      kind: bridge
      interfaces:
        eth1: {addresses: [10.0.0.1/24]}
    c:
      image: alpine
      sysctls: {kernel.pid_max: 1}
    d: {kind: linux, cmd: "sh -c 'unbalanced"}
  links:
    - endpoints: ["br:eth1", "c:eth1"]
`,
		want: []string{
			`lab.yml:1:7: name: "my lab" is not a valid lab name (letters, digits, '-' and '_', at most 40, starting with a letter or digit)`,
			`lab.yml:4:5: kinds: unknown kind "switch" (supported: bridge, linux, netns, router)`,
			`lab.yml:5:20: kind "bridge": "kind" cannot be set inside kinds.bridge`,
			`lab.yml:7:5: node "a.b": not a valid node name (letters, digits, '-' and '_', at most 63, starting with a letter or digit)`,
			`lab.yml:11:9: node "br": interface "eth1": a bridge port has no addresses (a bridge node is a layer-2 switch)`,
			`lab.yml:12:5: node "c": image is for container nodes; a netns node is a bare namespace`,
			`lab.yml:14:17: node "c": sysctl "kernel.pid_max": only net.* settings belong to a network namespace`,
			`lab.yml:15:5: node "d": a linux node needs image: (a local Docker image; erlab never pulls one)`,
			`lab.yml:15:5: node "d": cmd: EOF found when expecting closing quote`,
		},
	}, {
		name: "environment variables",
		src: `name: ${LAB}
topology:
  nodes:
    a:
      interfaces:
        eth1: {mtu: "${MTU}"}
    b:
      exec: ["echo ${UNSET}"]
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`,
		want: []string{
			`lab.yml:8:14: node "b": exec[0]: environment variable UNSET is not set (give a default with ${UNSET:=value})`,
		},
	}, {
		name: "not YAML",
		src:  "name: x\ntopology: [\n",
		want: []string{`lab.yml:2:1: not valid YAML: did not find expected node content`},
	}, {
		name: "empty",
		src:  "",
		want: []string{`lab.yml: topology file is empty`},
	}, {
		name: "no name, no nodes",
		src:  "topology: {}\n",
		want: []string{
			`lab.yml: name: required: the lab's name, such as "name: er-lab"`,
			`lab.yml: topology.nodes: a lab needs at least one node`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top, err := labtest.ParseFile(t, tt.src, map[string]string{"LAB": "envlab", "MTU": "9000"})
			if err == nil {
				t.Fatalf("loaded a bad topology: %+v", top)
			}
			if diff := cmp.Diff(tt.want, labtest.Problems(err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := topo.Load(filepath.Join(t.TempDir(), "nope.yml"), lab.Options{}.TopoOptions())
	got := labtest.Problems(err)
	if len(got) != 1 || !strings.HasSuffix(got[0], "nope.yml: topology file not found (give its path with -t FILE)") {
		t.Fatalf("got %q", got)
	}
}

// TestInheritance checks defaults → kinds → node, as containerlab does:
// scalars and lists are taken whole from the nearest level that sets them,
// maps merge key by key.
func TestInheritance(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: inh
topology:
  defaults:
    kind: netns
    forward: false
    sysctls: {net.ipv4.conf.all.rp_filter: "2", net.core.somaxconn: "100"}
    exec: ["echo default"]
  kinds:
    netns:
      forward: true
      sysctls: {net.core.somaxconn: "200"}
  nodes:
    a:
      sysctls: {net.ipv4.tcp_syncookies: 0}
    b:
      forward: false
      exec: ["echo b"]
    c: {kind: bridge}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Kind    string
		Forward bool
		Sysctls []topo.Sysctl
		Exec    []string
	}
	got := map[string]view{}
	for _, n := range top.Nodes {
		got[n.Name] = view{n.Kind, n.Forward, n.Sysctls, n.Exec}
	}
	want := map[string]view{
		"a": {"netns", true, []topo.Sysctl{{Key: "net.ipv4.tcp_syncookies", Value: "0"}, {Key: "net.core.somaxconn", Value: "200"}, {Key: "net.ipv4.conf.all.rp_filter", Value: "2"}}, []string{"echo default"}},
		"b": {"netns", false, []topo.Sysctl{{Key: "net.core.somaxconn", Value: "200"}, {Key: "net.ipv4.conf.all.rp_filter", Value: "2"}}, []string{"echo b"}},
		"c": {"bridge", false, []topo.Sysctl{{Key: "net.ipv4.conf.all.rp_filter", Value: "2"}, {Key: "net.core.somaxconn", Value: "100"}}, []string{"echo default"}},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(topo.Sysctl{}, "Pos")); diff != "" {
		t.Errorf("inherited (-want +got):\n%s", diff)
	}
}

func TestResolvedModel(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: m
topology:
  nodes:
    ce:
      interfaces:
        lo: {addresses: [10.255.0.1/32]}
        eth1: {mtu: 9000, mac: "02:00:00:00:00:01"}
        eth1.100: {addresses: [192.168.100.129/30]}
        s10: {parent: eth1, vlan: 10, vlan-protocol: 802.1ad}
        s10.20: {addresses: ["2001:db8::1/64"]}
      routes:
        - {dst: default, via: 192.168.100.130}
        - {dst: default, via: "fe80::1", dev: eth1.100}
    msee: {}
  links:
    - endpoints: ["ce:eth1", "msee:eth10"]
      mtu: 1500
    - endpoints: ["ce:eth2", "msee:eth2"]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	ce := top.Node("ce")
	var names []string
	for _, i := range ce.Interfaces {
		names = append(names, i.Name)
	}
	if diff := cmp.Diff([]string{"eth1", "eth1.100", "eth2", "lo", "s10", "s10.20"}, names); diff != "" {
		t.Errorf("interface order (-want +got):\n%s", diff)
	}
	eth1 := ce.Interface("eth1")
	if eth1.Type != topo.TypeVeth || eth1.MTU != 9000 || eth1.MAC.String() != "02:00:00:00:00:01" {
		t.Errorf("eth1 = %+v", eth1)
	}
	for name, want := range map[string]struct {
		parent string
		tag    vlan.Tag
	}{
		"eth1.100": {"eth1", vlan.Tag{ID: 100, Protocol: vlan.Dot1Q}},
		"s10":      {"eth1", vlan.Tag{ID: 10, Protocol: vlan.Dot1ad}},
		"s10.20":   {"s10", vlan.Tag{ID: 20, Protocol: vlan.Dot1Q}},
	} {
		i := ce.Interface(name)
		if i.Type != vlan.Type || i.Owner != vlan.Name || i.Parent != want.parent || vlan.Of(i) == nil || *vlan.Of(i) != want.tag {
			t.Errorf("%s = %+v (tag %+v), want on %s with %+v", name, i, vlan.Of(i), want.parent, want.tag)
		}
	}
	if msee := top.Node("msee"); msee.Interface("eth10").MTU != 1500 {
		t.Errorf("link mtu not applied: %+v", msee.Interface("eth10"))
	}
	wantRoutes := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	for i, r := range ce.Routes {
		if r.Dst != wantRoutes[i] {
			t.Errorf("route %d dst %s, want %s", i, r.Dst, wantRoutes[i])
		}
	}
}

// TestShippedTopologies loads every lab in topologies/: each must be valid.
func TestShippedTopologies(t *testing.T) {
	files, _ := filepath.Glob("../../topologies/*.yml")
	if len(files) < 2 {
		t.Fatalf("found %d topologies, want at least 2", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			top, err := topo.Load(labtest.WithKeys(t, f), lab.Options{}.TopoOptions())
			if err != nil {
				t.Fatal(err)
			}
			if len(top.Warnings) > 0 {
				t.Errorf("warnings: %v", top.Warnings)
			}
		})
	}
}

// containerlab's groups: node > group > kind > defaults, the kind too.
func TestGroupInheritance(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: grp
topology:
  defaults:
    labels: {A: defaults, B: defaults, C: defaults, D: defaults}
  kinds:
    linux:
      image: kind-image
      labels: {A: kind, B: kind, C: kind}
  groups:
    edge:
      kind: linux
      labels: {A: group, B: group}
  nodes:
    c1: {group: edge, labels: {A: node}}
    c2: {group: edge, image: own-image}
    c3: {group: label-only}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Kind, Image, Group string
		Labels             map[string]string
	}
	got := map[string]view{}
	for _, n := range top.Nodes {
		got[n.Name] = view{n.Kind, n.Image, n.Group, n.Labels}
	}
	want := map[string]view{
		"c1": {"linux", "kind-image", "edge", map[string]string{"A": "node", "B": "group", "C": "kind", "D": "defaults"}},
		"c2": {"linux", "own-image", "edge", map[string]string{"A": "group", "B": "group", "C": "kind", "D": "defaults"}},
		"c3": {"netns", "", "label-only", map[string]string{"A": "defaults", "B": "defaults", "C": "defaults", "D": "defaults"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inherited (-want +got):\n%s", diff)
	}
}

// containerlab's extended link form: type veth, endpoints as maps with
// their MACs, the link's mtu.
func TestExtendedLinkForm(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: ext
topology:
  nodes:
    a: {}
    b: {}
  links:
    - type: veth
      mtu: 9000
      endpoints:
        - { node: a, interface: eth1, mac: "02:00:00:00:00:0a" }
        - { node: b, interface: eth1 }
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := top.Node("a").Interface("eth1"), top.Node("b").Interface("eth1")
	if len(top.Links) != 1 || a == nil || b == nil || a.MAC.String() != "02:00:00:00:00:0a" || b.MAC != nil || a.MTU != 9000 || b.MTU != 9000 {
		t.Fatalf("links %+v, a:eth1 %+v, b:eth1 %+v", top.Links, a, b)
	}
	for src, want := range map[string]string{
		`{type: host, endpoints: ["a:eth1", "host:veth-a"]}`:                            `links[0]: a type: host link needs endpoint: {node: N, interface: I} and host-interface: NAME`,
		`{type: macvlan, endpoints: ["a:eth1", "host:eth0"]}`:                           `links[0]: type "macvlan": erlab makes veth and host links (type: veth, type: host); mgmt-net, macvlan, vxlan and dummy links are not done yet`,
		`{endpoints: [{node: a, interface: eth1, mac: "01:00:00:00:00:01"}, "b:eth1"]}`: `endpoint a:eth1: mac "01:00:00:00:00:01" is a multicast address`,
		`{endpoints: [{node: a, interface: eth1, vlan: 3}, "b:eth1"]}`:                  `unknown key "vlan" (an endpoint has node, interface and mac)`,
		`{endpoints: [{node: a}, "b:eth1"]}`:                                            `endpoint: give node: and interface:`,
	} {
		_, err := labtest.ParseFile(t, "name: ext\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - "+src+"\n", nil)
		if got := strings.Join(labtest.Problems(err), "\n"); !strings.Contains(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", src, got, want)
		}
	}
	_, err = labtest.ParseFile(t, `name: ext
topology:
  nodes:
    a: {interfaces: {eth1: {mac: "02:00:00:00:00:0b"}}}
    b: {}
  links:
    - endpoints: [{node: a, interface: eth1, mac: "02:00:00:00:00:0a"}, "b:eth1"]
`, nil)
	if got := strings.Join(labtest.Problems(err), "\n"); !strings.Contains(got, `node "a": interface "eth1": mac is given twice: here and on its link's endpoint`) {
		t.Errorf("a MAC given twice: %s", got)
	}
}

func TestContainerlabKeysAccepted(t *testing.T) {
	src, err := os.ReadFile("testdata/containerlab.yml")
	if err != nil {
		t.Fatal(err)
	}
	top, err := labtest.ParseFile(t, string(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Warnings) != 2 {
		t.Errorf("want warnings for prefix and an unused mgmt, got %v", top.Warnings)
	}
	if len(top.Links) != 1 || top.Links[0].A.String() != "srl1:e1-1" {
		t.Errorf("links = %+v", top.Links)
	}
}

// The management network and the container runtime's keys: containerlab's
// defaults, inheritance from kinds, and a located error for each bad value.
func TestContainerRuntimeKeys(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: rt
topology:
  kinds:
    linux: { image: img, memory: 1GB, cpu: 1.5 }
  nodes:
    a: { kind: linux, mgmt-ipv4: 172.20.20.5, ports: ["8080:80"] }
    b: { kind: linux, network-mode: none, memory: 512MB }
    h: {}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := top.Mgmt
	if m == nil || m.MgmtNetwork("rt") != "erlab-rt" || m.IPv4Subnet.String() != "172.20.20.0/24" || m.IPv6Subnet.String() != "3fff:172:20:20::/64" {
		t.Fatalf("mgmt, asked for by a node's mgmt-ipv4: %+v", m)
	}
	a, b, h := top.Node("a"), top.Node("b"), top.Node("h")
	if a.Mgmt != m || b.Mgmt != nil || h.Mgmt != nil || a.Memory != 1<<30 || a.CPU != 1.5 || b.Memory != 512<<20 || a.MgmtIPv4.String() != "172.20.20.5" {
		t.Errorf("a %+v\nb %+v\nh %+v", a, b, h)
	}
	// containerlab's deprecated spellings, and a link's template vars,
	// are read with a warning each.
	top, err = labtest.ParseFile(t, "name: rt\ntopology:\n  nodes:\n    a: {kind: linux, image: i, mgmt_ipv4: 172.20.20.7, cap-add: [cap_sys_time], shm-size: 1G}\n    b: {kind: linux, image: i}\n  links: [{endpoints: [a:eth1, b:eth1], vars: {foo: bar}}]\n", nil)
	if err != nil || len(top.Warnings) != 2 || top.Node("a").MgmtIPv4.String() != "172.20.20.7" || !slices.Equal(top.Node("a").CapAdd, []string{"SYS_TIME"}) || top.Node("a").ShmSize != 1<<30 ||
		!strings.Contains(top.Warnings[0].String(), "mgmt_ipv4 is deprecated, as in containerlab: write mgmt-ipv4") || !strings.Contains(top.Warnings[1].String(), "links[0]: vars: ignored") {
		t.Errorf("deprecated keys and vars: %v %+v", err, top)
	}
	if top, err := labtest.ParseFile(t, "name: rt\ntopology:\n  nodes:\n    a: { kind: linux, image: img }\n", nil); err != nil || top.Mgmt != nil {
		t.Errorf("a lab that asks for no management network has one: %+v %v", top, err)
	}
	for src, want := range map[string]string{
		"mgmt: {ipv4-subnet: 10.0.0.1/24}\n" + nodes("{kind: linux, image: i}"):                                          `lab.yml:2:21: mgmt: ipv4-subnet: 10.0.0.1/24 has host bits set (the network is 10.0.0.0/24)`,
		"mgmt: {ipv6-subnet: 10.0.0.0/24}\n" + nodes("{kind: linux, image: i}"):                                          `mgmt: ipv6-subnet: 10.0.0.0/24 is not an IPv6 prefix`,
		"mgmt: {ipv4-gw: 10.9.9.1}\n" + nodes("{kind: linux, image: i}"):                                                 `mgmt: ipv4-gw: 10.9.9.1 is not in ipv4-subnet 172.20.20.0/24`,
		"mgmt: {ipv4-range: 10.9.9.0/28}\n" + nodes("{kind: linux, image: i}"):                                           `mgmt: ipv4-range: 10.9.9.0/28 is not inside ipv4-subnet 172.20.20.0/24`,
		"mgmt: {ipv4-subnet: auto}\n" + nodes("{kind: linux, image: i, mgmt-ipv4: 10.0.0.2}"):                            `management address 10.0.0.2 needs the mgmt: subnet of its family (it is auto)`,
		nodes("{kind: linux, image: i, mgmt-ipv4: 10.0.0.2}"):                                                            `lab.yml:4:43: node "a": management address 10.0.0.2 is not in the management subnet 172.20.20.0/24`,
		nodes("{kind: linux, image: i, mgmt-ipv4: 172.20.20.1}"):                                                         `management address 172.20.20.1 is the management network's gateway`,
		nodes("{kind: linux, image: i, mgmt-ipv4: 172.20.20.0/24}"):                                                      `node "a": mgmt-ipv4: "172.20.20.0/24" is not an IPv4 address (no prefix length`,
		nodes("{kind: linux, image: i, mgmt-ipv6: 172.20.20.9}"):                                                         `mgmt-ipv6: "172.20.20.9" is not an IPv6 address`,
		nodes("{kind: linux, image: i, network-mode: host}"):                                                             `node "a": network-mode: "host" is not done: erlab gives each node a network namespace of its own`,
		nodes("{kind: linux, image: i, network-mode: container:b}"):                                                      `network-mode: "container:b" is not done`,
		nodes("{kind: linux, image: i, network-mode: bridged}"):                                                          `network-mode: "bridged" is not a mode erlab knows`,
		nodes("{kind: linux, image: i, network-mode: none, ports: [80]}"):                                                `network-mode none leaves it no management network, yet it has mgmt-ipv4, mgmt-ipv6 or ports`,
		nodes("{kind: linux, image: i, memory: lots}"):                                                                   `node "a": memory: "lots" is not a size such as 512MB or 1GB`,
		nodes("{kind: linux, image: i, cpu: 0}"):                                                                         `node "a": cpu: 0 is not a number of CPUs`,
		nodes("{kind: linux, image: i, dns: {servers: [ns1]}}"):                                                          `node "a": dns: servers: "ns1" is not an IP address`,
		nodes("{kind: linux, image: i, healthcheck: {test: [ls]}}"):                                                      `healthcheck: test: give [CMD, ARG...], [CMD-SHELL, COMMAND] or [NONE]`,
		nodes("{kind: linux, image: i, stages: {create: {wait-for: [{node: b}]}}}"):                                      `node "a": stages: not done: erlab starts a lab's nodes together`,
		"  defaults: {stages: {}}\n" + nodes("{}")[len("topology:\n"):]:                                                  `stages: not done`,
		nodes("{kind: linux, image: i, ports: [\"80:80:80:80\"]}"):                                                       `node "a": ports: "80:80:80:80"`,
		nodes("{kind: linux, image: i, mgmt-ipv4: 172.20.20.9}\n    b: {kind: linux, image: i, mgmt-ipv4: 172.20.20.9}"): `node "b": management address 172.20.20.9 is node "a"'s too`,
		nodes("{kind: linux, image: i, mgmt-ipv4: 172.20.20.9}\n    b: {}\n  links: [{endpoints: [a:eth0, b:eth0]}]"):    `node "a": eth0 is its management interface`,
		nodes("{memory: 1GB, mgmt-ipv4: 172.20.20.9}"):                                                                   `node "a": memory is for container nodes`,
		nodes("{kind: linux, image: i, mgmt_ipv4: 172.20.20.9, mgmt-ipv4: 172.20.20.9}"):                                 `node "a": mgmt_ipv4 and mgmt-ipv4 are one key (the first is its deprecated spelling): give mgmt-ipv4 only`,
		nodes("{kind: linux, image: i, cap-add: [NET ADMIN]}"):                                                           `node "a": cap-add: "NET ADMIN" is not a capability name`,
		nodes("{kind: linux, image: i, shm-size: big}"):                                                                  `node "a": shm-size: "big" is not a size`,
		nodes("{cap-add: [SYS_TIME]}"):                                                                                   `node "a": cap-add is for container nodes`,
		"mgmt: {external-access: true, ipv4-subnet: 10.1.0.0/16}\n" + nodes("{kind: linux, image: i}"):                   "",
	} {
		if strings.HasPrefix(src, "  defaults") {
			src = "topology:\n" + src
		}
		top, err := labtest.ParseFile(t, "name: rt\n"+src+"\n", nil)
		got := strings.Join(labtest.Problems(err), "\n")
		if want == "" {
			if err != nil || len(top.Warnings) != 1 || !strings.Contains(top.Warnings[0].String(), "external-access: ignored") {
				t.Errorf("%s: %v, warnings %v", src, err, top)
			}
			continue
		}
		if !strings.Contains(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", src, got, want)
		}
	}
}

func nodes(a string) string { return "topology:\n  nodes:\n    a: " + a }

// containerlab's host links, brief and extended: the node's end is an
// interface like a link end's, the host's end a name checked once.
func TestHostLinks(t *testing.T) {
	top, err := labtest.ParseFile(t, `name: hl
topology:
  nodes:
    a: { interfaces: { eth1: { addresses: [10.0.0.1/24] } } }
    b: {}
  links:
    - endpoints: ["a:eth1", "host:hl-a1"]
    - type: host
      mtu: 9000
      endpoint: { node: b, interface: eth2, mac: "02:00:00:00:00:0b" }
      host-interface: hl-b2
    - endpoints: ["a:eth3", "b:eth3"]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Links) != 1 || len(top.HostLinks) != 2 {
		t.Fatalf("links %v, host links %v", top.Links, top.HostLinks)
	}
	a1, b2 := top.Node("a").Interface("eth1"), top.Node("b").Interface("eth2")
	if a1 == nil || a1.Type != topo.TypeHostVeth || a1.HostIface != "hl-a1" || len(a1.Addresses) != 1 ||
		b2 == nil || b2.HostIface != "hl-b2" || b2.MTU != 9000 || b2.MAC.String() != "02:00:00:00:00:0b" {
		t.Errorf("a:eth1 %+v\nb:eth2 %+v", a1, b2)
	}
	// A lab with a node named host: its endpoints name that node.
	top, err = labtest.ParseFile(t, "name: hl\ntopology:\n  nodes: {a: {}, host: {}}\n  links: [{endpoints: [a:eth1, host:eth1]}]\n", nil)
	if err != nil || len(top.Links) != 1 || len(top.HostLinks) != 0 {
		t.Errorf("the node named host: %v %+v", err, top)
	}
	for src, want := range map[string]string{
		`{endpoints: ["host:x1", "host:x2"]}`:                                                                     `links[0]: both ends are the host's`,
		`{endpoints: ["a:eth1", "host:this-name-is-too-long"]}`:                                                   `links[0]: host interface "this-name-is-too-long":`,
		`{endpoints: ["a:eth1", {node: host, interface: h1, mac: "02:00:00:00:00:01"}]}`:                          `the host's end takes no mac`,
		`{type: host, endpoint: {node: a, interface: eth1}, host-interface: h1, endpoints: ["a:eth2", "b:eth2"]}`: `a type: host link has endpoint: and host-interface:, not endpoints:`,
		`{endpoint: {node: a, interface: eth1}, host-interface: h1}`:                                              `endpoint: and host-interface: are for type: host links`,
		`{type: host, endpoint: {node: c, interface: eth1}, host-interface: h1}`:                                  `no node named "c"`,
		`{endpoints: ["a:eth1", "host:h1"], impair: {delay: 5ms}}`:                                                `links[0]: a host link takes none of the features' link keys (impair)`,
	} {
		_, err := labtest.ParseFile(t, "name: hl\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - "+src+"\n", nil)
		if got := strings.Join(labtest.Problems(err), "\n"); !strings.Contains(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", src, got, want)
		}
	}
	_, err = labtest.ParseFile(t, "name: hl\ntopology:\n  nodes: {a: {}, h: {kind: host}}\n", nil)
	if got := strings.Join(labtest.Problems(err), "\n"); !strings.Contains(got, `node "h": unknown kind "host" (erlab runs every node in a namespace of its own; to wire a node to the host's namespace, give it a host link`) {
		t.Errorf("kind host: %s", got)
	}
	_, err = labtest.ParseFile(t, "name: hl\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [a:eth1, host:h1]\n    - endpoints: [b:eth1, host:h1]\n", nil)
	if got := strings.Join(labtest.Problems(err), "\n"); !strings.Contains(got, `links[1]: host interface h1 is already the end of the host link at line 5`) {
		t.Errorf("a host interface twice: %s", got)
	}
}

// A bind's relative source is the topology file's neighbour, made
// absolute even when the file was named by a relative path (Docker reads
// a relative source as a volume's name).
func TestBindsAbsolute(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "lab.yml"), []byte("name: b\ntopology:\n  nodes:\n    c: {kind: linux, image: i, binds: [\"conf/x.conf:/etc/x.conf:ro\", \"/abs:/abs\"]}\n"), 0o644)
	t.Chdir(dir)
	top, err := topo.Load("lab.yml", lab.Options{}.TopoOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "conf/x.conf") + ":/etc/x.conf:ro", "/abs:/abs"}
	if got := top.Node("c").Binds; !slices.Equal(got, want) {
		t.Errorf("binds %q, want %q", got, want)
	}
}
