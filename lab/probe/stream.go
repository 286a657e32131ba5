package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// Target resolves where a probe stream goes: "NODE" (its first
// address, on a link or else on lo), "NODE:IFACE" (that interface's first
// address) or an address of a node. It returns the address and the node
// that owns it, whose namespace receives the stream.
func Target(t *topo.Topology, to string) (netip.Addr, string, error) {
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
		return netip.Addr{}, "", unknownNode(t, "node (or NODE:IFACE, or address)", to)
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

// Between runs a probe stream from node from to the target (see Target) of
// a deployed lab. The sockets are opened inside the two nodes' namespaces;
// the stream itself runs in this process.
func Between(ctx context.Context, t *topo.Topology, from, to string, c Config) (Report, error) {
	dst, owner, err := Target(t, to)
	if err != nil {
		return Report{}, err
	}
	if t.Node(from) == nil {
		return Report{}, unknownNode(t, "node", from)
	}
	if c.Port == 0 {
		c.Port = 7777
	}
	addr := ListenAddr(dst, c.Port)
	var conns Conns
	if err := kernel.Do(nodes.NetNS(t.Name, owner), func() (err error) {
		conns.Recv, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		return Report{}, fmt.Errorf("receiver on %s:%s: %w", owner, addr, err)
	}
	if err := kernel.Do(nodes.NetNS(t.Name, from), func() (err error) {
		conns.Send, err = net.Dial("udp", addr)
		return err
	}); err != nil {
		conns.Recv.Close()
		return Report{}, fmt.Errorf("sender on %s to %s: %w", from, addr, err)
	}
	return Run(ctx, c, conns)
}

// Flow is one probe stream of Flows: from a node to a target (see
// ProbeTarget).
type Flow struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// FlowReport is what one stream measured, and which way it went: a stream
// is one-way, so loss on the return path does not show in it.
type FlowReport struct {
	Flow
	Address   string `json:"address"`   // where it was sent
	Receiver  string `json:"receiver"`  // the node that received it
	Direction string `json:"direction"` // "one-way"
	Report
}

func (r FlowReport) String() string {
	return fmt.Sprintf("%s → %s (%s), one-way: %s", r.From, r.Receiver, r.Address, r.Report)
}

// Reverse is the flow back: from the node that receives f to f's sender.
func (f Flow) Reverse(t *topo.Topology) (Flow, error) {
	dst, owner, err := Target(t, f.To)
	if err != nil {
		return Flow{}, err
	}
	// To an address on a subnet the sender shares: back to the sender's
	// own address there (the APIPA end of a tunnel, not its first
	// interface), as the two would talk.
	if n := t.Node(f.From); n != nil && f.To == dst.String() {
		for _, i := range n.Interfaces {
			for _, a := range i.Addresses {
				if a.Contains(dst) && a.Addr() != dst {
					return Flow{From: owner, To: a.Addr().String()}, nil
				}
			}
		}
	}
	return Flow{From: owner, To: f.From}, nil
}

// Flows runs several probe streams at once (say a flow and its
// reverse), each on its own port from c.Port up, and reports each.
func Flows(ctx context.Context, t *topo.Topology, flows []Flow, c Config) ([]FlowReport, error) {
	if c.Port == 0 {
		c.Port = 7777
	}
	out := make([]FlowReport, len(flows))
	errs := make([]error, len(flows))
	var wg sync.WaitGroup
	for i, f := range flows {
		dst, owner, err := Target(t, f.To)
		if err != nil {
			return nil, err
		}
		if t.Node(f.From) == nil {
			return nil, unknownNode(t, "node", f.From)
		}
		out[i] = FlowReport{Flow: f, Address: dst.String(), Receiver: owner, Direction: "one-way"}
		fc := c
		fc.Port = c.Port + i
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Report, errs[i] = Between(ctx, t, f.From, f.To, fc)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func nodeNames(t *topo.Topology) []string {
	names := make([]string, len(t.Nodes))
	for i, n := range t.Nodes {
		names[i] = n.Name
	}
	return names
}

// unknownNode says that a name names no node, and which there are.
func unknownNode(t *topo.Topology, what, name string) error {
	return &topo.UnknownError{Lab: t.Name, What: what, Name: name, Known: nodeNames(t)}
}
