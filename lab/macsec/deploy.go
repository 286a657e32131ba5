package macsec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/macsec/genl"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// KernelMACsec is the kernel feature MACsec needs.
var KernelMACsec = &kernel.Feature{Name: "MACsec", Option: "CONFIG_MACSEC", Probe: func(h *netlink.Handle) error {
	parent, err := kernel.ProbeParent(h)
	if err != nil {
		return err
	}
	return h.LinkAdd(&netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: kernel.ProbeName("pm"), ParentIndex: parent.Attrs().Index}, LinkType: "macsec"})
}}

// KernelFeatures implements feature.KernelHook.
func (Feature) KernelFeatures() []*kernel.Feature { return []*kernel.Feature{KernelMACsec} }

// Needs implements feature.KernelHook: every MACsec device.
func (Feature) Needs(t *topo.Topology) []kernel.Need {
	var where []string
	for _, n := range t.Nodes {
		for _, i := range n.Interfaces {
			if OfDevice(i) != nil {
				where = append(where, n.Name+":"+i.Name)
			}
		}
	}
	return kernel.Needs(map[*kernel.Feature][]string{KernelMACsec: where}, KernelMACsec)
}

// PrepareInterface implements feature.PrepareHook. MACsec covers
// everything on the device it sits on: that device (the port, or its
// subinterface, and what is between) must send nothing in clear, and IPv6
// would (router solicitations, MLD). Off before it comes up.
func (Feature) PrepareInterface(_ context.Context, n *nodes.Node, i *topo.Interface) error {
	if !under(n.Spec, i) {
		return nil
	}
	key := "net/ipv6/conf/" + i.Name + "/disable_ipv6"
	return n.Do("sysctl -w "+key+"=1", func() error { return kernel.SysctlWrite([][2]string{{key, "1"}}) })
}

// under says whether a MACsec device sits, directly or through others, on
// the interface.
func under(n *topo.Node, i *topo.Interface) bool {
	for _, m := range n.Interfaces {
		if OfDevice(m) != nil && (m.Parent == i.Name || n.Above(n.Interface(m.Parent), i.Name)) {
			return true
		}
	}
	return false
}

// MakeDevice implements feature.DeviceHook: one end of a link's MACsec with
// static keys — the device on the port (or subinterface), its transmit SA
// with this end's key, and a receive channel and SA for the peer with the
// peer's key. The association number is 0 and packet numbers start at 1:
// ip link add link PORT NAME type macsec port 1 cipher C encrypt on ...;
// ip macsec add NAME tx sa 0 pn 1 on key ID KEY; ip macsec add NAME rx sci
// PEER; ip macsec add NAME rx sci PEER sa 0 pn 1 on key ID KEY. (A link
// keyed by MKA is package mka's, which defers its devices.)
func (Feature) MakeDevice(_ context.Context, n *nodes.Node, i *topo.Interface) error {
	m := OfDevice(i)
	self := i.Link.A
	txKey, rxKey, selfSSCI, peerSSCI, peerMAC := m.KeyA, m.KeyB, uint32(1), uint32(2), m.MACs[1]
	if !(self.Node == n.Spec.Name && m.Lower(self.Iface) == i.Parent) {
		txKey, rxKey, selfSSCI, peerSSCI, peerMAC = rxKey, txKey, peerSSCI, selfSSCI, m.MACs[0]
	}
	cipher, err := genl.ParseCipher(m.Cipher)
	if err != nil {
		return err
	}
	validate := map[string]genl.Validation{"strict": genl.ValidateStrict, "check": genl.ValidateCheck, "disabled": genl.ValidateDisabled}[m.Validate]
	peerSCI := genl.MakeSCI(peerMAC, 1)
	sa := func(key []byte, ssci uint32) genl.SA { return StaticSA(cipher, 0, key, ssci) }
	cmd := fmt.Sprintf("link add link %s %s type macsec port 1 cipher %s encrypt %s replay %s window %d validate %s send_sci %s\n",
		i.Parent, i.Name, m.Cipher, onOff(m.Encrypt), onOff(m.ReplayProtect), m.Window, m.Validate, onOff(m.IncludeSCI)) +
		fmt.Sprintf("macsec add %s tx sa 0 pn 1 on key [key id] [key]\n", i.Name) +
		fmt.Sprintf("macsec add %s rx sci %s\n", i.Name, peerSCI) +
		fmt.Sprintf("macsec add %s rx sci %s sa 0 pn 1 on key [key id] [key]", i.Name, peerSCI)
	return n.Netlink(cmd, func(h *netlink.Handle) error {
		parent, err := h.LinkByName(i.Parent)
		if err != nil {
			return fmt.Errorf("find %s: %w", i.Parent, err)
		}
		cfg := genl.LinkConfig{Name: i.Name, ParentIndex: parent.Attrs().Index, Port: 1, Cipher: cipher, Encrypt: m.Encrypt,
			IncludeSCI: m.IncludeSCI, ReplayProtect: m.ReplayProtect, Window: m.Window, Validate: validate}
		return With(n.NetNS, func(cl *genl.Client, conn *mdnetlink.Conn) error {
			if err := genl.LinkAdd(conn, cfg); err != nil {
				return err
			}
			dev, err := h.LinkByName(i.Name)
			if err != nil {
				return err
			}
			idx := dev.Attrs().Index
			if err := cl.AddTxSA(idx, sa(txKey, selfSSCI)); err != nil {
				return err
			}
			if err := cl.AddRxSC(idx, peerSCI); err != nil {
				return err
			}
			return cl.AddRxSA(idx, peerSCI, sa(rxKey, peerSSCI))
		})
	})
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// derive makes a per-key value both ends compute alike from the SAK they
// share: the key identifier and, for XPN suites, the salt. Neither reveals
// the key (a hash of a random 128- or 256-bit key).
func derive(label string, key []byte, n int) []byte {
	sum := sha256.Sum256(append([]byte("erlab "+label+" "), key...))
	return sum[:n]
}

// KeyID is the identifier erlab gives a static SAK: what inspect shows
// instead of the key.
func KeyID(key []byte) string { return hex.EncodeToString(derive("key id", key, genl.KeyIDLen)) }

// StaticSA is an association for a static SAK: active, from packet number
// 1, with the key ID (and, for XPN, the salt) both ends derive from the key.
func StaticSA(cipher genl.Cipher, an uint8, key []byte, ssci uint32) genl.SA {
	s := genl.SA{AN: an, Active: true, PN: 1, Key: key, XPN: cipher.XPN(), SSCI: ssci}
	copy(s.KeyID[:], derive("key id", key, genl.KeyIDLen))
	copy(s.Salt[:], derive("salt", key, genl.SaltLen))
	return s
}

// With runs fn with a macsec client and a route netlink connection opened
// inside a namespace.
func With(ns string, fn func(*genl.Client, *mdnetlink.Conn) error) error {
	return kernel.Do(ns, func() error {
		cl, err := genl.Dial()
		if err != nil {
			return err
		}
		defer cl.Close()
		conn, err := mdnetlink.Dial(unix.NETLINK_ROUTE, nil)
		if err != nil {
			return err
		}
		defer conn.Close()
		return fn(cl, conn)
	})
}
