package expressroute

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/erlab-dev/erlab/lab/topo"
)

// CircuitsView is erlab graph --view circuits: the declaration as an Azure
// user sees it — sites, ExpressRoute Direct port pairs, circuits with their
// peerings (VLAN tags, subnets, ASNs, limits), virtual networks with their
// connections' weights, Global Reach and VPN connections — rather than the
// nodes and links it expands into.
const CircuitsView = "circuits"

// Views implements feature.ViewHook.
func (Feature) Views() []string { return []string{CircuitsView} }

// DrawView implements feature.ViewHook.
func (Feature) DrawView(w io.Writer, t *topo.Topology, _, format string) error {
	m := modelOf(t)
	if m == nil {
		return fmt.Errorf("lab %s declares no expressroute: (a plain topology, erlab expand's among them, has nodes and links only: graph it without --view)", t.Name)
	}
	g := m.circuitGraph()
	title := "circuits of " + t.Name
	if format == "dot" {
		_, err := io.WriteString(w, g.dot(title))
		return err
	}
	_, err := io.WriteString(w, g.mermaid(title))
	return err
}

// A drawing: boxes with lines of text, and labelled edges.
type drawing struct {
	boxes []box
	edges []edge
}

type box struct {
	id    string
	shape string // site, port, circuit, vnet, cloud
	lines []string
}

type edge struct {
	a, b   string
	label  string
	dashed bool
}

func (d *drawing) box(id, shape string, lines ...string) {
	d.boxes = append(d.boxes, box{id: id, shape: shape, lines: lines})
}

func (d *drawing) edge(a, b, label string, dashed bool) {
	d.edges = append(d.edges, edge{a: a, b: b, label: label, dashed: dashed})
}

// thousands writes 4000 as 4,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if len(s) <= 3 {
		return s
	}
	return s[:len(s)-3] + "," + s[len(s)-3:]
}

func (m *model) circuitGraph() *drawing {
	d := &drawing{}
	for _, s := range m.sites {
		lines := []string{"site " + s.spec.Name, fmt.Sprintf("AS %d · %s", s.spec.ASN, s.network)}
		if s.network6.IsValid() {
			lines = append(lines, s.network6.String())
		}
		d.box("site_"+s.spec.Name, "site", lines...)
	}
	for _, p := range m.ports {
		speed := p.spec.Speed
		if speed == "" {
			speed = "10G"
		}
		enc := "Dot1Q"
		if p.encap == "qinq" {
			enc = "QinQ, both tags 0x8100"
		}
		lines := []string{"port pair " + p.spec.Name, fmt.Sprintf("ExpressRoute Direct %s · %s", speed, enc)}
		if !p.spec.MACsec.IsZero() {
			sec := "MACsec"
			if c, ok := p.spec.MACsec.Lookup("cipher"); ok {
				sec += " " + c
			}
			lines = append(lines, sec)
		}
		d.box("port_"+p.spec.Name, "port", lines...)
		d.edge("site_"+p.site.spec.Name, "port_"+p.spec.Name, "CE pair", false)
	}
	microsoft := false
	for _, c := range m.circuits {
		lines := []string{"circuit " + c.spec.Name, c.summary()}
		for _, pr := range c.peerings {
			lines = append(lines, pr.summary(c))
			microsoft = microsoft || pr.kind == "microsoft"
		}
		id := "circuit_" + c.spec.Name
		d.box(id, "circuit", lines...)
		switch {
		case c.port != nil:
			d.edge("port_"+c.port.spec.Name, id, "", false)
		case c.model == AnyToAny:
			d.edge("site_"+c.site.spec.Name, id, fmt.Sprintf("CE pair · provider PEs, AS %d", c.spec.ProviderASN), false)
		default:
			d.edge("site_"+c.site.spec.Name, id, "CE pair · provider's switches", false)
		}
	}
	if microsoft {
		d.box("microsoft", "cloud", "Microsoft's network", fmt.Sprintf("AS %d: Exchange, SharePoint, Skype", MicrosoftNetworkASN))
		for _, c := range m.circuits {
			for _, pr := range c.peerings {
				if pr.kind == "microsoft" {
					d.edge("circuit_"+c.spec.Name, "microsoft", "Microsoft peering", false)
				}
			}
		}
	}
	for _, v := range m.vnets {
		lines := []string{"vnet " + v.spec.Name, v.space.String()}
		if v.space6.IsValid() {
			lines = append(lines, v.space6.String())
		}
		lines = append(lines, fmt.Sprintf("gateway AS %d (%s)", GatewayASN, v.sku))
		if len(v.vpns) > 0 {
			lines = append(lines, fmt.Sprintf("VPN gateway AS %d", GatewayASN))
		}
		if v.community != "" {
			lines = append(lines, v.spec.Region+": "+v.community)
		}
		id := "vnet_" + v.spec.Name
		d.box(id, "vnet", lines...)
		for _, cn := range v.conns {
			d.edge("circuit_"+cn.circuit.spec.Name, id, fmt.Sprintf("connection · weight %d", cn.spec.Weight), false)
		}
		for _, vc := range v.vpns {
			how := "VPN (IKEv2) over the internet"
			if vc.over != nil {
				how = "IPsec (IKEv2) over " + vc.over.spec.Name + "'s private peering"
			}
			d.edge("site_"+vc.site.spec.Name, id, how, true)
		}
	}
	for _, r := range m.reach {
		d.edge("circuit_"+r.circuits[0].spec.Name, "circuit_"+r.circuits[1].spec.Name, "Global Reach · "+r.subnet.String(), true)
	}
	return d
}

