package lab_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// TestIntegrationHostLinks deploys containerlab's host links, brief and
// extended: each node's end is a veth whose peer is in the host's
// namespace, up, with the link's MTU and marked with whose it is; stop
// takes the host's end away with the node and start makes it again;
// destroy leaves none; and a name the host has already fails the deploy
// with nothing left.
func TestIntegrationHostLinks(t *testing.T) {
	labtest.Integration(t)
	if labtest.KernelTier() {
		t.Skip("the host tier runs it: host links need nothing this host's kernel lacks")
	}
	tag := fmt.Sprintf("eh%04x", rand.IntN(1<<16))
	ha, hb, hs := tag+"a", tag+"b", tag+"s"
	top := labtest.Parse(t, `name: hl
topology:
  nodes:
    a: { interfaces: { eth1: { addresses: [198.51.100.1/30] } } }
    b: {}
    sw: { kind: bridge }
  links:
    - endpoints: ["a:eth1", "host:`+ha+`"]
    - type: host
      mtu: 9000
      endpoint: { node: b, interface: eth2 }
      host-interface: `+hb+`
    - endpoints: ["a:eth3", "b:eth3"]
    - endpoints: ["a:eth4", "sw:a-eth4"]             # containerlab's bridge-and-host shape
    - endpoints: ["sw:host-port", "host:`+hs+`"]
`)
	hostEnd := func(name string) netlink.Link {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return nil
		}
		return link
	}
	t.Cleanup(func() {
		for _, n := range []string{ha, hb, hs} {
			if link := hostEnd(n); link != nil {
				t.Errorf("host interface %s left", n)
				netlink.LinkDel(link)
			}
		}
	})
	l := labtest.Deploy(t, top)
	check := func(when string) {
		t.Helper()
		for _, e := range []struct {
			node, iface, host string
			mtu               int
		}{{"a", "eth1", ha, 1500}, {"b", "eth2", hb, 9000}} {
			h := hostEnd(e.host)
			if h == nil {
				t.Fatalf("%s: no host interface %s", when, e.host)
			}
			var peer netlink.Link
			kernel.WithHandle(kernel.Real{}, lab.NetNSName(top.Name, e.node), func(nh *netlink.Handle) error {
				peer, _ = nh.LinkByName(e.iface)
				return nil
			})
			ha := h.Attrs()
			switch {
			case peer == nil:
				t.Errorf("%s: %s has no %s", when, e.node, e.iface)
			case peer.Attrs().ParentIndex != ha.Index || ha.ParentIndex != peer.Attrs().Index:
				t.Errorf("%s: %s:%s (index %d, peer %d) and host %s (index %d, peer %d) are not one pair", when, e.node, e.iface, peer.Attrs().Index, peer.Attrs().ParentIndex, e.host, ha.Index, ha.ParentIndex)
			case ha.OperState != netlink.OperUp || peer.Attrs().OperState != netlink.OperUp:
				t.Errorf("%s: host %s %s, %s:%s %s", when, e.host, ha.OperState, e.node, e.iface, peer.Attrs().OperState)
			case ha.MTU != e.mtu || peer.Attrs().MTU != e.mtu:
				t.Errorf("%s: MTU host %d, node %d, want %d", when, ha.MTU, peer.Attrs().MTU, e.mtu)
			case ha.Alias != "erlab:"+top.Name+":"+e.node+":"+e.iface:
				t.Errorf("%s: host %s alias %q", when, e.host, ha.Alias)
			}
		}
	}
	check("deployed")
	// On a bridge node, the host link's end is a port like any link's.
	kernel.WithHandle(kernel.Real{}, lab.NetNSName(top.Name, "sw"), func(h *netlink.Handle) error {
		br, err1 := h.LinkByName("br0")
		port, err2 := h.LinkByName("host-port")
		if err1 != nil || err2 != nil || port.Attrs().MasterIndex != br.Attrs().Index {
			t.Errorf("sw's host-port is not a port of br0: %v %v %+v", err1, err2, port)
		}
		return nil
	})
	if h := hostEnd(hs); h == nil || h.Attrs().OperState != netlink.OperUp {
		t.Errorf("the bridge's host end %s: %+v", hs, h)
	}
	if ip := labtest.Inspect(t, l); !strings.Contains(fmt.Sprint(labtest.Iface(t, ip, "a", "eth1").Addresses), "198.51.100.1/30") {
		t.Errorf("a:eth1 in inspect: %+v", labtest.Iface(t, ip, "a", "eth1"))
	}
	ctx := context.Background()
	if _, err := l.StopNodes(ctx, []string{"a"}, false); err != nil {
		t.Fatal(err)
	}
	if hostEnd(ha) != nil {
		t.Errorf("a stopped: its host end %s is still there", ha)
	}
	if _, err := l.StartNodes(ctx, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	check("a started again")
	labtest.Destroy(t, l)
	if hostEnd(ha) != nil || hostEnd(hb) != nil || hostEnd(hs) != nil {
		t.Fatal("destroyed: host ends left")
	}

	// A host interface of that name there already: the deploy fails,
	// says which, and leaves nothing.
	taken := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hb}, PeerName: tag + "p"}
	if err := netlink.LinkAdd(taken); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(taken)
	top2 := labtest.Parse(t, `name: hl
topology:
  nodes:
    b: {}
  links:
    - endpoints: ["b:eth1", "host:`+hb+`"]
`)
	err := lab.Deploy(ctx, top2, labtest.Options(t))
	if err == nil || !strings.Contains(err.Error(), "the host has an interface "+hb+" already") {
		t.Errorf("deploy onto a taken host name: %v", err)
	}
	if left, _ := kernel.NetNSList(lab.NetNSName(top2.Name, "")); len(left) > 0 {
		t.Errorf("the failed deploy left %v", left)
	}
	netlink.LinkDel(taken)
}
