package netem

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Impair changes one interface's impairment on a live lab (erlab link
// impair): p replaces whatever its egress had; a zero p clears it.
func Impair(ctx context.Context, l feature.Lab, node, iface string, p Params) error {
	ns, err := l.NetNS(node)
	if err != nil {
		return err
	}
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := h.LinkByName(iface); err != nil {
		links, _ := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
		var names []string
		for _, lk := range links {
			if lk.Attrs().Name != "lo" {
				names = append(names, lk.Attrs().Name)
			}
		}
		slices.SortFunc(names, topo.NaturalCompare)
		return fmt.Errorf("lab %s: node %s has no interface %q (it has: %s)", l.Name(), node, iface, strings.Join(names, ", "))
	}
	l.Log().Info("impair", "node", node, "interface", iface, "impairment", p.String(), "command", Command(iface, p))
	if err := apply(h, iface, p); err != nil {
		return fmt.Errorf("%s:%s: %w", node, iface, err)
	}
	what := "impair"
	if p.Zero() {
		what = "impair-clear"
	}
	l.Record(feature.Event{Node: node, Kind: "action", Object: iface, State: what, Detail: p.String()})
	return nil
}

// Peer is the other end of the link a node's interface is on, from the
// lab's topology.
func Peer(l feature.Lab, node, iface string) (topo.Endpoint, error) {
	t := l.Topology()
	if t == nil {
		return topo.Endpoint{}, fmt.Errorf("lab %s: its topology file is gone: give it with -t to find the other end of %s:%s", l.Name(), node, iface)
	}
	var ends []string
	for _, lk := range t.Links {
		for _, ep := range lk.Ends() {
			ends = append(ends, ep.String())
			if ep.Node == node && ep.Iface == iface {
				return lk.Other(ep), nil
			}
		}
	}
	return topo.Endpoint{}, fmt.Errorf("lab %s: %s:%s is no link end (link ends: %s)", l.Name(), node, iface, strings.Join(ends, ", "))
}

// ParseFlags validates an impairment given on the command line.
func ParseFlags(s ParamsSpec) (Params, error) {
	var r collect
	p, ok := Parse(s, "impair", &r, true)
	if !ok {
		return p, errors.New(strings.Join(r, "; "))
	}
	return p, nil
}

// collect is a topo.Reporter that keeps the messages.
type collect []string

func (c *collect) Errorf(_ topo.Pos, format string, args ...any) {
	*c = append(*c, fmt.Sprintf(format, args...))
}

func (c *collect) LookupEnv(string) (string, bool) { return "", false }

func (c *collect) Warnf(topo.Pos, string, ...any) {}
