package macsec_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/vlan"

	"github.com/erlab-dev/erlab/lab/labtest"
)

// The shipped ExpressRoute Direct lab, on the ExpressRoute model: a Dot1Q
// port pair under MACsec GCM-AES-XPN-256 with keys from files, C-tags 100
// and 200 for a circuit's two peerings, BGP over them.
func TestIntegrationERDirect(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, macsec.KernelMACsec, vlan.KernelDot1Q)
	top := labtest.Load(t, labtest.WithKeys(t, "../../topologies/er-direct.yml"))
	l := labtest.Deploy(t, top)
	for _, c := range []struct{ from, to string }{
		{"direct-ce1", "192.168.100.130"}, {"direct-ce1", "203.0.113.2"}, // primary port
		{"direct-ce2", "192.168.100.134"}, {"direct-ce2", "203.0.113.6"}, // secondary port
	} {
		// Full-size, don't-fragment: the MTU plan made room for tag and SecTAG.
		labtest.Exec(t, l, c.from, "ping", "-c1", "-W2", "-M", "do", "-s", "1472", c.to)
	}
	// ip macsec show, an independent reader, agrees with what erlab set.
	out := labtest.Exec(t, l, "direct-ce1", "ip", "macsec", "show")
	if !strings.Contains(out, "cipher suite: GCM-AES-XPN-256") || !strings.Contains(out, "RXSC:") {
		t.Errorf("ip macsec show on ce1:\n%s", out)
	}
	res, err := l.VerifyEncryption(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range res {
		if !r.Checked {
			continue // the lab's other links, declared plaintext
		}
		checked++
		if !r.Pass || r.Declared != "macsec GCM-AES-XPN-256" {
			t.Errorf("%s: %+v", r.Link, r)
		}
	}
	if checked != 2 {
		t.Fatalf("verify encryption checked %d links, want the 2 ports: %+v", checked, res)
	}
	// The shipped drill: the primary port's SAKs rolled, both ends, under
	// traffic on both peerings; nothing lost.
	labtest.RunDrills(t, l, top, "primary-key-rotation")
	// And the port is still MACsec under the new keys.
	res, err = l.VerifyEncryption(context.Background(), []string{"direct-ce1:eth1"})
	if err != nil || len(res) != 1 || !res[0].Pass {
		t.Errorf("after the rotations: %v %+v", err, res)
	}
	// msee1 restarted: its port, MACsec device and peering VLANs come back
	// from the topology with the deploy's SAKs on AN 0, while ce1 sends on
	// the AN the drill rotated it to; both move to fresh SAKs together
	// (macsec's RestartHook), and both peerings cross, full-size, again.
	if _, err := l.RestartNodes(context.Background(), []string{"direct-msee1"}); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"192.168.100.130", "203.0.113.2"} {
		labtest.Exec(t, l, "direct-ce1", "ping", "-c3", "-i", "0.2", "-W2", "-M", "do", "-s", "1472", to)
	}
	res, err = l.VerifyEncryption(context.Background(), []string{"direct-ce1:eth1"})
	if err != nil || len(res) != 1 || !res[0].Pass {
		t.Errorf("after msee1's restart: %v %+v", err, res)
	}
}

// The MKA variant, on the model: QinQ with 0x8100 for both tags over
// MACsec keyed by wpa_supplicant, two circuits reusing C-tag 100.
func TestIntegrationERDirectMKA(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, macsec.KernelMACsec, vlan.KernelDot1Q)
	if _, err := exec.LookPath("wpa_supplicant"); err != nil && !labtest.KernelTier() {
		t.Skip("wpa_supplicant is not installed")
	}
	top := labtest.Load(t, labtest.WithKeys(t, "../../topologies/er-direct-mka.yml"))
	l := labtest.Deploy(t, top)
	for _, c := range []struct{ from, to string }{
		{"direct-ce1", "192.168.100.130"}, {"direct-ce1", "203.0.113.2"}, {"direct-ce1", "192.168.200.130"},
		{"direct-ce2", "192.168.100.134"}, {"direct-ce2", "203.0.113.6"}, {"direct-ce2", "192.168.200.134"},
	} {
		labtest.Exec(t, l, c.from, "ping", "-c1", "-W2", "-M", "do", "-s", "1472", c.to)
	}
	// Both tags are 0x8100: seen inside the MACsec device, where they are
	// still in clear (on the wire they are encrypted).
	out := labtest.Capture(t, l, "direct-msee1", "macsec0", 1, "vlan 20 and vlan 100 and icmp", func() { labtest.TryExec(l, "direct-ce1", "ping", "-c1", "-W2", "192.168.200.130") })
	if !regexp.MustCompile(`ethertype 802\.1Q \(0x8100\), length \d+: vlan 20, p 0, ethertype 802\.1Q \(0x8100\), vlan 100,`).MatchString(out) {
		t.Errorf("circuit 2's frames are not 0x8100 vlan 20 over 0x8100 vlan 100:\n%s", out)
	}
	res, err := l.VerifyEncryption(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range res {
		if !r.Checked {
			continue // the lab's other links, declared plaintext
		}
		checked++
		if !r.Pass || r.Declared != "macsec GCM-AES-128 (MKA)" {
			t.Errorf("%s: %+v", r.Link, r)
		}
	}
	if checked != 2 {
		t.Errorf("verify encryption checked %d links, want the 2 ports", checked)
	}
	// The shipped drills: a CAK mismatch takes the port down, failing
	// closed (nothing in clear); a CAK rotation brings it back secured.
	labtest.RunDrills(t, l, top, "cak-mismatch", "cak-rotation")
}

