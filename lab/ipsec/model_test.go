package ipsec_test

import (
	"strings"
	"testing"

	ikef "github.com/erlab-dev/erlab/lab/ike"
	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"

	"github.com/erlab-dev/erlab/lab/labtest"

	"github.com/google/go-cmp/cmp"

	"github.com/erlab-dev/erlab/lab/ipsec"
)

func TestTunnels(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ERLAB_TEST_K", strings.Repeat("ab", 36))
	t.Setenv("ERLAB_TEST_PSK", strings.Repeat("p", 24))
	top, err := labtest.LoadText(t, dir, `name: m
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [192.0.2.1/30]}
        ipsec0: {addresses: [169.254.21.1/30]}
    b:
      interfaces:
        eth1: {addresses: [192.0.2.2/30]}
        ipsec0: {addresses: [169.254.21.2/30]}
        vti1: {addresses: [169.254.22.2/30]}
      routes:
        - {dst: 10.0.0.0/8, dev: ipsec0}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
  tunnels:
    - name: static
      endpoints: [{node: a, local: 192.0.2.1}, {node: b, local: 192.0.2.2}]
      keys: {a: {env: ERLAB_TEST_K}, b: {env: ERLAB_TEST_K}}
    - name: ike
      endpoints: [{node: a, local: 192.0.2.1, interface: vti1}, {node: b, local: 192.0.2.2, interface: vti1}]
      algorithm: aes128-sha256
      nat-t: true
      ike: {psk: {env: ERLAB_TEST_PSK}, dpd: 2s}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(ipsec.Tunnels(top)) != 2 {
		t.Fatalf("%d tunnels", len(ipsec.Tunnels(top)))
	}
	st := ipsec.Find(top, "static")
	if st.Mode != xfrm.RouteBased || st.Algorithm != xfrm.AES256GCM16 || len(st.KeyAB) != 36 || st.SPIAB == st.SPIBA || st.SPIAB < xfrm.MinSPI {
		t.Errorf("static tunnel: %+v", st)
	}
	if i := top.Node("a").Interface("ipsec0"); i == nil || i.Type != ipsec.TypeXfrm || ipsec.OfInterface(i) != st {
		t.Errorf("a:ipsec0 = %+v", i)
	}
	ia, ib := st.XFRM("a"), st.XFRM("b")
	if ia.SPIOut != ib.SPIIn || ia.Remote != ib.Local || string(ia.KeyOut.Enc) != string(ib.KeyIn.Enc) || ia.IfID != ib.IfID {
		t.Errorf("the two ends do not mirror: %+v / %+v", ia, ib)
	}
	ike := ipsec.Find(top, "ike")
	if k := ikef.Of(top, ike); ike.IKE == nil || k == nil || k.DPD.Seconds() != 2 || string(k.PSK) != strings.Repeat("p", 24) || !ike.NATT || ike.IfID == st.IfID {
		t.Errorf("ike tunnel: %+v %+v", ike, k)
	}

	_, err = labtest.LoadText(t, dir, `name: m
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [192.0.2.1/30]}
    b:
      interfaces:
        eth1: {addresses: [192.0.2.2/30]}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
  tunnels:
    - name: t1
      endpoints: [{node: a, local: 192.0.2.9}, {node: c, local: 192.0.2.2}]
      keys: {a: {env: ERLAB_TEST_K}, b: {hex: "00"}}
    - name: t2
      endpoints: [{node: a, local: 192.0.2.1}, {node: b, local: 192.0.2.2, nets: [10.0.0.0/8]}]
      mode: policy
      algorithm: des
      nat-t: true
      keys: {a: {env: ERLAB_TEST_K}, b: {env: ERLAB_TEST_K}}
`)
	var got []string
	for _, p := range labtest.Problems(err) {
		got = append(got, strings.TrimPrefix(p, dir+"/"))
	}
	want := []string{
		`lab.yml:14:48: tunnel "t1": endpoints[1]: node "c": no such node`,
		`lab.yml:15:41: tunnel "t1": keys: b: the key in hex must be 72 hex digits for this cipher`,
		`lab.yml:16:7: tunnel "t2": unknown IPsec algorithm "des" (aes128gcm16, aes256gcm16, aes128-sha256, aes256-sha256)`,
		`lab.yml:17:19: tunnel "t2": endpoints[0]: nets: required for a policy-based tunnel: the subnets behind this end`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
