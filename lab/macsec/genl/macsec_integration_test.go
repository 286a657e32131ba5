package genl_test

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"

	macsecf "github.com/erlab-dev/erlab/lab/macsec"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
	macsec "github.com/erlab-dev/erlab/lab/macsec/genl"
)

const twoPorts = `name: m
topology:
  nodes:
    a:
      interfaces:
        eth1: {mac: "02:00:00:00:00:0a"}
    b:
      interfaces:
        eth1: {mac: "02:00:00:00:00:0b"}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
`

// side configures one end of a static-key MACsec link inside a node, as
// erlab will for a link declared once in a topology: the device, its TX SA,
// and an RX channel and SA for the peer.
func side(t *testing.T, ns, dev string, port uint16, cipher macsec.Cipher, txKey, rxKey []byte, peer macsec.SCI, addr string) (ifindex int, sci macsec.SCI) {
	t.Helper()
	err := kernel.Do(ns, func() error {
		conn, err := mdnetlink.Dial(unix.NETLINK_ROUTE, nil)
		if err != nil {
			return err
		}
		defer conn.Close()
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		parent, err := h.LinkByName("eth1")
		if err != nil {
			return err
		}
		if err := macsec.LinkAdd(conn, macsec.LinkConfig{Name: dev, ParentIndex: parent.Attrs().Index, Port: port, Cipher: cipher,
			Encrypt: true, IncludeSCI: true, ReplayProtect: true, Window: 0, Validate: macsec.ValidateStrict}); err != nil {
			return err
		}
		link, err := h.LinkByName(dev)
		if err != nil {
			return err
		}
		ifindex, sci = link.Attrs().Index, macsec.MakeSCI(link.Attrs().HardwareAddr, port)
		cl, err := macsec.Dial()
		if err != nil {
			return err
		}
		defer cl.Close()
		xpn := cipher.XPN()
		tx := macsec.SA{AN: 0, Active: true, PN: 1, Key: txKey, KeyID: [16]byte{byte(port), 1}, XPN: xpn, SSCI: uint32(sci), Salt: [12]byte{7}}
		if err := cl.AddTxSA(ifindex, tx); err != nil {
			return err
		}
		if err := cl.AddRxSC(ifindex, peer); err != nil {
			return err
		}
		rx := macsec.SA{AN: 0, Active: true, PN: 1, Key: rxKey, KeyID: [16]byte{byte(port), 2}, XPN: xpn, SSCI: uint32(peer), Salt: [12]byte{7}}
		if err := cl.AddRxSA(ifindex, peer, rx); err != nil {
			return err
		}
		ip, pfx, _ := net.ParseCIDR(addr)
		pfx.IP = ip
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: pfx}); err != nil {
			return err
		}
		return h.LinkSetUp(link)
	})
	if err != nil {
		t.Fatalf("%s: %v", ns, err)
	}
	return ifindex, sci
}

func status(t *testing.T, ns string, ifindex int) *macsec.Status {
	t.Helper()
	var st *macsec.Status
	if err := kernel.Do(ns, func() error {
		cl, err := macsec.Dial()
		if err != nil {
			return err
		}
		defer cl.Close()
		st, err = cl.Status(ifindex)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestIntegrationMACsecStatic builds static-key MACsec between two nodes
// with this package alone, for a 128-bit and an XPN-256 suite, and checks it
// with independent readers: traffic passes, the frames on the parent are
// 0x88E5 (tcpdump), `ip macsec show` reports what was configured, and the
// counters this package reads moved with the traffic.
func TestIntegrationMACsecStatic(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, macsecf.KernelMACsec)
	top := labtest.Parse(t, twoPorts)
	l := labtest.Deploy(t, top)
	nsA, nsB := lab.NetNSName(top.Name, "a"), lab.NetNSName(top.Name, "b")
	for i, cipher := range []macsec.Cipher{macsec.GCMAES128, macsec.GCMAESXPN256} {
		t.Run(cipher.String(), func(t *testing.T) {
			port := uint16(i + 1)
			dev := fmt.Sprintf("ms%d", port)
			kA, kB := bytes.Repeat([]byte{0x11 + byte(i)}, cipher.KeyLen()), bytes.Repeat([]byte{0x22 + byte(i)}, cipher.KeyLen())
			sciA := macsec.MakeSCI(net.HardwareAddr{2, 0, 0, 0, 0, 0x0a}, port)
			sciB := macsec.MakeSCI(net.HardwareAddr{2, 0, 0, 0, 0, 0x0b}, port)
			idxA, gotA := side(t, nsA, dev, port, cipher, kA, kB, sciB, fmt.Sprintf("10.99.%d.1/24", port))
			idxB, _ := side(t, nsB, dev, port, cipher, kB, kA, sciA, fmt.Sprintf("10.99.%d.2/24", port))
			if gotA != sciA {
				t.Fatalf("SCI %s, want %s", gotA, sciA)
			}
			labtest.Exec(t, l, "a", "ping", "-c3", "-i", "0.2", "-W2", fmt.Sprintf("10.99.%d.2", port))

			stA, stB := status(t, nsA, idxA), status(t, nsB, idxB)
			if stA.Cipher != cipher || stA.SCI != sciA || !stA.Encrypt || stA.Validate != macsec.ValidateStrict || len(stA.RxSCs) != 1 || stA.RxSCs[0].SCI != sciB {
				t.Errorf("a's status: %+v", stA)
			}
			if stA.OutPktsEncrypted < 3 || stA.TxSAs[0].OutPktsEncrypted < 3 || stB.RxSCs[0].InPktsOK < 3 || stB.RxSCs[0].SAs[0].InPktsOK < 3 {
				t.Errorf("counters did not move with the pings: a out %d (sa %d), b in %d (sa %d)",
					stA.OutPktsEncrypted, stA.TxSAs[0].OutPktsEncrypted, stB.RxSCs[0].InPktsOK, stB.RxSCs[0].SAs[0].InPktsOK)
			}
			out := labtest.Exec(t, l, "a", "ip", "macsec", "show", dev)
			for _, want := range []string{"cipher suite: " + cipher.String(), "encrypt on", "validate strict", sciA.String(), sciB.String()} {
				if !strings.Contains(out, want) {
					t.Errorf("ip macsec show lacks %q:\n%s", want, out)
				}
			}
			// On the parent, only MACsec frames: tcpdump sees 0x88E5.
			cap := labtest.Exec(t, l, "b", "sh", "-c", fmt.Sprintf(
				"timeout 10 tcpdump -i eth1 -c 2 -nn -e 'ether proto 0x88e5' 2>/dev/null & sleep 1; ping -c2 -i 0.2 10.99.%d.1 >/dev/null; wait", port))
			if strings.Count(cap, "0x88e5") < 2 && strings.Count(cap, "MACsec") < 2 {
				t.Errorf("tcpdump on the parent saw no MACsec frames:\n%s", cap)
			}
		})
	}
}
