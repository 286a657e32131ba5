package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/probe"
	"github.com/erlab-dev/erlab/lab/topo"
)

// ProbeTarget resolves where a probe stream goes: "NODE" (its first
// address, on a link or else on lo), "NODE:IFACE" (that interface's first
// address) or an address of a node. It returns the address and the node
// that owns it, whose namespace receives the stream.
func ProbeTarget(t *topo.Topology, to string) (netip.Addr, string, error) {
	if a, err := netip.ParseAddr(to); err == nil {
		for _, n := range t.Nodes {
			for _, i := range n.Interfaces {
				for _, p := range i.Addresses {
					if p.Addr() == a {
						return a, n.Name, nil
					}
				}
			}
		}
		return netip.Addr{}, "", fmt.Errorf("no node of lab %s has address %s", t.Name, a)
	}
	name, ifname, _ := strings.Cut(to, ":")
	n := t.Node(name)
	if n == nil {
		return netip.Addr{}, "", fmt.Errorf("%q is neither a node of lab %s nor an address", to, t.Name)
	}
	var fallback netip.Addr
	for _, i := range n.Interfaces {
		if (ifname != "" && i.Name != ifname) || len(i.Addresses) == 0 {
			continue
		}
		if i.Type != topo.TypeLoopback || ifname != "" {
			return i.Addresses[0].Addr(), n.Name, nil
		}
		fallback = i.Addresses[0].Addr()
	}
	if fallback.IsValid() {
		return fallback, n.Name, nil
	}
	return netip.Addr{}, "", fmt.Errorf("node %s has no address%s to probe", name, map[bool]string{true: " on " + ifname, false: ""}[ifname != ""])
}

// Probe runs a probe stream from node from to the target (see ProbeTarget)
// of a deployed lab. The sockets are opened inside the two nodes'
// namespaces; the stream itself runs in this process.
func Probe(ctx context.Context, t *topo.Topology, from, to string, c probe.Config) (probe.Report, error) {
	dst, owner, err := ProbeTarget(t, to)
	if err != nil {
		return probe.Report{}, err
	}
	if t.Node(from) == nil {
		return probe.Report{}, fmt.Errorf("lab %s has no node %q", t.Name, from)
	}
	if c.Port == 0 {
		c.Port = 7777
	}
	addr := probe.ListenAddr(dst, c.Port)
	var conns probe.Conns
	if err := kernel.Do(NetNSName(t.Name, owner), func() (err error) {
		conns.Recv, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		return probe.Report{}, fmt.Errorf("receiver on %s:%s: %w", owner, addr, err)
	}
	if err := kernel.Do(NetNSName(t.Name, from), func() (err error) {
		conns.Send, err = net.Dial("udp", addr)
		return err
	}); err != nil {
		conns.Recv.Close()
		return probe.Report{}, fmt.Errorf("sender on %s to %s: %w", from, addr, err)
	}
	return probe.Run(ctx, c, conns)
}
