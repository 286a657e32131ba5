package macsec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/probe"
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
	labtest.RequireFeatures(t, kernel.FeatMACsec)
	top := labtest.Parse(t, twoPorts)
	labtest.Deploy(t, top)
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
			labtest.Exec(t, top.Name, "a", "ping", "-c3", "-i", "0.2", "-W2", fmt.Sprintf("10.99.%d.2", port))

			stA, stB := status(t, nsA, idxA), status(t, nsB, idxB)
			if stA.Cipher != cipher || stA.SCI != sciA || !stA.Encrypt || stA.Validate != macsec.ValidateStrict || len(stA.RxSCs) != 1 || stA.RxSCs[0].SCI != sciB {
				t.Errorf("a's status: %+v", stA)
			}
			if stA.OutPktsEncrypted < 3 || stA.TxSAs[0].OutPktsEncrypted < 3 || stB.RxSCs[0].InPktsOK < 3 || stB.RxSCs[0].SAs[0].InPktsOK < 3 {
				t.Errorf("counters did not move with the pings: a out %d (sa %d), b in %d (sa %d)",
					stA.OutPktsEncrypted, stA.TxSAs[0].OutPktsEncrypted, stB.RxSCs[0].InPktsOK, stB.RxSCs[0].SAs[0].InPktsOK)
			}
			out := labtest.Exec(t, top.Name, "a", "ip", "macsec", "show", dev)
			for _, want := range []string{"cipher suite: " + cipher.String(), "encrypt on", "validate strict", sciA.String(), sciB.String()} {
				if !strings.Contains(out, want) {
					t.Errorf("ip macsec show lacks %q:\n%s", want, out)
				}
			}
			// On the parent, only MACsec frames: tcpdump sees 0x88E5.
			cap := labtest.Exec(t, top.Name, "b", "sh", "-c", fmt.Sprintf(
				"timeout 10 tcpdump -i eth1 -c 2 -nn -e 'ether proto 0x88e5' 2>/dev/null & sleep 1; ping -c2 -i 0.2 10.99.%d.1 >/dev/null; wait", port))
			if strings.Count(cap, "0x88e5") < 2 && strings.Count(cap, "MACsec") < 2 {
				t.Errorf("tcpdump on the parent saw no MACsec frames:\n%s", cap)
			}
		})
	}
}

