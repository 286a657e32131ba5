package nodes

import (
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// ConfigureInterface sets an existing interface's MTU, MAC and addresses
// and brings it up (unless it is to stay down, or is the loopback), through
// one netlink handle: what the engine does to every interface once it
// exists. Features that configure interfaces themselves later (an MKA
// keeper, after wpa_supplicant adopted its device) use it too.
func (n *Node) ConfigureInterface(i *topo.Interface) error { return n.Configure(false, i) }

// Configure brings the loopback up (loUp) and configures interfaces as
// ConfigureInterface does, all through one netlink handle: a node of plain
// links is one handle, not one per interface.
func (n *Node) Configure(loUp bool, is ...*topo.Interface) error {
	var cmd []string
	if loUp {
		cmd = append(cmd, "link set lo up")
	}
	cfgs := make([]kernel.InterfaceConfig, len(is))
	act := make([]bool, len(is))
	for k, i := range is {
		before := len(cmd)
		if i.MTU > 0 {
			cmd = append(cmd, fmt.Sprintf("link set %s mtu %d", i.Name, i.MTU))
		}
		if i.MAC != nil {
			cmd = append(cmd, fmt.Sprintf("link set %s address %s", i.Name, i.MAC))
		}
		for _, p := range i.Addresses {
			nodad := ""
			if p.Addr().Is6() {
				nodad = " nodad"
			}
			cmd = append(cmd, fmt.Sprintf("addr replace %s dev %s%s", p, i.Name, nodad))
		}
		up := !i.Down && i.Type != topo.TypeLoopback
		if up {
			cmd = append(cmd, "link set "+i.Name+" up")
		}
		cfgs[k] = kernel.InterfaceConfig{MTU: i.MTU, MAC: i.MAC, Addresses: i.Addresses, Up: up}
		act[k] = len(cmd) > before
	}
	if len(cmd) == 0 {
		return nil
	}
	return n.Netlink(strings.Join(cmd, "\n"), func(h *netlink.Handle) error {
		if loUp {
			lo, err := h.LinkByName("lo")
			if err != nil {
				return err
			}
			if err := h.LinkSetUp(lo); err != nil {
				return fmt.Errorf("set lo up: %w", err)
			}
		}
		for k, i := range is {
			if !act[k] {
				continue
			}
			if err := kernel.SetInterface(h, i.Name, cfgs[k]); err != nil {
				return fmt.Errorf("interface %s: %w", i.Name, err)
			}
		}
		return nil
	})
}

// AddRoute adds one static route to the node: ip route replace, as a route
// the kernel already has (a device route) is no error.
func (n *Node) AddRoute(r topo.Route) error {
	return n.Netlink(RouteCommand(r), func(h *netlink.Handle) error { return kernel.RouteReplace(h, KernelRoute(r)) })
}

// KernelRoute is a static route as kernel.RouteReplace takes it.
func KernelRoute(r topo.Route) kernel.Route {
	return kernel.Route{Dst: r.Dst, Via: r.Via, Dev: r.Dev, Metric: r.Metric, Onlink: r.Onlink}
}

// RouteCommand is a static route as ip route replace takes it.
func RouteCommand(r topo.Route) string {
	cmd := "route replace " + r.Dst.String()
	if r.Via.IsValid() {
		cmd += " via " + r.Via.String()
	}
	if r.Dev != "" {
		cmd += " dev " + r.Dev
	}
	if r.Onlink {
		cmd += " onlink"
	}
	if r.Metric != 0 {
		cmd += fmt.Sprintf(" metric %d", r.Metric)
	}
	return cmd + " proto static"
}
