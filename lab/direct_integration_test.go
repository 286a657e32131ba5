package lab_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// The shipped ExpressRoute Direct lab: a port pair under MACsec
// GCM-AES-XPN-256 with keys from files, Dot1Q C-tags for two peerings.
func TestIntegrationERDirect(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, kernel.FeatMACsec, kernel.FeatVLAN)
	top := labtest.Load(t, labtest.WithKeys(t, "../topologies/er-direct.yml"))
	labtest.Deploy(t, top)
	name := top.Name
	for _, c := range []struct{ from, to string }{
		{"ce1", "192.168.100.130"}, {"ce1", "203.0.113.2"}, // primary port
		{"ce2", "192.168.100.134"}, {"ce2", "203.0.113.6"}, // secondary port
	} {
		// Full-size, don't-fragment: the MTU plan made room for tag and SecTAG.
		labtest.Exec(t, name, c.from, "ping", "-c1", "-W2", "-M", "do", "-s", "1472", c.to)
	}
	// ip macsec show, an independent reader, agrees with what erlab set.
	out := labtest.Exec(t, name, "ce1", "ip", "macsec", "show")
	if !strings.Contains(out, "cipher suite: GCM-AES-XPN-256") || !strings.Contains(out, "RXSC:") {
		t.Errorf("ip macsec show on ce1:\n%s", out)
	}
	res, err := lab.VerifyEncryption(context.Background(), top, nil, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("verify encryption checked %d links, want 2: %+v", len(res), res)
	}
	for _, r := range res {
		if !r.Pass || r.Declared != "macsec GCM-AES-XPN-256" {
			t.Errorf("%s: %+v", r.Link, r)
		}
	}
}

// The MKA variant: QinQ with 0x8100 for both tags over MACsec keyed by
// wpa_supplicant, two circuits reusing C-tag 100.
func TestIntegrationERDirectMKA(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, kernel.FeatMACsec, kernel.FeatVLAN)
	if _, err := exec.LookPath("wpa_supplicant"); err != nil && !labtest.KernelTier() {
		t.Skip("wpa_supplicant is not installed")
	}
	top := labtest.Load(t, labtest.WithKeys(t, "../topologies/er-direct-mka.yml"))
	labtest.Deploy(t, top)
	name := top.Name
	for _, c := range []struct{ from, to string }{
		{"ce1", "192.168.100.130"}, {"ce1", "203.0.113.2"}, {"ce1", "192.168.200.130"},
		{"ce2", "192.168.100.134"}, {"ce2", "203.0.113.6"}, {"ce2", "192.168.200.134"},
	} {
		labtest.Exec(t, name, c.from, "ping", "-c1", "-W2", "-M", "do", "-s", "1472", c.to)
	}
	// Both tags are 0x8100: seen inside the MACsec device, where they are
	// still in clear (on the wire they are encrypted).
	out := labtest.Exec(t, name, "msee1", "sh", "-c", "timeout 10 tcpdump -i macsec0 -c 1 -nn -e 'vlan 20 and vlan 100 and icmp' 2>/dev/null & sleep 1; ip netns exec "+lab.NetNSName(name, "ce1")+" ping -c1 -W2 192.168.200.130 >/dev/null; wait")
	if !regexp.MustCompile(`ethertype 802\.1Q \(0x8100\), length \d+: vlan 20, p 0, ethertype 802\.1Q \(0x8100\), vlan 100,`).MatchString(out) {
		t.Errorf("circuit 2's frames are not 0x8100 vlan 20 over 0x8100 vlan 100:\n%s", out)
	}
	res, err := lab.VerifyEncryption(context.Background(), top, nil, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Pass || r.Declared != "macsec GCM-AES-128 (MKA)" {
			t.Errorf("%s: %+v", r.Link, r)
		}
	}
	if len(res) != 2 {
		t.Errorf("verify encryption checked %d links, want 2", len(res))
	}
}
