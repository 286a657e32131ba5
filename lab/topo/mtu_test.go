package topo_test

import (
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/google/go-cmp/cmp"
)

// QinQ above MACsec: the tags are MACsec payload, so a 1500-byte top
// interface needs 1508 on the MACsec device and 1540 on the port (the
// figures measured in the microVM). On a plain port, Linux keeps the tags
// outside the MTU and nothing is raised.
func TestMTUPlan(t *testing.T) {
	t.Setenv("ERLAB_TEST_KEY", strings.Repeat("cd", 16))
	top, err := labtest.LoadText(t, t.TempDir(), `name: m
topology:
  nodes:
    ce:
      interfaces:
        macsec0.10: {vlan-protocol: 802.1ad}
        macsec0.10.100: {mtu: 1500, addresses: [10.0.0.1/30]}
        macsec0.200: {mtu: 1400}
        eth2.10: {vlan-protocol: 802.1ad}
        eth2.10.100: {mtu: 1500}
    msee: {}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec: {keys: {a: {env: ERLAB_TEST_KEY}, b: {env: ERLAB_TEST_KEY}}}
    - endpoints: ["ce:eth2", "msee:eth2"]
`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, i := range top.Node("ce").Interfaces {
		got[i.Name] = i.MTU
	}
	want := map[string]int{"eth1": 1540, "macsec0": 1508, "macsec0.10": 1504, "macsec0.10.100": 1500, "macsec0.200": 1400,
		"eth2": 1500, "eth2.10": 1500, "eth2.10.100": 1500}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("planned MTUs (-want +got):\n%s", diff)
	}

	dir := t.TempDir()
	_, err = labtest.LoadText(t, dir, `name: m
topology:
  nodes:
    ce:
      interfaces:
        eth1: {mtu: 1536}
        macsec0.10: {vlan-protocol: 802.1ad}
        macsec0.10.100: {mtu: 1500}
        eth2: {mtu: 1400}
        eth2.100: {mtu: 1500}
        ms3.100: {mtu: 65535}
    msee: {}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec: {keys: {a: {env: ERLAB_TEST_KEY}, b: {env: ERLAB_TEST_KEY}}}
    - endpoints: ["ce:eth2", "msee:eth2"]
    - endpoints: ["ce:eth3", "msee:eth3"]
      macsec: {device: ms3, keys: {a: {env: ERLAB_TEST_KEY}, b: {env: ERLAB_TEST_KEY}}}
`)
	var probs []string
	for _, p := range labtest.Problems(err) {
		probs = append(probs, strings.TrimPrefix(p, dir+"/"))
	}
	wantProbs := []string{
		`lab.yml:6:9: node "ce": interface "eth1": mtu 1536 is too small: carrying macsec0's 1508 bytes and its 32 bytes of SecTAG and ICV needs 1540`,
		`lab.yml:9:9: node "ce": interface "eth2": mtu 1400 is too small: carrying eth2.100's 1500 bytes needs 1500`,
		`lab.yml:17:19: node "ce": interface "ms3": carrying ms3.100's 65535 bytes and its 4 bytes of 802.1Q tag needs an mtu of 65539, more than 65535`,
	}
	if diff := cmp.Diff(wantProbs, probs); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// The seeds' rules for circuits: one VLAN per peering per circuit (a
// circuit is what a Dot1Q port or a QinQ S-tag carries); on a QinQ port
// C-tags repeat across circuits.
func TestPeeringVLANs(t *testing.T) {
	dir := t.TempDir()
	_, err := labtest.LoadText(t, dir, `name: m
topology:
  nodes:
    msee:
      interfaces:
        eth1.100: {peering: private}
        eth1.101: {peering: private}
        eth1.200: {peering: microsoft}
        eth2.10: {vlan-protocol: 802.1ad}
        eth2.10.100: {peering: private}
        eth2.20: {vlan-protocol: 802.1ad}
        eth2.20.100: {peering: private}
        eth2.20.300: {peering: public}
        eth2: {peering: private}
    ce: {}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
    - endpoints: ["ce:eth2", "msee:eth2"]
`)
	var got []string
	for _, p := range labtest.Problems(err) {
		got = append(got, strings.TrimPrefix(p, dir+"/"))
	}
	want := []string{
		`lab.yml:7:9: node "msee": interface "eth1.101": the circuit on eth1 already has its private peering on VLAN 100 (eth1.100); one VLAN per peering per circuit`,
		`lab.yml:13:32: node "msee": interface "eth2.20.300": peering "public": private or microsoft`,
		`lab.yml:14:25: node "msee": interface "eth2": peering: only a VLAN subinterface carries a peering`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
