package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// baseSysctls are the settings every node gets, each written explicitly:
// a new namespace takes its IPv4 settings from the host's (and, with
// net.core.devconf_inherit_init_net, its IPv6 ones too), so a host where
// dockerd set ip_forward=1 would otherwise hand forwarding to every node,
// and one with rp_filter on would drop the asymmetric paths of a failover.
//
// A node with IPv6 addresses gets two more. No duplicate address
// detection on a lab's links: addresses are unique by validation, and DAD
// holds even the kernel's own link-local addresses tentative for a second
// or two, so IPv6 would not work yet when deploy returns (a device's DAD
// is the larger of all's, 0 by default, and its own, from default's).
// And IPv6 addresses stay on an interface set down, as IPv4 ones do, so
// that a pulled link comes back with its addresses (all's is enough).
// A node's own sysctls, written later, may change any of these.
func baseSysctls(n *topo.Node) [][2]string {
	fwd := "0"
	if n.Forward {
		fwd = "1"
	}
	kv := [][2]string{
		{"net.ipv4.ip_forward", fwd}, {"net.ipv6.conf.all.forwarding", fwd}, {"net.ipv6.conf.default.forwarding", fwd},
		{"net.ipv4.conf.all.rp_filter", "0"}, {"net.ipv4.conf.default.rp_filter", "0"},
		{"net.ipv6.conf.all.disable_ipv6", "0"}, {"net.ipv6.conf.default.disable_ipv6", "0"},
	}
	if hasIPv6(n) {
		kv = append(kv, [2]string{"net.ipv6.conf.all.accept_dad", "0"}, [2]string{"net.ipv6.conf.default.accept_dad", "0"},
			[2]string{"net.ipv6.conf.all.keep_addr_on_down", "1"})
	}
	return kv
}

func hasIPv6(n *topo.Node) bool {
	for _, i := range n.Interfaces {
		for _, p := range i.Addresses {
			if p.Addr().Is6() {
				return true
			}
		}
	}
	return false
}

// sysctl writes sysctls in a node: sysctl -w KEY=VALUE ...
func sysctl(n *nodes.Node, kv [][2]string) error {
	cmd := make([]string, len(kv))
	for i, s := range kv {
		cmd[i] = "sysctl -w " + s[0] + "=" + kernel.Quote(s[1])
	}
	return n.Do(strings.Join(cmd, "\n"), func() error { return kernel.SysctlWrite(kv) })
}

// makeNamespace makes the node's network namespace — or has its kind bring
// its own (a container's) — with the settings every node gets.
func (d *deployment) makeNamespace(ctx context.Context, n *nodes.Node, kind nodes.Kind) error {
	if m, ok := kind.(nodes.NamespaceMaker); ok {
		if err := m.MakeNamespace(ctx, n); err != nil {
			return fmt.Errorf("node %s: %w", n.Spec.Name, err)
		}
	} else if err := n.Ops.Host("ip netns add "+n.NetNS, func() error { return kernel.NetNSAdd(n.NetNS) }); err != nil {
		return fmt.Errorf("node %s: %w", n.Spec.Name, err)
	}
	base := baseSysctls(n.Spec)
	if _, own := kind.(nodes.NamespaceMaker); !own && !d.opts.dry() {
		base = d.unlikeFresh(n, base)
	}
	if err := sysctl(n, base); err != nil {
		return fmt.Errorf("node %s: %w", n.Spec.Name, err)
	}
	return nil
}

// unlikeFresh leaves out of kv what a namespace erlab has just made
// already has (see deployment.fresh). The first node's namespace is read
// for all; a sysctl it cannot read is written.
func (d *deployment) unlikeFresh(n *nodes.Node, kv [][2]string) [][2]string {
	d.freshOnce.Do(func() {
		keys := make([]string, len(kv))
		for i, s := range kv {
			keys[i] = s[0]
		}
		kernel.Do(n.NetNS, func() error { d.fresh = kernel.SysctlRead(keys); return nil })
	})
	var out [][2]string
	for _, s := range kv {
		if v, ok := d.fresh[s[0]]; !ok || v != s[1] {
			out = append(out, s)
		}
	}
	return out
}

