package topo_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

func TestMACsecLink(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.key"), []byte(strings.Repeat("ab", 16)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "open.key"), []byte(strings.Repeat("ab", 16)), 0o644)
	t.Setenv("ERLAB_TEST_KEY", strings.Repeat("cd", 16))
	write := func(src string) string {
		p := filepath.Join(dir, "lab.yml")
		os.WriteFile(p, []byte(src), 0o644)
		return p
	}
	top, err := topo.Load(write(`name: m
topology:
  nodes:
    ce:
      interfaces:
        macsec0: {mtu: 1500}
        macsec0.100: {addresses: [10.0.0.1/30]}
    msee: {}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec: {keys: {a: {file: a.key}, b: {env: ERLAB_TEST_KEY}}}
`), topo.Options{Kinds: nodes.Builtin()})
	if err != nil {
		t.Fatal(err)
	}
	m := top.Links[0].MACsec
	if m.Cipher != "GCM-AES-128" || m.Device != "macsec0" || !m.Encrypt || !m.IncludeSCI || m.Validate != "strict" || len(m.KeyA) != 16 || m.KeyB[0] != 0xcd {
		t.Errorf("defaults: %+v", m)
	}
	ce := top.Node("ce")
	if i := ce.Interface("macsec0"); i.Type != topo.TypeMACsec || i.Parent != "eth1" {
		t.Errorf("macsec0 = %+v", i)
	}
	if i := ce.Interface("macsec0.100"); i.Type != topo.TypeVLAN || i.Parent != "macsec0" {
		t.Errorf("macsec0.100 = %+v", i)
	}
	// MTU planning: 1500 on top needs 1532 below (SecTAG with SCI + ICV).
	if eth1 := ce.Interface("eth1"); eth1.MTU != 1532 || eth1.MAC == nil || eth1.MAC[0]&2 == 0 {
		t.Errorf("eth1: mtu %d mac %s", eth1.MTU, eth1.MAC)
	}

	_, err = topo.Load(write(`name: m
topology:
  nodes:
    ce:
      interfaces:
        eth1: {mtu: 1500}
        macsec0: {mtu: 1500}
    msee: {}
    pe: {}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec: {cipher: GCM-AES-XPN-256, keys: {a: {file: a.key}, b: {hex: "00"}}}
    - endpoints: ["ce:eth2", "msee:eth2"]
      macsec: {cipher: AES-CMAC}
    - endpoints: ["ce:eth3", "pe:eth3"]
      macsec: {device: ms3, keys: {a: {file: open.key}, b: {env: NOT_SET_ANYWHERE}}}
    - endpoints: ["ce:eth4", "pe:eth4"]
      macsec: {device: ms4, keys: {a: {file: a.key, env: ERLAB_TEST_KEY}, b: {env: ERLAB_TEST_KEY}}}
    - endpoints: ["msee:eth5", "pe:eth5"]
      macsec: {keys: {a: {file: a.key}, b: {env: ERLAB_TEST_KEY}}}
    - endpoints: ["msee:eth6", "pe:eth6"]
      macsec: {keys: {a: {file: a.key}, b: {env: ERLAB_TEST_KEY}}}
`), topo.Options{Kinds: nodes.Builtin()})
	var got []string
	for _, p := range problems(err) {
		got = append(got, p[strings.Index(p, "lab.yml"):])
	}
	want := []string{
		`lab.yml:7:9: node "ce": interface "macsec0": mtu 1500 over MACsec needs 1532 on eth1 (32 bytes of SecTAG and ICV), which has mtu 1500`,
		`lab.yml:12:51: links[0]: macsec: keys: a: the key in file a.key must be 64 hex digits for this cipher`,
		`lab.yml:12:69: links[0]: macsec: keys: b: the key in hex must be 64 hex digits for this cipher`,
		`lab.yml:14:15: links[1]: macsec: cipher "AES-CMAC": one of GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256`,
		`lab.yml:16:39: links[2]: macsec: keys: a: key file open.key is readable by others (mode 0644); chmod 600 it`,
		`lab.yml:16:60: links[2]: macsec: keys: b: environment variable NOT_SET_ANYWHERE is not set`,
		`lab.yml:18:39: links[3]: macsec: keys: a: give exactly one of file:, env: or hex:`,
		`lab.yml:19:19: node "msee": MACsec device "macsec0" is on two links; give each link's macsec a device: name`,
		`lab.yml:21:19: node "msee": MACsec device "macsec0" is on two links; give each link's macsec a device: name`,
		`lab.yml:21:32: node "pe": MACsec device "macsec0" is on two links; give each link's macsec a device: name`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
