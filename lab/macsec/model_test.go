package macsec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab/labtest"

	"github.com/google/go-cmp/cmp"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/mka"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/lab/vlan"
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
`), lab.Options{}.TopoOptions())
	if err != nil {
		t.Fatal(err)
	}
	m := macsec.Of(top.Links[0])
	if m.Cipher != "GCM-AES-128" || m.Device != "macsec0" || !m.Encrypt || !m.IncludeSCI || m.Validate != "strict" || len(m.KeyA) != 16 || m.KeyB[0] != 0xcd {
		t.Errorf("defaults: %+v", m)
	}
	ce := top.Node("ce")
	if i := ce.Interface("macsec0"); i.Type != macsec.Type || i.Parent != "eth1" {
		t.Errorf("macsec0 = %+v", i)
	}
	if i := ce.Interface("macsec0.100"); i.Type != vlan.Type || i.Parent != "macsec0" {
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
`), lab.Options{}.TopoOptions())
	var got []string
	for _, p := range labtest.Problems(err) {
		got = append(got, p[strings.Index(p, "lab.yml"):])
	}
	want := []string{
		`lab.yml:6:9: node "ce": interface "eth1": mtu 1500 is too small: carrying macsec0's 1500 bytes and its 32 bytes of SecTAG and ICV needs 1532`,
		`lab.yml:12:51: links[0]: macsec: keys: a: the key in file a.key must be 64 hex digits for this cipher`,
		`lab.yml:12:69: links[0]: macsec: keys: b: the key in hex must be 64 hex digits for this cipher`,
		// links[1] keeps its MACsec despite the refused cipher: its device
		// clashes with links[0]'s and it has no keys, two problems of its own.
		`lab.yml:13:19: node "ce": MACsec device "macsec0" is on two links; give each link's macsec a device: name`,
		`lab.yml:13:30: node "msee": MACsec device "macsec0" is on two links; give each link's macsec a device: name`,
		`lab.yml:14:15: links[1]: macsec: cipher "AES-CMAC": one of GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256`,
		`lab.yml:14:15: links[1]: macsec: keys: required: a: and b:, each {file: PATH} or {env: NAME} of 32 or 64 hex digits (static SAKs), or mka: {cak: ..., ckn: ...}`,
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

// MKA keying follows wpa_supplicant's reach (GCM-AES-128 only) and
// ExpressRoute Direct's key rules.
func TestMKALink(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cak"), []byte(strings.Repeat("0f", 16)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "short.cak"), []byte("abcd"), 0o600)
	t.Setenv("ERLAB_TEST_CKN", strings.Repeat("1e", 32))
	top, err := labtest.LoadText(t, dir, `name: m
topology:
  nodes:
    ce: {}
    msee: {}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec: {mka: {cak: {file: cak}, ckn: {env: ERLAB_TEST_CKN}}}
    - endpoints: ["ce:eth2", "msee:eth2"]
      macsec: {device: ms2, mka: {cak: {file: short.cak}, ckn: {hex: "01"}}}
`)
	if err != nil {
		t.Fatal(err)
	}
	m := macsec.Of(top.Links[0])
	if k := mka.Of(top.Links[0]); m.MKA == nil || k == nil || len(k.CAK) != 16 || k.CAK[0] != 0x0f || len(k.CKN) != 32 || m.KeyA != nil {
		t.Errorf("MKA link: %+v %+v", m, k)
	}
	if cak := mka.Of(top.Links[1]).CAK; len(cak) != 16 || cak[0] != 0xab || cak[1] != 0xcd || cak[2] != 0 {
		t.Errorf("a short CAK is not zero-padded on the right: %x", cak)
	}
	if len(top.Warnings) != 1 || !strings.Contains(top.Warnings[0].String(), "zero-padded on the right to 32, as Azure does") {
		t.Errorf("warnings: %v", top.Warnings)
	}

	_, err = labtest.LoadText(t, dir, `name: m
topology:
  nodes:
    ce: {}
    msee: {}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec: {cipher: GCM-AES-XPN-256, mka: {cak: {file: cak}, ckn: {hex: "01"}}}
    - endpoints: ["ce:eth2", "msee:eth2"]
      macsec: {device: ms2, mka: {cak: {hex: "`+strings.Repeat("a", 34)+`"}, ckn: {hex: "012"}}}
    - endpoints: ["ce:eth3", "msee:eth3"]
      macsec: {device: ms3, mka: {cak: {file: cak}, ckn: {hex: "`+strings.Repeat("0", 66)+`"}}, keys: {a: {hex: "00"}, b: {hex: "00"}}}
    - endpoints: ["ce:eth4", "msee:eth4"]
      macsec: {device: ms4, validate: check, include-sci: false, mka: {cak: {file: cak}, ckn: {hex: "01"}}}
`)
	var got []string
	for _, p := range labtest.Problems(err) {
		got = append(got, strings.TrimPrefix(p, dir+"/"))
	}
	want := []string{
		`lab.yml:8:15: links[0]: macsec: cipher GCM-AES-XPN-256 needs static SAKs (keys:): in MKA mode Debian's wpa_supplicant 2.10 negotiates GCM-AES-128 only (the 256-bit and XPN suites came in hostap 2.11)`,
		`lab.yml:10:40: links[1]: macsec: mka: cak: the CAK in hex has 34 hex digits; GCM-AES-128 takes 32`,
		`lab.yml:10:90: links[1]: macsec: mka: ckn: the CKN in hex must be an even number of hex digits`,
		`lab.yml:12:15: links[2]: macsec: keys: and mka: are two ways to key a link; give one`,
		`lab.yml:14:15: links[3]: macsec: validate check: wpa_supplicant always validates strictly in MKA mode`,
		`lab.yml:14:15: links[3]: macsec: include-sci: wpa_supplicant always includes the SCI in MKA mode`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestMACsecRejectedCipherDoesNotCascade: one typo in a cipher is one
// error; the devices stacked on the link's MACsec device are still known
// (no "parent is not an interface" for each), and a key file readable by
// others is still reported.
func TestMACsecRejectedCipherDoesNotCascade(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	p := filepath.Join(dir, "lab.yml")
	os.WriteFile(p, []byte(`name: m
topology:
  nodes:
    ce:
      interfaces:
        macsec0.100: {addresses: [10.0.0.1/30]}
        macsec0.200: {addresses: [10.0.1.1/30]}
    msee:
      interfaces:
        macsec0.100: {addresses: [10.0.0.2/30]}
        macsec0.200: {addresses: [10.0.1.2/30]}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec:
        cipher: GCM-AES-XPN-265
        keys: {a: {file: a.key}, b: {file: b.key}}
`), 0o644)
	_, err := topo.Load(p, lab.Options{}.TopoOptions())
	var el topo.ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, e := range el {
		got = append(got, e.Msg)
	}
	want := []string{
		`links[0]: macsec: cipher "GCM-AES-XPN-265": one of GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256 (did you mean GCM-AES-XPN-256?)`,
		`links[0]: macsec: keys: a: key file a.key is readable by others (mode 0644); chmod 600 it`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}