// makeLink creates the veth pair straight into both namespaces, so no
// temporary name ever exists in the host's namespace (two labs, or two links
// at once, cannot collide there): ip link add A netns NS_A type veth peer B netns NS_B.
//
// The A end gets an interface index of its own (firstLinkIndex + i), far
// from the small ones the kernel hands out, so that it never equals its
// peer's index in the other namespace. The kernel treats a carrier change on
// a device whose index differs from its peer link's as urgent; with equal
// indexes it batches the event for up to a second, and until it is handled
// bridge ports do not forward and IPv6 does not use the link.
func (d *deployment) makeLink(l *topo.Link, i int) error {
	a, b := d.nodes[l.A.Node], d.nodes[l.B.Node]
	cmd := fmt.Sprintf("link add %s index %d type veth peer name %s netns %s", l.A.Iface, firstLinkIndex+i, l.B.Iface, b.NetNS)
	return a.Netlink(cmd, func(h *netlink.Handle) error {
		peer, err := kernel.Open(b.NetNS)
		if err != nil {
			return err
		}
		defer peer.Close()
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: l.A.Iface, Index: firstLinkIndex + i},
			PeerName:      l.B.Iface,
			PeerNamespace: netlink.NsFd(peer),
		}
		if err := kernel.Retry(func() error { return h.LinkAdd(veth) }); err != nil {
			return fmt.Errorf("create veth %s<->%s: %w", l.A, l.B, err)
		}
		return nil
	})
}

// firstLinkIndex is the interface index of the first link's A end.
const firstLinkIndex = 100000

// configureInterfaces brings a node's interfaces to what the topology says,
// parents first: each feature makes the devices it owns (a VLAN, an encrypting
// device), every feature may prepare any interface before it comes up, and
// the engine sets its MTU, MAC, addresses and state. What a feature
// configures itself later (DeferHook) is left alone. The node's own
// sysctls come after, as some name its interfaces.
func (d *deployment) configureInterfaces(ctx context.Context, n *nodes.Node) error {
	defers := hooks[feature.DeferHook](d.opts)
	prepares := hooks[feature.PrepareHook](d.opts)
	ifaces := n.Spec.ParentsFirst()
	// A node whose interfaces are all the engine's (veth ends, the
	// loopback) is configured through one netlink handle, after every
	// feature has prepared them.
	plain := true
	for _, i := range ifaces {
		plain = plain && i.Owner == "" && !deferred(defers, n.Spec, i)
	}
	if plain {
		for _, i := range ifaces {
			for _, p := range prepares {
				if err := p.PrepareInterface(ctx, n, i); err != nil {
					return fmt.Errorf("node %s: interface %s: %w", n.Spec.Name, i.Name, err)
				}
			}
		}
		if err := n.Configure(true, ifaces...); err != nil {
			return fmt.Errorf("node %s: %w", n.Spec.Name, err)
		}
		return d.nodeSysctls(n)
	}
	if err := n.Configure(true); err != nil {
		return fmt.Errorf("node %s: %w", n.Spec.Name, err)
	}
	for _, i := range ifaces {
		if deferred(defers, n.Spec, i) {
			continue
		}
		if i.Owner != "" {
			dh, ok := d.opts.featureNamed(i.Owner).(feature.DeviceHook)
			if !ok {
				return fmt.Errorf("node %s: interface %s: feature %s makes no devices", n.Spec.Name, i.Name, i.Owner)
			}
			if err := dh.MakeDevice(ctx, n, i); err != nil {
				return fmt.Errorf("node %s: interface %s: %w", n.Spec.Name, i.Name, err)
			}
		}
		for _, p := range prepares {
			if err := p.PrepareInterface(ctx, n, i); err != nil {
				return fmt.Errorf("node %s: interface %s: %w", n.Spec.Name, i.Name, err)
			}
		}
		if err := n.ConfigureInterface(i); err != nil {
			return fmt.Errorf("node %s: interface %s: %w", n.Spec.Name, i.Name, err)
		}
	}
	return d.nodeSysctls(n)
}

