package kernel

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Feature is a kernel capability a lab may need.
type Feature string

// The features erlab probes for. Each maps to the kernel option that
// provides it (see FeatureOption).
const (
	FeatVeth       Feature = "veth"
	FeatBridge     Feature = "bridge"
	FeatVLAN       Feature = "802.1Q VLAN"
	FeatQinQ       Feature = "802.1ad VLAN (QinQ)"
	FeatBridgeVLAN Feature = "bridge VLAN filtering"
	FeatMACsec     Feature = "MACsec"
	FeatESP        Feature = "ESP with AES-GCM"
	FeatXfrmi      Feature = "XFRM interfaces"
	FeatNetem      Feature = "netem"
)

// AllFeatures lists every feature in the order erlab reports them.
var AllFeatures = []Feature{FeatVeth, FeatBridge, FeatVLAN, FeatQinQ, FeatBridgeVLAN, FeatMACsec, FeatESP, FeatXfrmi, FeatNetem}

var featureOptions = map[Feature]string{
	FeatVeth:       "CONFIG_VETH",
	FeatBridge:     "CONFIG_BRIDGE",
	FeatVLAN:       "CONFIG_VLAN_8021Q",
	FeatQinQ:       "CONFIG_VLAN_8021Q",
	FeatBridgeVLAN: "CONFIG_BRIDGE_VLAN_FILTERING",
	FeatMACsec:     "CONFIG_MACSEC",
	FeatESP:        "CONFIG_INET_ESP, CONFIG_CRYPTO_GCM",
	FeatXfrmi:      "CONFIG_XFRM_INTERFACE",
	FeatNetem:      "CONFIG_NET_SCH_NETEM",
}

// FeatureOption names the kernel configuration option behind a feature.
func FeatureOption(f Feature) string { return featureOptions[f] }

// Probe tries each feature for real in a throwaway network namespace — the
// only honest test on a kernel that may load modules on demand — and returns
// the reason for each missing one. The namespace is never named, so nothing
// is left behind even if the process dies mid-probe.
func Probe(features []Feature) (missing map[Feature]error, err error) {
	missing = map[Feature]error{}
	h, err := throwawayHandle()
	if err != nil {
		return nil, fmt.Errorf("probe kernel: %w", err)
	}
	defer h.Close()
	done := map[Feature]bool{}
	for _, f := range features {
		if done[f] {
			continue
		}
		done[f] = true
		if perr := probes[f](h); perr != nil {
			missing[f] = perr
		}
	}
	return missing, nil
}

// throwawayHandle opens route and xfrm netlink sockets in a new, unnamed
// namespace. The sockets keep the namespace alive until they are closed.
func throwawayHandle() (*netlink.Handle, error) {
	type result struct {
		h   *netlink.Handle
		err error
	}
	resc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			resc <- result{err: fmt.Errorf("unshare: %w", err)}
			return
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE, unix.NETLINK_XFRM)
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		resc <- result{h, err}
	}()
	r := <-resc
	return r.h, r.err
}

var probeSeq struct {
	sync.Mutex
	n int
}

func probeName(prefix string) string {
	probeSeq.Lock()
	defer probeSeq.Unlock()
	probeSeq.n++
	return fmt.Sprintf("%s%d", prefix, probeSeq.n)
}

// vethParent makes a veth pair to hang subinterfaces on.
func vethParent(h *netlink.Handle) (netlink.Link, error) {
	name := probeName("pv")
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		return nil, err
	}
	return h.LinkByName(name)
}

var probes = map[Feature]func(h *netlink.Handle) error{
	FeatVeth: func(h *netlink.Handle) error {
		_, err := vethParent(h)
		return err
	},
	FeatBridge: func(h *netlink.Handle) error {
		return h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: probeName("pb")}})
	},
	FeatVLAN: func(h *netlink.Handle) error {
		return probeVLAN(h, netlink.VLAN_PROTOCOL_8021Q)
	},
	FeatQinQ: func(h *netlink.Handle) error {
		return probeVLAN(h, netlink.VLAN_PROTOCOL_8021AD)
	},
	FeatBridgeVLAN: func(h *netlink.Handle) error {
		on := true
		return h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: probeName("pb")}, VlanFiltering: &on})
	},
	FeatMACsec: func(h *netlink.Handle) error {
		parent, err := vethParent(h)
		if err != nil {
			return err
		}
		return h.LinkAdd(&netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: probeName("pm"), ParentIndex: parent.Attrs().Index}, LinkType: "macsec"})
	},
	FeatESP: func(h *netlink.Handle) error {
		// The same state `ip xfrm state add ... aead 'rfc4106(gcm(aes))'`
		// makes: it needs both ESP and the GCM template.
		return h.XfrmStateAdd(&netlink.XfrmState{
			Src: net.ParseIP("192.0.2.1"), Dst: net.ParseIP("192.0.2.2"),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Spi: 0x100,
			Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: make([]byte, 20), ICVLen: 128},
		})
	},
	FeatXfrmi: func(h *netlink.Handle) error {
		return h.LinkAdd(&netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: probeName("px")}, Ifid: 7})
	},
	FeatNetem: func(h *netlink.Handle) error {
		parent, err := vethParent(h)
		if err != nil {
			return err
		}
		return h.QdiscAdd(netlink.NewNetem(
			netlink.QdiscAttrs{LinkIndex: parent.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			netlink.NetemQdiscAttrs{Latency: 1000}))
	},
}

func probeVLAN(h *netlink.Handle, proto netlink.VlanProtocol) error {
	parent, err := vethParent(h)
	if err != nil {
		return err
	}
	return h.LinkAdd(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: probeName("pq"), ParentIndex: parent.Attrs().Index}, VlanId: 10, VlanProtocol: proto})
}

// IsUnsupported reports whether err is how the kernel says it lacks a
// device type, qdisc or algorithm.
func IsUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPROTONOSUPPORT)
}