// summary is a circuit's second line: its model and what it was bought as.
func (c *circuit) summary() string {
	parts := []string{c.model}
	if c.spec.Bandwidth != "" {
		parts = append(parts, c.spec.Bandwidth)
	}
	sku := c.spec.SKU
	if sku == "" {
		sku = "Standard"
	}
	parts = append(parts, sku)
	if c.sTag != 0 {
		parts = append(parts, fmt.Sprintf("S-tag %d", c.sTag))
	}
	if c.spec.Prepend > 0 {
		parts = append(parts, fmt.Sprintf("prepend %d", c.spec.Prepend))
	}
	return strings.Join(parts, " · ")
}

// summary is a peering's line: its tag, subnets, the ASNs of its sessions,
// its limit, and what Microsoft peering carries.
func (pr *peering) summary(c *circuit) string {
	tag := "VLAN"
	if c.sTag != 0 {
		tag = "C-tag"
	}
	parts := []string{fmt.Sprintf("%s: %s %d", pr.kind, tag, pr.spec.VLAN)}
	if pr.spec.Subnet != nil {
		parts = append(parts, pr.spec.Subnet.Prefix.String())
	} else {
		parts = append(parts, pr.subnets[0].String()+" + "+pr.subnets[1].String())
	}
	if pr.subnets6[0].IsValid() {
		parts = append(parts, pr.subnets6[0].String()+" + "+pr.subnets6[1].String())
	}
	parts = append(parts, fmt.Sprintf("AS %d ↔ %d", c.custASN(), MicrosoftASN), "limit "+thousands(pr.limit))
	for _, a := range pr.advertise {
		parts = append(parts, "advertises "+a.String())
	}
	if pr.kind == "microsoft" {
		switch {
		case pr.filter == nil:
			parts = append(parts, "no route filter")
		case pr.attached:
			parts = append(parts, "route filter "+strings.Join(pr.filter, ", "))
		default:
			parts = append(parts, "route filter (detached) "+strings.Join(pr.filter, ", "))
		}
	}
	return strings.Join(parts, " · ")
}

func (d *drawing) mermaid(title string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: %s\n---\ngraph LR\n", title)
	shapes := map[string][2]string{"site": {"[", "]"}, "port": {"{{", "}}"}, "circuit": {"([", "])"}, "vnet": {"[(", ")]"}, "cloud": {"((", "))"}}
	for _, x := range d.boxes {
		s := shapes[x.shape]
		fmt.Fprintf(&b, "  %s%s\"%s\"%s\n", mermaidID(x.id), s[0], strings.Join(escapeMermaid(x.lines), "<br/>"), s[1])
	}
	for _, e := range d.edges {
		line := "---"
		if e.dashed {
			line = "-.-"
		}
		if e.label == "" {
			fmt.Fprintf(&b, "  %s %s %s\n", mermaidID(e.a), line, mermaidID(e.b))
			continue
		}
		fmt.Fprintf(&b, "  %s %s|\"%s\"| %s\n", mermaidID(e.a), line, escapeMermaid([]string{e.label})[0], mermaidID(e.b))
	}
	return b.String()
}

// mermaidID makes an id Mermaid takes ('-' would read as an edge).
func mermaidID(id string) string { return strings.ReplaceAll(id, "-", "_") }

// escapeMermaid keeps a label's quotes from ending it.
func escapeMermaid(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.ReplaceAll(l, `"`, "#quot;")
	}
	return out
}

func (d *drawing) dot(title string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n  rankdir=LR;\n", strconv.Quote(title))
	shapes := map[string]string{"site": "box", "port": "hexagon", "circuit": "box, style=rounded", "vnet": "cylinder", "cloud": "ellipse"}
	for _, x := range d.boxes {
		fmt.Fprintf(&b, "  %s [shape=%s, label=%s];\n", strconv.Quote(x.id), shapes[x.shape], strconv.Quote(strings.Join(x.lines, "\n")))
	}
	for _, e := range d.edges {
		attrs := []string{}
		if e.label != "" {
			attrs = append(attrs, "label="+strconv.Quote(e.label))
		}
		if e.dashed {
			attrs = append(attrs, "style=dashed")
		}
		fmt.Fprintf(&b, "  %s -- %s", strconv.Quote(e.a), strconv.Quote(e.b))
		if len(attrs) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(attrs, ", "))
		}
		b.WriteString(";\n")
	}
	b.WriteString("}\n")
	return b.String()
}
