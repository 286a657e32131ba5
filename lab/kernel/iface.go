package kernel

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SysctlWrite writes sysctls in the namespace of the calling thread (run it
// through Ops.Do): sysctl -w KEY=VALUE.
func SysctlWrite(kv [][2]string) error {
	for _, s := range kv {
		if err := os.WriteFile(SysctlPath(s[0]), []byte(s[1]), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", s[0], s[1], err)
		}
	}
	return nil
}

// InterfaceConfig is what SetInterface sets on an interface.
type InterfaceConfig struct {
	MTU       int // 0: leave it
	MAC       net.HardwareAddr
	Addresses []netip.Prefix
	Up        bool
}

// SetInterface sets an interface's MTU, MAC and addresses and brings it up:
// ip link set NAME mtu M address A; ip addr replace P dev NAME; ip link set
// NAME up. IPv6 addresses skip duplicate address detection (IFA_F_NODAD):
// addresses are unique by validation, and DAD would hold them tentative.
func SetInterface(h *netlink.Handle, name string, c InterfaceConfig) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	if c.MTU > 0 && link.Attrs().MTU != c.MTU {
		if err := h.LinkSetMTU(link, c.MTU); err != nil {
			return fmt.Errorf("set mtu %d: %w", c.MTU, err)
		}
	}
	if c.MAC != nil {
		if err := h.LinkSetHardwareAddr(link, c.MAC); err != nil {
			return fmt.Errorf("set mac %s: %w", c.MAC, err)
		}
	}
	for _, p := range c.Addresses {
		a := &netlink.Addr{IPNet: IPNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, a); err != nil {
			return fmt.Errorf("add address %s: %w", p, err)
		}
	}
	if c.Up {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set up: %w", err)
		}
	}
	return nil
}

// Route is a static route as RouteReplace adds it.
type Route struct {
	Dst    netip.Prefix
	Via    netip.Addr // invalid for a device route
	Dev    string
	Metric int
	Onlink bool
}

// RouteReplace adds or replaces a static route: ip route replace DST [via
// GW] [dev DEV] [onlink] [metric M] proto static. A route the kernel
// already has (a device route) is not an error.
func RouteReplace(h *netlink.Handle, r Route) error {
	route := &netlink.Route{Dst: IPNet(r.Dst), Priority: r.Metric, Protocol: unix.RTPROT_STATIC}
	if r.Via.IsValid() {
		route.Gw = net.IP(r.Via.AsSlice())
	}
	if r.Dev != "" {
		link, err := h.LinkByName(r.Dev)
		if err != nil {
			return fmt.Errorf("find dev %s: %w", r.Dev, err)
		}
		route.LinkIndex = link.Attrs().Index
	}
	if r.Onlink {
		route.Flags |= int(netlink.FLAG_ONLINK)
	}
	if !r.Via.IsValid() {
		route.Scope = netlink.SCOPE_LINK
	}
	return h.RouteReplace(route)
}

// IPNet is a prefix as the netlink library takes it.
func IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// NotOperUp returns those of the named links that are not operationally
// up, from one dump: ip -br link show.
func NotOperUp(h *netlink.Handle, names []string) ([]string, error) {
	links, err := Dump(h.LinkList)
	if err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for _, l := range links {
		up[l.Attrs().Name] = l.Attrs().OperState == netlink.OperUp
	}
	var down []string
	for _, n := range names {
		if !up[n] {
			down = append(down, n)
		}
	}
	return down, nil
}

// WaitOperUp waits, listening to the namespace's link events, until every
// named interface is operationally up, and returns those that are not when
// ctx ends first.
func WaitOperUp(ctx context.Context, ns string, names []string) (down []string, err error) {
	nsh, err := Open(ns)
	if err != nil {
		return names, err
	}
	defer nsh.Close()
	// Subscribe first, then list: no change between the two is missed.
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	var subErr error
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace: &nsh, ListExisting: true,
		ErrorCallback: func(err error) { subErr = err },
	}); err != nil {
		return names, fmt.Errorf("watch links in %s: %w", ns, err)
	}
	up := map[string]bool{}
	left := func() []string {
		var out []string
		for _, n := range names {
			if !up[n] {
				out = append(out, n)
			}
		}
		return out
	}
	for {
		if l := left(); len(l) == 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return left(), ctx.Err()
		case u, ok := <-updates:
			if !ok {
				return left(), fmt.Errorf("watch links in %s: %v", ns, subErr)
			}
			if u.Header.Type == unix.RTM_DELLINK {
				delete(up, u.Attrs().Name)
				continue
			}
			up[u.Attrs().Name] = u.Attrs().OperState == netlink.OperUp
		}
	}
}

// SysctlRead reads sysctls on the calling thread's namespace (see Do):
// sysctl -n KEY ...; a key that cannot be read is left out.
func SysctlRead(keys []string) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		if b, err := os.ReadFile(SysctlPath(k)); err == nil {
			out[k] = strings.TrimSpace(string(b))
		}
	}
	return out
}
