package lab_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
)

func view(t *testing.T, file string) *lab.View {
	t.Helper()
	top := labtest.Load(t, labtest.WithKeys(t, "../topologies/"+file))
	v, err := lab.FromTopology(top, labtest.Options(t)).View()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func viewLink(t *testing.T, v *lab.View, id string) lab.ViewLink {
	t.Helper()
	for _, l := range v.Links {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("the view has no link %s", id)
	return lab.ViewLink{}
}

// TestView: what the live page draws says what protects each link and
// what is stacked on its ends: MACsec on ExpressRoute Direct's port with
// its VLANs, QinQ's S-tag and C-tags at the MSEE, an IPsec tunnel as an
// overlay between its nodes; a plain link is neither.
func TestView(t *testing.T) {
	d := viewLink(t, view(t, "er-direct.yml"), "direct-ce1:eth1 direct-msee1:eth1")
	if d.Protected != "MACsec" || !slices.Equal(d.A.Stacked, []string{"macsec0", "vlan 100 192.168.100.129/30", "vlan 200 203.0.113.1/30"}) {
		t.Errorf("ExpressRoute Direct's port: %+v", d)
	}
	plain := viewLink(t, view(t, "er-direct.yml"), "hq-core:eth1 hq-host:eth1")
	if plain.Protected != "" || len(plain.A.Stacked) != 0 || !slices.Equal(plain.A.Addresses, []string{"10.1.0.1/24"}) {
		t.Errorf("a plain link: %+v", plain)
	}
	var msee []string
	for _, l := range view(t, "er-provider-qinq.yml").Links {
		for _, e := range []lab.ViewEnd{l.A, l.B} {
			if e.Node == "msee" {
				msee = append(msee, e.Stacked...)
			}
		}
	}
	if !slices.Contains(msee, "vlan 10.100 192.168.100.130/30") || !slices.Contains(msee, "vlan 20.100 192.168.200.130/30") {
		t.Errorf("QinQ at the MSEE: %q", msee)
	}
	o := view(t, "er-vwan-ipsec.yml").Overlays
	if len(o) != 1 || o[0].Kind != "ipsec" || o[0].A != "hub" || o[0].B != "cpe" || !strings.HasPrefix(o[0].Label, "IPsec aes256gcm16 (static keys)") {
		t.Errorf("er-vwan-ipsec's tunnel: %+v", o)
	}
}