// nodeSysctls writes the node's own sysctls.
func (d *deployment) nodeSysctls(n *nodes.Node) error {
	if len(n.Spec.Sysctls) == 0 {
		return nil
	}
	var kv [][2]string
	for _, s := range n.Spec.Sysctls {
		kv = append(kv, [2]string{s.Key, s.Value})
	}
	if err := sysctl(n, kv); err != nil {
		return fmt.Errorf("node %s: %w", n.Spec.Name, err)
	}
	return nil
}

func deferred(defers []feature.DeferHook, n *topo.Node, i *topo.Interface) bool {
	for _, h := range defers {
		if h.DefersInterface(n, i) {
			return true
		}
	}
	return false
}

// addRoutes adds the node's static routes (those a feature does not add
// itself): ip route replace, as a route the kernel already has (a device
// route) is no error.
func (d *deployment) addRoutes(n *nodes.Node) error {
	defers := hooks[feature.DeferHook](d.opts)
	for _, r := range n.Spec.Routes {
		skip := false
		for _, h := range defers {
			skip = skip || h.DefersRoute(n.Spec, r)
		}
		if skip {
			continue
		}
		if err := n.AddRoute(r); err != nil {
			return fmt.Errorf("node %s: route %s: %w", n.Spec.Name, r.Dst, err)
		}
	}
	return nil
}

// LinkUpTimeout bounds how long deploy waits for links to come up.
const LinkUpTimeout = 10 * time.Second

// waitUp waits until every interface of the node that should carry traffic
// is operationally up. The kernel tells the bridge and IPv6 about carrier
// through linkwatch, a little after the link is set up; until then a bridge
// port does not forward and IPv6 does not use the link, so a lab is not
// ready when its last netlink call returns. The wait listens to the node's
// link events (netlink), it does not poll.
func (d *deployment) waitUp(ctx context.Context, n *nodes.Node) error {
	var want []string
	defers := hooks[feature.DeferHook](d.opts)
	for _, i := range n.Spec.Interfaces {
		if d.shouldBeUp(defers, n.Spec, i) {
			want = append(want, i.Name)
		}
	}
	if len(want) == 0 {
		return nil
	}
	return n.Wait(strings.Join(want, ", ")+" up", func() error {
		// They are usually up already: a look is cheaper than a watch.
		var down []string
		err := kernel.WithHandle(n.Ops, n.NetNS, func(h *netlink.Handle) (err error) {
			down, err = kernel.NotOperUp(h, want)
			return err
		})
		if err == nil && len(down) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, LinkUpTimeout)
		defer cancel()
		down, err = kernel.WaitOperUp(ctx, n.NetNS, want)
		if len(down) > 0 && ctx.Err() != nil {
			return fmt.Errorf("node %s: %s did not come up within %s", n.Spec.Name, strings.Join(down, ", "), LinkUpTimeout)
		}
		return err
	})
}

// shouldBeUp says whether an interface will carry traffic once deployed: it
// is not set down, nor configured later by a feature, and neither is the
// far end of its link, nor its parent.
func (d *deployment) shouldBeUp(defers []feature.DeferHook, n *topo.Node, i *topo.Interface) bool {
	if i == nil || i.Down || deferred(defers, n, i) {
		return false
	}
	switch {
	case i.Type == topo.TypeVeth:
		far := i.Link.Other(topo.Endpoint{Node: n.Name, Iface: i.Name})
		return !d.t.Node(far.Node).Interface(far.Iface).Down && !d.stopped[far.Node]
	case i.Type == topo.TypeHostVeth: // the host's end is brought up with the link
		return true
	case i.Parent != "":
		return d.shouldBeUp(defers, n, n.Interface(i.Parent))
	}
	return false
}

// prefixToIPNet is a prefix as the netlink library takes it.
func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// isGone says whether err means the object does not exist.
func isGone(err error) bool { return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) }
