package kernel

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Feature is a kernel capability a lab may need: its name, the kernel
// option that provides it, and how to try it for real. The engine's own
// (veth, bridge) are here; each feature package declares those it needs.
// Features are compared by pointer: declare each once, as a package
// variable.
type Feature struct {
	Name   string
	Option string
	// Probe tries the feature in a throwaway namespace, through h (route
	// and XFRM netlink): nil when the kernel has it.
	Probe func(h *netlink.Handle) error
}

func (f *Feature) String() string { return f.Name }

// Need is a kernel feature a topology needs, and where.
type Need struct {
	Feature *Feature
	Where   []string // node:iface or node
}

// The engine's own features.
var (
	Veth = &Feature{Name: "veth", Option: "CONFIG_VETH", Probe: func(h *netlink.Handle) error {
		_, err := ProbeParent(h)
		return err
	}}
	Bridge = &Feature{Name: "bridge", Option: "CONFIG_BRIDGE", Probe: func(h *netlink.Handle) error {
		return h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: ProbeName("pb")}})
	}}
)

// Probe tries each feature for real in a throwaway network namespace — the
// only honest test on a kernel that may load modules on demand — and returns
// the reason for each missing one. The namespace is never named, so nothing
// is left behind even if the process dies mid-probe.
func Probe(features []*Feature) (missing map[*Feature]error, err error) {
	missing = map[*Feature]error{}
	h, err := throwawayHandle()
	if err != nil {
		return nil, fmt.Errorf("probe kernel: %w", err)
	}
	defer h.Close()
	done := map[*Feature]bool{}
	for _, f := range features {
		if done[f] {
			continue
		}
		done[f] = true
		if perr := f.Probe(h); perr != nil {
			missing[f] = perr
		}
	}
	return missing, nil
}

// throwawayHandle opens route and xfrm netlink sockets in a new, unnamed
// namespace. The sockets keep the namespace alive until they are closed.
func throwawayHandle() (h *netlink.Handle, err error) {
	err = InNewNetNS(func() error {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE, unix.NETLINK_XFRM)
		return err
	})
	return h, err
}

var probeSeq struct {
	sync.Mutex
	n int
}

// ProbeName is a device name unique in the probe's namespace.
func ProbeName(prefix string) string {
	probeSeq.Lock()
	defer probeSeq.Unlock()
	probeSeq.n++
	return fmt.Sprintf("%s%d", prefix, probeSeq.n)
}

// ProbeParent makes a veth pair in the probe's namespace to hang devices on.
func ProbeParent(h *netlink.Handle) (netlink.Link, error) {
	name := ProbeName("pv")
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		return nil, err
	}
	return h.LinkByName(name)
}

// IsUnsupported reports whether err is how the kernel says it lacks a
// device type, qdisc or algorithm.
func IsUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPROTONOSUPPORT)
}

// Needs turns a map of where each feature is needed into a list, in the
// order given, leaving out what is not needed.
func Needs(where map[*Feature][]string, order ...*Feature) []Need {
	var out []Need
	for _, f := range order {
		if w := where[f]; len(w) > 0 {
			out = append(out, Need{Feature: f, Where: w})
		}
	}
	return out
}
