package lab

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/erlab-dev/erlab/lab/topo"
)

// GraphFormats are the formats Graph writes.
var GraphFormats = []string{"mermaid", "dot"}

// Graph writes the topology's nodes and links, with interface names, as a
// Mermaid flowchart or a Graphviz graph.
func Graph(w io.Writer, t *topo.Topology, format string) error {
	switch format {
	case "mermaid":
		return graphMermaid(w, t)
	case "dot":
		return graphDot(w, t)
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

// linkLabel names both ends and, where they have them, their addresses.
func linkLabel(t *topo.Topology, l *topo.Link) (string, string) {
	end := func(ep topo.Endpoint) string {
		n := t.Node(ep.Node)
		s := ep.Iface
		if i := n.Interface(ep.Iface); i != nil && len(i.Addresses) > 0 {
			s += " " + i.Addresses[0].String()
		}
		// What is stacked on the end, at any depth: VLANs with their tags
		// (QinQ as S.C) and MACsec devices, each with its first address.
		for _, i := range n.Interfaces {
			tags, on := stackedOn(n, i, ep.Iface)
			if !on {
				continue
			}
			switch {
			case i.Type == topo.TypeVLAN:
				s += " · vlan " + tags
			case tags != "":
				s += " · " + i.Name + " (" + string(i.Type) + " on vlan " + tags + ")"
			default:
				s += " · " + i.Name
			}
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

func graphMermaid(w io.Writer, t *topo.Topology) error {
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: %s\n---\ngraph LR\n", t.Name)
	for _, n := range t.Nodes {
		shape := `["%s"]`
		if n.Kind == "bridge" {
			shape = `{{"%s"}}`
		}
		fmt.Fprintf(&b, "  %s"+shape+"\n", mermaidID(n.Name), nodeLabel(n))
	}
	for _, l := range t.Links {
		a, z := linkLabel(t, l)
		fmt.Fprintf(&b, "  %s ---|\"%s — %s\"| %s\n", mermaidID(l.A.Node), a, z, mermaidID(l.B.Node))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func graphDot(w io.Writer, t *topo.Topology) error {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n  rankdir=LR;\n  node [shape=box];\n", strconv.Quote(t.Name))
	for _, n := range t.Nodes {
		shape := ""
		if n.Kind == "bridge" {
			shape = ", shape=hexagon"
		}
		fmt.Fprintf(&b, "  %s [label=%s%s];\n", strconv.Quote(n.Name), strconv.Quote(nodeLabel(n)), shape)
	}
	for _, l := range t.Links {
		a, z := linkLabel(t, l)
		fmt.Fprintf(&b, "  %s -- %s [taillabel=%s, headlabel=%s];\n", strconv.Quote(l.A.Node), strconv.Quote(l.B.Node), strconv.Quote(a), strconv.Quote(z))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// stackedOn says whether an interface sits, through its parents, on the
// device base, and the VLAN tags on the way, outermost first ("10.100").
func stackedOn(n *topo.Node, i *topo.Interface, base string) (string, bool) {
	var tags []string
	for cur := i; cur != nil && cur.Parent != ""; cur = n.Interface(cur.Parent) {
		if cur.Type == topo.TypeVLAN {
			tags = append([]string{strconv.Itoa(cur.VLAN)}, tags...)
		}
		if cur.Parent == base {
			return strings.Join(tags, "."), true
		}
		if len(tags) > len(n.Interfaces) { // a cycle: validation refuses them
			break
		}
	}
	return "", false
}