// TestIntegrationMACsecLink declares MACsec once on a link, as a user does,
// with ExpressRoute Direct's GCM-AES-XPN-256 and a Dot1Q C-tag above the
// MACsec device, keys from a file (mode 0600) and an environment variable:
// erlab configures both ends, traffic crosses the VLAN, only MACsec frames
// are on the wire, inspect shows the SecY and its counters, and the keys
// appear nowhere in the lab's files.
func TestIntegrationMACsecLink(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, kernel.FeatMACsec, kernel.FeatVLAN)
	dir := t.TempDir()
	keyA := strings.Repeat("a1", 32)
	keyB := strings.Repeat("b2", 32)
	if err := os.WriteFile(filepath.Join(dir, "a.key"), []byte(keyA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ERLAB_TEST_MACSEC_KEY_B", keyB)
	file := filepath.Join(dir, "lab.yml")
	os.WriteFile(file, []byte(`name: msl
topology:
  nodes:
    ce:
      interfaces:
        macsec0.100: {addresses: [192.168.100.129/30]}
        eth2: {addresses: [10.9.9.1/30]}
    msee:
      interfaces:
        macsec0.100: {addresses: [192.168.100.130/30]}
        eth2: {addresses: [10.9.9.2/30]}
  links:
    - endpoints: ["ce:eth2", "msee:eth2"]
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec:
        cipher: GCM-AES-XPN-256
        keys: {a: {file: a.key}, b: {env: ERLAB_TEST_MACSEC_KEY_B}}
`), 0o644)
	top := labtest.Load(t, file)
	labtest.Deploy(t, top)
	name := top.Name
	labtest.Exec(t, name, "ce", "ping", "-c3", "-i", "0.2", "-W2", "192.168.100.130")

	info, err := lab.Inspect(context.Background(), name, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, n := range info.Nodes {
		for _, i := range n.Interfaces {
			if i.MACsec == nil {
				continue
			}
			seen++
			m := i.MACsec
			if m.Cipher != "GCM-AES-XPN-256" || !m.Encrypt || m.OutPktsEncrypted < 3 || m.InPktsOK < 3 || m.InPktsNotValid != 0 || len(m.PeerSCIs) != 1 || m.KeyID == "" {
				t.Errorf("%s:%s MACsec: %+v", n.Name, i.Name, m)
			}
		}
	}
	if seen != 2 {
		t.Errorf("inspect shows %d MACsec devices, want 2", seen)
	}
	cap := labtest.Exec(t, name, "msee", "sh", "-c", "timeout 10 tcpdump -i eth1 -c 4 -nn -e 2>/dev/null & sleep 1; ping -c2 -i 0.2 192.168.100.129 >/dev/null; wait")
	if strings.Count(cap, "0x88e5") < 4 {
		t.Errorf("frames on the wire that are not MACsec:\n%s", cap)
	}
	// Two static key rotations under a 1000 pps probe stream lose nothing.
	done := make(chan probe.Report, 1)
	go func() {
		rep, err := lab.Probe(context.Background(), top, "ce", "192.168.100.130", probe.Config{Rate: 1000, Duration: 2 * time.Second, Port: 7009})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	for _, at := range []time.Duration{500 * time.Millisecond, 700 * time.Millisecond} {
		time.Sleep(at)
		rot, err := lab.RotateMACsec(context.Background(), top, "ce", "eth1")
		if err != nil {
			out, _, _ := labtest.TryExec(name, "ce", "ip", "macsec", "show")
			t.Fatalf("%v\n%s", err, out)
		}
		t.Logf("rotation: %+v", rot)
	}
	if rep := <-done; rep.Lost != 0 || rep.Received != rep.Sent {
		t.Errorf("probe during two key rotations: %s", rep)
	} else {
		t.Logf("probe during two key rotations: %s", rep)
	}
	stCE := status(t, lab.NetNSName(name, "ce"), macsecIndex(t, lab.NetNSName(name, "ce")))
	if stCE.EncodingSA != 2 || len(stCE.TxSAs) != 1 || stCE.TxSAs[0].AN != 2 || len(stCE.RxSCs[0].SAs) != 1 || stCE.RxSCs[0].SAs[0].AN != 2 {
		t.Errorf("after two rotations ce sends on AN %d with TX SAs %+v and RX SAs %+v; want only AN 2", stCE.EncodingSA, stCE.TxSAs, stCE.RxSCs[0].SAs)
	}

	// verify encryption: the MACsec link passes; the plaintext link, named
	// explicitly, fails — the check can fail.
	res, err := lab.VerifyEncryption(context.Background(), top, nil, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		switch r.Declared {
		case "macsec GCM-AES-XPN-256":
			if !r.Pass || r.MACsecFrames < r.Sent || r.MarkerHits != 0 || r.EncryptedOut < uint64(r.Sent) || r.ValidatedIn < uint64(r.Sent) {
				t.Errorf("MACsec link: %+v", r)
			}
			// tshark, an independent reader, decodes the capture as MACsec.
			if _, err := exec.LookPath("tshark"); err == nil {
				out, _ := exec.Command("tshark", "-r", r.Capture, "-Y", "macsec", "-T", "fields", "-e", "frame.number").Output()
				if n := len(strings.Fields(string(out))); n < r.Sent {
					t.Errorf("tshark reads %d MACsec frames in %s, want at least %d", n, r.Capture, r.Sent)
				}
			}
		case "plaintext":
			if !r.Pass || !strings.Contains(r.Reason, "declared plaintext") {
				t.Errorf("plaintext link, not asked for: %+v", r)
			}
		}
	}
	neg, err := lab.VerifyEncryption(context.Background(), top, []string{"ce:eth2"}, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(neg) != 1 || neg[0].Pass || neg[0].MarkerHits < neg[0].Sent {
		t.Errorf("a plaintext link passed the encryption check: %+v", neg)
	}

	// The keys are nowhere in the lab's files, nor in inspect's JSON.
	blob, _ := json.Marshal(info)
	for _, k := range []string{keyA, keyB} {
		if bytes.Contains(blob, []byte(k)) {
			t.Error("inspect shows a key")
		}
	}
	filepath.WalkDir(filepath.Join(lab.DefaultStateRoot, name), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(keyA)) || bytes.Contains(b, []byte(keyB)) {
				t.Errorf("%s holds a key", p)
			}
		}
		return nil
	})
}

func macsecIndex(t *testing.T, ns string) int {
	t.Helper()
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName("macsec0")
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}
