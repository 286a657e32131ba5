package lab

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// GraphFormats are the formats Graph writes.
var GraphFormats = []string{"mermaid", "dot"}

// Graph writes the topology's nodes and links, with interface names, as a
// Mermaid flowchart or a Graphviz graph.
func Graph(w io.Writer, t *topo.Topology, format string) error {
	return FromTopology(t, Options{}).Graph(w, format)
}

// LinksView is graph's own view: the nodes and their links.
const LinksView = "links"

// GraphViews are the views graph draws: its own, then the features'.
func GraphViews(opts Options) []string {
	out := []string{LinksView}
	for _, h := range hooks[feature.ViewHook](&opts) {
		out = append(out, h.Views()...)
	}
	return out
}

// GraphView writes one view of the topology (LinksView, or a feature's:
// "circuits" for an ExpressRoute declaration).
func GraphView(w io.Writer, t *topo.Topology, view, format string, opts Options) error {
	if view == "" || view == LinksView {
		return FromTopology(t, opts).Graph(w, format)
	}
	if !slices.Contains(GraphFormats, format) {
		return fmt.Errorf("unknown graph format %q (%s)", format, strings.Join(GraphFormats, ", "))
	}
	for _, h := range hooks[feature.ViewHook](&opts) {
		if slices.Contains(h.Views(), view) {
			return h.DrawView(w, t, view, format)
		}
	}
	return fmt.Errorf("unknown graph view %q (%s)", view, strings.Join(GraphViews(opts), ", "))
}

// Graph writes the lab's topology as a graph (see the package function).
func (l *Lab) Graph(w io.Writer, format string) error {
	t, err := l.needTopology("graph")
	if err != nil {
		return err
	}
	g := grapher{t: t, opts: &l.opts}
	switch format {
	case "mermaid":
		return g.mermaid(w)
	case "dot":
		return g.dot(w)
	}
	return fmt.Errorf("unknown graph format %q (%s)", format, strings.Join(GraphFormats, ", "))
}

func nodeLabel(n *topo.Node) string {
	var addrs []string
	for _, i := range n.Interfaces {
		if i.Type == topo.TypeLoopback {
			for _, a := range i.Addresses {
				addrs = append(addrs, a.String())
			}
		}
	}
	label := n.Name + " (" + n.Kind + ")"
	if len(addrs) > 0 {
		label += " " + strings.Join(addrs, " ")
	}
	return label
}

type grapher struct {
	t    *topo.Topology
	opts *Options
}

// shape says how a node is drawn: "switch" or "".
func (g grapher) shape(n *topo.Node) string {
	kind, _ := g.opts.kinds().Get(n.Kind)
	if s, ok := kind.(nodes.Shaper); ok {
		return s.Shape()
	}
	return ""
}

// linkLabel names both ends and, where they have them, their addresses.
func (g grapher) linkLabel(l *topo.Link) (string, string) {
	t := g.t
	labels := hooks[feature.GraphHook](g.opts)
	end := func(ep topo.Endpoint) string {
		n := t.Node(ep.Node)
		s := ep.Iface
		if i := n.Interface(ep.Iface); i != nil && len(i.Addresses) > 0 {
			s += " " + i.Addresses[0].String()
		}
		// What is stacked on the end, at any depth, as its feature names it
		// (a VLAN with its tags, an encrypting device), with its first address.
		for _, i := range n.Interfaces {
			if !n.Above(i, ep.Iface) {
				continue
			}
			s += " · " + stackedLabel(labels, n, i)
			if len(i.Addresses) > 0 {
				s += " " + i.Addresses[0].String()
			}
		}
		return s
	}
	return end(l.A), end(l.B)
}

// mermaidID makes a node name safe as a Mermaid identifier (names may hold
// '-', which Mermaid reads as an edge).
func mermaidID(name string) string { return "n_" + strings.ReplaceAll(name, "-", "_") }

func (g grapher) mermaid(w io.Writer) error {
	t := g.t
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: %s\n---\ngraph LR\n", t.Name)
	for _, n := range t.Nodes {
		shape := `["%s"]`
		if g.shape(n) == "switch" {
			shape = `{{"%s"}}`
		}
		fmt.Fprintf(&b, "  %s"+shape+"\n", mermaidID(n.Name), nodeLabel(n))
	}
	for _, l := range t.Links {
		a, z := g.linkLabel(l)
		fmt.Fprintf(&b, "  %s ---|\"%s — %s\"| %s\n", mermaidID(l.A.Node), a, z, mermaidID(l.B.Node))
	}
	// The host's namespace, where host links end: an id no node's can be.
	if len(t.HostLinks) > 0 {
		b.WriteString("  h__host[(\"the host\")]\n")
	}
	for _, hl := range t.HostLinks {
		fmt.Fprintf(&b, "  %s ---|\"%s — %s\"| h__host\n", mermaidID(hl.End.Node), hl.End.Iface, hl.HostIface)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (g grapher) dot(w io.Writer) error {
	t := g.t
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n  rankdir=LR;\n  node [shape=box];\n", strconv.Quote(t.Name))
	for _, n := range t.Nodes {
		shape := ""
		if g.shape(n) == "switch" {
			shape = ", shape=hexagon"
		}
		fmt.Fprintf(&b, "  %s [label=%s%s];\n", strconv.Quote(n.Name), strconv.Quote(nodeLabel(n)), shape)
	}
	for _, l := range t.Links {
		a, z := g.linkLabel(l)
		fmt.Fprintf(&b, "  %s -- %s [taillabel=%s, headlabel=%s];\n", strconv.Quote(l.A.Node), strconv.Quote(l.B.Node), strconv.Quote(a), strconv.Quote(z))
	}
	if len(t.HostLinks) > 0 {
		b.WriteString("  \"(host)\" [label=\"the host\", shape=cylinder];\n")
	}
	for _, hl := range t.HostLinks {
		fmt.Fprintf(&b, "  %s -- \"(host)\" [taillabel=%s, headlabel=%s];\n", strconv.Quote(hl.End.Node), strconv.Quote(hl.End.Iface), strconv.Quote(hl.HostIface))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// stackedLabel is how an interface stacked on a link end is named on a
// drawing: as its feature names it (a VLAN with its tags, an encrypting
// device), or by its name.
func stackedLabel(labels []feature.GraphHook, n *topo.Node, i *topo.Interface) string {
	for _, h := range labels {
		if s, ok := h.GraphLabel(n, i); ok {
			return s
		}
	}
	return i.Name
}