// MACsec on a subinterface: QinQ tags in clear, MACsec inside them — as a
// provider carries an encrypted circuit. tcpdump and tshark, independent
// readers, decode the wire as 802.1ad → 802.1Q → MACsec.
func TestIntegrationMACsecOnSubinterface(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, macsec.KernelMACsec, vlan.KernelDot1Q, vlan.KernelDot1ad)
	wpa := true
	if _, err := exec.LookPath("wpa_supplicant"); err != nil && !labtest.KernelTier() {
		wpa = false
	}
	t.Setenv("ERLAB_TEST_SAK", strings.Repeat("3c", 32))
	t.Setenv("ERLAB_TEST_CAK", strings.Repeat("4d", 16))
	src := `name: msub
topology:
  nodes:
    ce:
      interfaces:
        eth1.10: {vlan-protocol: 802.1ad}
        eth1.10.100: {}
        macsec0: {addresses: [192.168.100.129/30], mtu: 1500}
        eth2.200: {}
        ms2: {addresses: [192.168.200.129/30]}
    msee:
      interfaces:
        eth1.10: {vlan-protocol: 802.1ad}
        eth1.10.100: {}
        macsec0: {addresses: [192.168.100.130/30], mtu: 1500}
        eth2.200: {}
        ms2: {addresses: [192.168.200.130/30]}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec:
        cipher: GCM-AES-256
        subinterface: "10.100"
        keys: {a: {env: ERLAB_TEST_SAK}, b: {env: ERLAB_TEST_SAK}}
    - endpoints: ["ce:eth2", "msee:eth2"]
      macsec:
        device: ms2
        subinterface: "200"
        mka: {cak: {env: ERLAB_TEST_CAK}, ckn: {hex: "abcd"}}
`
	if !wpa {
		src = src[:strings.Index(src, `    - endpoints: ["ce:eth2"`)]
		src = strings.ReplaceAll(src, "        eth2.200: {}\n", "")
		src = regexp.MustCompile(`        ms2: .*\n`).ReplaceAllString(src, "")
	}
	top := labtest.Parse(t, src)
	if eth1 := top.Node("ce").Interface("eth1"); eth1.MTU != 1532 {
		t.Errorf("port mtu %d, want 1532 (1500 + SecTAG and ICV; Linux keeps the tags outside)", eth1.MTU)
	}
	l := labtest.Deploy(t, top)
	labtest.Exec(t, l, "ce", "ping", "-c1", "-W2", "-M", "do", "-s", "1472", "192.168.100.130")
	if wpa {
		labtest.Exec(t, l, "ce", "ping", "-c1", "-W2", "192.168.200.130")
	}
	out := labtest.Capture(t, l, "msee", "eth1", 2, "vlan 10 and vlan 100", func() { labtest.TryExec(l, "ce", "ping", "-c2", "-i", "0.2", "-W2", "192.168.100.130") })
	if !regexp.MustCompile(`ethertype 802\.1Q-QinQ \(0x88a8\), length \d+: vlan 10, p 0, ethertype 802\.1Q \(0x8100\), vlan 100, p 0, ethertype (802\.1AE MACsec|Unknown) \(0x88e5\)`).MatchString(out) {
		t.Errorf("the wire is not 802.1ad vlan 10 → 802.1Q vlan 100 → MACsec:\n%s", out)
	}
	res, err := l.VerifyEncryption(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Pass || r.MACsecFrames < r.Sent {
			t.Errorf("%s: %+v", r.Link, r)
		}
		if _, err := exec.LookPath("tshark"); err == nil && r.Link == "ce:eth1 — msee:eth1" {
			b, _ := exec.Command("tshark", "-r", r.Capture, "-T", "fields", "-e", "frame.protocols").Output()
			if !strings.Contains(string(b), "eth:ethertype:vlan:ethertype:vlan:ethertype:macsec") {
				t.Errorf("tshark reads the capture as:\n%s", b)
			}
		}
	}
}
