// Package wire is a test harness for the packages under the lab engine
// (lab/ipsec, lab/ike): two namespaces joined through a third, the wire,
// and tcpdump captures inside namespaces (lab/capture). It depends on
// lab/kernel and lab/capture only, so those packages' own tests can use it
// without an import cycle.
package wire

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/capture"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest/tier"
)

// Node is one namespace of a test and a netlink handle (rtnetlink and
// XFRM) on it.
type Node struct {
	NS string
	H  *netlink.Handle
}

// NewNode makes a namespace, deleted when the test ends.
func NewNode(t *testing.T, ns string) Node {
	t.Helper()
	if err := kernel.NetNSAdd(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kernel.NetNSDel(ns); err != nil {
			t.Error(err)
		}
	})
	fd, err := kernel.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE, unix.NETLINK_XFRM)
	if err != nil {
		t.Fatalf("netlink in %s: %v", ns, err)
	}
	t.Cleanup(h.Close)
	return Node{NS: ns, H: h}
}

// NewPair makes two namespaces, each with eth1 carrying its outer
// (underlay) address, joined through a third, the wire: a bridge between
// two veth pairs. The wire does no IPsec, so a capture there shows what
// really crosses between the nodes — on a node's own eth1 a policy-based
// tunnel's decapsulated packets show too, since the kernel hands them back
// to the stack on the device the ESP arrived on. Everything lives inside
// the three namespaces, deleted when the test ends, passed or failed.
func NewPair(t *testing.T, prefix string, outerA, outerB netip.Prefix) (a, b, wire Node) {
	t.Helper()
	base := tier.Name(prefix)
	a, b, wire = NewNode(t, base+"-a"), NewNode(t, base+"-b"), NewNode(t, base+"-w")
	if err := wire.H.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}); err != nil {
		t.Fatalf("%s: bridge: %v", wire.NS, err)
	}
	br, err := wire.H.LinkByName("br0")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		n    Node
		port string
		addr netip.Prefix
	}{{a, "to-a", outerA}, {b, "to-b", outerB}} {
		fd, err := kernel.Open(x.n.NS)
		if err != nil {
			t.Fatal(err)
		}
		err = wire.H.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: x.port, MasterIndex: br.Attrs().Index}, PeerName: "eth1", PeerNamespace: netlink.NsFd(int(fd))})
		fd.Close()
		if err != nil {
			t.Fatalf("veth %s:%s - %s:eth1: %v", wire.NS, x.port, x.n.NS, err)
		}
		wire.Up(t, x.port)
		x.n.Up(t, "lo")
		x.n.Up(t, "eth1")
		x.n.AddAddr(t, "eth1", x.addr)
	}
	wire.Up(t, "br0")
	return a, b, wire
}

// Up sets an interface up.
func (n Node) Up(t *testing.T, dev string) {
	t.Helper()
	l, err := n.H.LinkByName(dev)
	if err == nil {
		err = n.H.LinkSetUp(l)
	}
	if err != nil {
		t.Fatalf("%s: set %s up: %v", n.NS, dev, err)
	}
}

// AddAddr adds an address without duplicate address detection, so that
// IPv6 is usable at once.
func (n Node) AddAddr(t *testing.T, dev string, p netip.Prefix) {
	t.Helper()
	l, err := n.H.LinkByName(dev)
	if err == nil {
		err = n.H.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, Flags: unix.IFA_F_NODAD})
	}
	if err != nil {
		t.Fatalf("%s: add %s to %s: %v", n.NS, p, dev, err)
	}
}

// Run runs a command inside a namespace and returns its combined output.
func Run(ns string, argv ...string) (string, error) {
	var out []byte
	var err error
	derr := kernel.Do(ns, func() error {
		out, err = exec.Command(argv[0], argv[1:]...).CombinedOutput()
		return nil
	})
	return string(out), errors.Join(derr, err)
}

// Capture is tcpdump writing everything on an interface to a file,
// through lab/capture (which returns once tcpdump listens).
type Capture struct {
	File string
	c    *capture.Capture
}

// StartCapture starts tcpdump in a namespace and waits until it listens.
func StartCapture(t *testing.T, ns, dev string) *Capture {
	t.Helper()
	c := &Capture{File: filepath.Join(t.TempDir(), ns+".pcap")}
	var err error
	if c.c, err = capture.Start(context.Background(), ns, capture.Options{Iface: dev, File: c.File}); err != nil {
		t.Fatalf("%s: %v", ns, err)
	}
	t.Cleanup(func() { c.c.Stop() })
	return c
}

// Stop ends the capture once its file has settled (the last replies are
// in) and returns the pcap file's bytes.
func (c *Capture) Stop(t *testing.T) []byte {
	t.Helper()
	c.c.Settle(context.Background(), 300*time.Millisecond, 3*time.Second)
	c.c.Stop()
	b, err := os.ReadFile(c.File)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Lines decodes the capture with tcpdump, one line a packet a BPF filter
// matches.
func (c *Capture) Lines(t *testing.T, filter string) []string {
	t.Helper()
	out, err := exec.Command("tcpdump", "-r", c.File, "-nn", filter).Output()
	if err != nil {
		t.Fatalf("tcpdump -r %s %q: %v", c.File, filter, err)
	}
	return strings.FieldsFunc(string(out), func(r rune) bool { return r == '\n' })
}
