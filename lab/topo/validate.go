package topo

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Names of labs and nodes become parts of namespace names
// ("erlab-<lab>.<node>"), so they may not hold dots or slashes.
var (
	labNameRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$`)
	nodeNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)
	sysctlRe   = regexp.MustCompile(`^net[./][A-Za-z0-9_./-]+$`)
)

// DefaultKind is the kind of a node that names none.
const DefaultKind = "netns"

// Interface MTU bounds: IPv4's minimum and the largest a veth takes. IPv6
// needs 1280 (RFC 8200), below which the kernel drops IPv6 from the device.
const (
	MinMTU     = 68
	MaxMTU     = 65535
	MinMTUIPv6 = 1280
	maxIfName  = 15 // IFNAMSIZ - 1
)

// ValidIfName reports why name cannot be a Linux interface name, or "".
func ValidIfName(name string) string {
	switch {
	case name == "":
		return "interface name is empty"
	case len(name) > maxIfName:
		return fmt.Sprintf("interface name %q is %d bytes; Linux allows at most %d", name, len(name), maxIfName)
	case name == "." || name == "..":
		return fmt.Sprintf("interface name %q is not allowed", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Sprintf("interface name %q may not contain '/', ':' or white space", name)
	}
	return ""
}

func resolve(spec *fileSpec, ps *problems, kinds KindSet, exts []Extension) *Topology {
	t := &Topology{Name: spec.Name, File: ps.file, Specs: spec.Topology.Specs, Ext: Ext{}}
	for k, v := range spec.Specs {
		if t.Specs == nil {
			t.Specs = Specs{}
		}
		t.Specs[k] = v
	}
	switch {
	case spec.Name == "":
		ps.errorf(Pos{}, "name: required: the lab's name, such as \"name: er-lab\"")
	case !labNameRe.MatchString(spec.Name):
		ps.errorf(spec.NamePos, "name: %q is not a valid lab name (letters, digits, '-' and '_', at most 40, starting with a letter or digit)", spec.Name)
	}
	if spec.Prefix != nil {
		ps.warnf(Pos{}, "prefix: ignored: erlab names every namespace erlab-<lab>.<node>")
	}
	body := &spec.Topology
	for _, k := range body.Kinds {
		if !kinds.Known(k.Key) {
			ps.errorf(k.KeyPos, "kinds: unknown kind %q (%s)", k.Key, supported(k.Key, kinds))
		}
		if k.Value.Kind != nil {
			ps.errorf(k.Value.KindPos, "kind %q: \"kind\" cannot be set inside kinds.%s", k.Key, k.Key)
		}
	}
	for _, g := range body.Groups {
		if g.Value.Kind != nil && !kinds.Known(*g.Value.Kind) {
			ps.errorf(g.Value.KindPos, "group %q: unknown kind %q (%s)", g.Key, *g.Value.Kind, supported(*g.Value.Kind, kinds))
		}
		if g.Value.Group != nil {
			ps.errorf(g.Value.Pos, "group %q: \"group\" cannot be set inside groups.%s", g.Key, g.Key)
		}
	}
	if body.Defaults.Kind != nil && !kinds.Known(*body.Defaults.Kind) {
		ps.errorf(body.Defaults.KindPos, "defaults: unknown kind %q (%s)", *body.Defaults.Kind, supported(*body.Defaults.Kind, kinds))
	}
	if len(body.Nodes) == 0 && !ps.modelFailed {
		// (A model that failed its checks made no nodes: its errors say why.)
		ps.errorf(Pos{}, "topology.nodes: a lab needs at least one node")
	}
	specs := map[string]NodeSpec{}
	for _, e := range body.Nodes {
		n, merged := resolveNode(e, body, ps, kinds)
		t.Nodes = append(t.Nodes, n)
		specs[n.Name] = merged
	}
	asked := false
	for _, m := range specs {
		asked = asked || asksMgmt(m)
	}
	t.Mgmt = resolveMgmt(spec.Mgmt, asked, ps)
	joinMgmt(t, ps)
	t.index()
	t.Links = resolveLinks(t, body.Links, ps)
	t.index()
	// The kinds first: what they say of a node (a switch, forwarding) is
	// what the features' checks read.
	for _, n := range t.Nodes {
		if kinds.Known(n.Kind) {
			kinds.PrepareNode(n)
		}
	}
	for _, e := range exts {
		if h, ok := e.(ResolveHook); ok {
			h.Resolve(t, ps)
		}
	}
	for _, n := range t.Nodes {
		resolveInterfaces(t, n, specs[n.Name], ps, exts)
		checkAddresses(n, ps)
		resolveRoutes(n, specs[n.Name].Routes, ps)
		if kinds.Known(n.Kind) {
			kinds.CheckNode(n, ps)
		}
		for _, e := range exts {
			if h, ok := e.(NodeHook); ok {
				h.CheckNode(t, n, ps)
			}
		}
	}
	for _, e := range exts {
		if h, ok := e.(TopologyHook); ok {
			h.CheckTopology(t, ps)
		}
	}
	return t
}

func supported(kind string, kinds KindSet) string {
	s := "supported: " + strings.Join(kinds.Kinds(), ", ")
	if kind == HostNode {
		// containerlab's host kind stands for the host's namespace.
		return "erlab runs every node in a namespace of its own; to wire a node to the host's namespace, give it a host link (endpoints: [\"NODE:IFACE\", \"host:NAME\"]); " + s
	}
	if c := closest(kind, kinds.Kinds()); c != "" {
		s = fmt.Sprintf("did you mean %q? %s", c, s)
	}
	return s
}

// resolveNode applies inheritance to a node and resolves its scalar fields;
// it returns the merged spec for the parts resolved later.
func resolveNode(e Entry[NodeSpec], body *bodySpec, ps *problems, kinds KindSet) (*Node, NodeSpec) {
	if !nodeNameRe.MatchString(e.Key) {
		ps.errorf(e.KeyPos, "node %q: not a valid node name (letters, digits, '-' and '_', at most 63, starting with a letter or digit)", e.Key)
	}
	// containerlab's order: the node, its group, its kind, the defaults.
	// A group: that names no entry of groups is a label only.
	spec := e.Value
	if e.Value.Group != nil {
		if gs, ok := body.Groups.Get(*e.Value.Group); ok {
			spec = inherit(spec, gs)
		}
	}
	kind, kindPos := DefaultKind, e.KeyPos
	switch {
	case spec.Kind != nil:
		kind, kindPos = *spec.Kind, spec.KindPos
	case body.Defaults.Kind != nil:
		kind, kindPos = *body.Defaults.Kind, body.Defaults.KindPos
	}
	if kind != "" && !kinds.Known(kind) {
		if e.Value.Kind != nil {
			ps.errorf(kindPos, "node %q: unknown kind %q (%s)", e.Key, kind, supported(kind, kinds))
		}
	} else if ks, ok := body.Kinds.Get(kind); ok {
		spec = inherit(spec, ks)
	}
	spec = inherit(spec, body.Defaults)

	n := &Node{
		Name:       e.Key,
		Pos:        e.KeyPos,
		Kind:       kind,
		Image:      deref(spec.Image),
		Cmd:        deref(spec.Cmd),
		Entrypoint: deref(spec.Entrypoint),
		User:       deref(spec.User),
		Env:        envOf(e.Key, spec, ps),
		Privileged: spec.Privileged != nil && *spec.Privileged,
		Binds:      resolveBinds(spec.Binds, ps.file),
		Exec:       spec.Exec,
		Labels:     toMap(spec.Labels),
		Group:      deref(spec.Group),
		Forward:    spec.Forward != nil && *spec.Forward,
	}
	n.Specs, n.Ext = spec.Specs, Ext{}
	resolveContainer(n, spec, ps)
	for _, s := range spec.Sysctls {
		if !sysctlRe.MatchString(s.Key) || strings.Contains(s.Key, "..") {
			ps.errorf(s.KeyPos, "node %q: sysctl %q: only net.* settings belong to a network namespace", n.Name, s.Key)
			continue
		}
		n.Sysctls = append(n.Sysctls, Sysctl{Key: s.Key, Value: s.Value, Pos: s.KeyPos})
	}
	for i, c := range n.Exec {
		if strings.TrimSpace(c) == "" {
			ps.errorf(spec.Pos, "node %q: exec[%d] is empty", n.Name, i)
		}
	}
	return n, spec
}

func resolveLinks(t *Topology, specs []linkSpec, ps *problems) []*Link {
	used := map[string]Pos{}
	hostUsed := map[string]Pos{}
	var links []*Link
	for i, ls := range specs {
		if ls.Vars.set {
			ps.warnf(ls.Vars.pos, "links[%d]: vars: ignored: they feed containerlab's configuration templates, which erlab does not have", i)
		}
		if ls.Type != nil && *ls.Type == "host" {
			switch {
			case ls.Endpoint == nil || ls.HostInterface == nil:
				ps.errorf(ls.TypePos, "links[%d]: a type: host link needs endpoint: {node: N, interface: I} and host-interface: NAME (its end in the host's namespace)", i)
			case len(ls.Endpoints) > 0:
				ps.errorf(ls.EndpointsPos, "links[%d]: a type: host link has endpoint: and host-interface:, not endpoints:", i)
			default:
				if hl := resolveHostLink(t, ls, i, *ls.Endpoint, *ls.HostInterface, ls.HostInterfacePos, used, hostUsed, ps); hl != nil {
					t.HostLinks = append(t.HostLinks, hl)
				}
			}
			continue
		}
		if ls.Endpoint != nil || ls.HostInterface != nil {
			ps.errorf(ls.Pos, "links[%d]: endpoint: and host-interface: are for type: host links; a veth link has endpoints:", i)
			continue
		}
		if len(ls.Endpoints) != 2 {
			pos := ls.EndpointsPos
			if pos.Line == 0 {
				pos = ls.Pos
			}
			ps.errorf(pos, "links[%d]: needs exactly two endpoints, such as endpoints: [\"ce1:eth1\", \"pe1:eth1\"]; got %d", i, len(ls.Endpoints))
			continue
		}
		if ls.Type != nil && *ls.Type != "veth" {
			ps.errorf(ls.TypePos, "links[%d]: type %q: erlab makes veth and host links (type: veth, type: host); mgmt-net, macvlan, vxlan and dummy links are not done yet", i, *ls.Type)
			continue
		}
		// The brief host form, "host:IFNAME", in a lab with no node
		// named host (erlab's own labs have had one).
		if hostEnd := briefHostEnd(t, ls.Endpoints); hostEnd >= 0 {
			he := ls.Endpoints[hostEnd]
			switch {
			case briefHostEnd(t, ls.Endpoints[1-hostEnd:2-hostEnd]) == 0:
				ps.errorf(he.Pos, "links[%d]: both ends are the host's; a host link joins a node to the host", i)
			case he.MAC != "":
				ps.errorf(he.MACPos, "links[%d]: endpoint %s: the host's end takes no mac (erlab sets the node's end only)", i, he.Value)
			default:
				if hl := resolveHostLink(t, ls, i, ls.Endpoints[1-hostEnd], strings.TrimPrefix(he.Value, HostNode+":"), he.Pos, used, hostUsed, ps); hl != nil {
					t.HostLinks = append(t.HostLinks, hl)
				}
			}
			continue
		}
		l := &Link{Pos: ls.Pos, Index: i}
		ok := true
		for j, es := range ls.Endpoints {
			mac, good := endpointMAC(es, i, ps)
			l.macs[j] = mac
			ok = ok && good
			ep, good := parseEndpoint(t, es, i, ps)
			if !good {
				ok = false
				continue
			}
			key := ep.String()
			if first, dup := used[key]; dup {
				ps.errorf(es.Pos, "links[%d]: interface %s is already used by the link at line %d", i, key, first.Line)
				ok = false
				continue
			}
			used[key] = es.Pos
			if j == 0 {
				l.A = ep
			} else {
				l.B = ep
			}
		}
		if ls.MTU != nil {
			if msg := checkMTU(*ls.MTU); msg != "" {
				ps.errorf(ls.MTUPos, "links[%d]: %s", i, msg)
			}
			l.MTU = *ls.MTU
		}
		l.Specs, l.Ext = ls.Specs, Ext{}
		if ok {
			links = append(links, l)
		}
	}
	return links
}

// briefHostEnd is which of a link's endpoints is "host:IFNAME", the host's
// end, when the lab has no node named host; -1 if none.
func briefHostEnd(t *Topology, eps []endpointSpec) int {
	if t.Node(HostNode) != nil {
		return -1
	}
	for j, es := range eps {
		if node, _, _ := strings.Cut(es.Value, ":"); node == HostNode {
			return j
		}
	}
	return -1
}

// endpointMAC is the MAC an endpoint's extended form gives, checked.
func endpointMAC(es endpointSpec, i int, ps *problems) (net.HardwareAddr, bool) {
	if es.MAC == "" {
		return nil, true
	}
	mac, err := net.ParseMAC(es.MAC)
	switch {
	case err != nil || len(mac) != 6:
		ps.errorf(es.MACPos, "links[%d]: endpoint %s: mac %q is not an Ethernet address such as 02:00:00:00:00:01", i, es.Value, es.MAC)
	case mac[0]&1 == 1:
		ps.errorf(es.MACPos, "links[%d]: endpoint %s: mac %q is a multicast address", i, es.Value, es.MAC)
	default:
		return mac, true
	}
	return nil, false
}

// resolveHostLink checks a host link: the node's end like any link's, the
// host's a valid interface name used once, and no feature's keys (the far
// end is the host's, which erlab does not configure).
func resolveHostLink(t *Topology, ls linkSpec, i int, es endpointSpec, hostIface string, hostPos Pos, used, hostUsed map[string]Pos, ps *problems) *HostLink {
	hl := &HostLink{Pos: ls.Pos, Index: i, HostIface: hostIface}
	mac, ok := endpointMAC(es, i, ps)
	hl.MAC = mac
	ep, good := parseEndpoint(t, es, i, ps)
	ok = ok && good
	if good {
		if first, dup := used[ep.String()]; dup {
			ps.errorf(es.Pos, "links[%d]: interface %s is already used by the link at line %d", i, ep, first.Line)
			ok = false
		}
		used[ep.String()] = es.Pos
	}
	hl.End = ep
	if msg := ValidIfName(hostIface); msg != "" {
		ps.errorf(hostPos, "links[%d]: host interface %q: %s", i, hostIface, msg)
		ok = false
	} else if first, dup := hostUsed[hostIface]; dup {
		ps.errorf(hostPos, "links[%d]: host interface %s is already the end of the host link at line %d", i, hostIface, first.Line)
		ok = false
	}
	hostUsed[hostIface] = hostPos
	if ls.MTU != nil {
		if msg := checkMTU(*ls.MTU); msg != "" {
			ps.errorf(ls.MTUPos, "links[%d]: %s", i, msg)
		}
		hl.MTU = *ls.MTU
	}
	if len(ls.Specs) > 0 {
		ps.errorf(ls.Pos, "links[%d]: a host link takes none of the features' link keys (%s): its far end is the host's own interface", i, strings.Join(slices.Sorted(maps.Keys(ls.Specs)), ", "))
		ok = false
	}
	if !ok {
		return nil
	}
	return hl
}

func parseEndpoint(t *Topology, es endpointSpec, i int, ps *problems) (Endpoint, bool) {
	node, iface, found := strings.Cut(es.Value, ":")
	if !found || node == "" {
		ps.errorf(es.Pos, "links[%d]: endpoint %q: expected \"node:interface\"", i, es.Value)
		return Endpoint{}, false
	}
	ok := true
	if t.Node(node) == nil {
		var names []string
		for _, n := range t.Nodes {
			names = append(names, n.Name)
		}
		msg := fmt.Sprintf("links[%d]: endpoint %q: no node named %q", i, es.Value, node)
		if c := closest(node, names); c != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", c)
		}
		ps.errorf(es.Pos, "%s", msg)
		ok = false
	}
	if msg := ValidIfName(iface); msg != "" {
		ps.errorf(es.Pos, "links[%d]: endpoint %q: %s", i, es.Value, msg)
		ok = false
	} else if iface == "lo" {
		ps.errorf(es.Pos, "links[%d]: endpoint %q: lo is the loopback device and cannot end a link", i, es.Value)
		ok = false
	}
	return Endpoint{Node: node, Iface: iface, Pos: es.Pos}, ok
}

func checkMTU(mtu int) string {
	if mtu < MinMTU || mtu > MaxMTU {
		return fmt.Sprintf("mtu %d is out of range (%d to %d)", mtu, MinMTU, MaxMTU)
	}
	return ""
}

func resolveInterfaces(t *Topology, n *Node, spec NodeSpec, ps *problems, exts []Extension) {
	for _, l := range t.LinksOf(n.Name) {
		for _, ep := range []Endpoint{l.A, l.B} {
			if ep.Node == n.Name {
				mac := l.macs[0]
				if ep == l.B {
					mac = l.macs[1]
				}
				n.Interfaces = append(n.Interfaces, &Interface{Name: ep.Iface, Pos: ep.Pos, Type: TypeVeth, Link: l, MTU: l.MTU, MAC: mac, Ext: Ext{}})
			}
		}
	}
	for _, hl := range t.HostLinks {
		if hl.End.Node == n.Name {
			n.Interfaces = append(n.Interfaces, &Interface{Name: hl.End.Iface, Pos: hl.End.Pos, Type: TypeHostVeth, HostIface: hl.HostIface, MTU: hl.MTU, MAC: hl.MAC, Ext: Ext{}})
		}
	}
	for _, e := range exts {
		if h, ok := e.(InterfacesHook); ok {
			h.AddInterfaces(t, n, ps)
		}
	}
	var declared []*Interface
	for _, e := range spec.Interfaces {
		name, is := e.Key, e.Value
		where := fmt.Sprintf("node %q: interface %q", n.Name, name)
		if msg := ValidIfName(name); msg != "" {
			ps.errorf(e.KeyPos, "node %q: %s", n.Name, msg)
			continue
		}
		iface := n.Interface(name)
		switch {
		case iface != nil:
		case name == "lo":
			iface = &Interface{Name: name, Type: TypeLoopback, Ext: Ext{}}
			n.Interfaces = append(n.Interfaces, iface)
		default:
			claimed := false
			for _, x := range exts {
				if h, ok := x.(ClaimHook); ok {
					if iface, claimed = h.ClaimInterface(n, name, e.KeyPos, &is, ps); claimed {
						if iface != nil {
							iface.Owner = x.Name()
						}
						break
					}
				}
			}
			if !claimed {
				ps.errorf(e.KeyPos, "%s: is on no link; add a link with endpoint \"%s:%s\", or make it a VLAN subinterface (parent:, vlan:)", where, n.Name, name)
			}
			if iface == nil {
				continue
			}
			if iface.Ext == nil {
				iface.Ext = Ext{}
			}
			n.Interfaces = append(n.Interfaces, iface)
		}
		iface.Pos = e.KeyPos
		iface.Specs = is.Specs
		applyInterfaceSpec(iface, is, where, ps)
		declared = append(declared, iface)
	}
	// Every interface declared stacked on another must sit on one of this
	// node's, and the chain must end at a real device; a cycle (a.1 → b.1 →
	// a.1) has none at its root. (A device a feature adds is its to check.)
	for _, iface := range declared {
		if iface.Parent == "" {
			continue
		}
		where := fmt.Sprintf("node %q: interface %q", n.Name, iface.Name)
		parent := n.Interface(iface.Parent)
		switch {
		case parent == nil:
			ps.errorf(iface.Pos, "%s: parent %q is not an interface of this node", where, iface.Parent)
		case parent.Type == TypeLoopback:
			ps.errorf(iface.Pos, "%s: nothing can sit on the loopback device", where)
		case stackCycle(n, iface):
			ps.errorf(iface.Pos, "%s: its parent chain loops back to itself", where)
		}
	}
	for _, iface := range declared {
		for _, e := range exts {
			if h, ok := e.(InterfaceHook); ok {
				h.CheckInterface(n, iface, ps)
			}
		}
	}
	planMTU(n, ps, exts)
	slices.SortStableFunc(n.Interfaces, func(a, b *Interface) int { return NaturalCompare(a.Name, b.Name) })
}

func stackCycle(n *Node, iface *Interface) bool {
	cur := iface
	for range len(n.Interfaces) + 1 {
		if cur.Parent == "" {
			return false
		}
		cur = n.Interface(cur.Parent)
		if cur == nil {
			return false
		}
		if cur == iface {
			return true
		}
	}
	return true
}

func applyInterfaceSpec(iface *Interface, is InterfaceSpec, where string, ps *problems) {
	if is.MTU != nil {
		if msg := checkMTU(*is.MTU); msg != "" {
			ps.errorf(is.MTUPos, "%s: %s", where, msg)
		}
		iface.MTU = *is.MTU
	}
	if is.MAC != nil {
		mac, err := net.ParseMAC(*is.MAC)
		switch {
		case iface.MAC != nil:
			ps.errorf(is.MACPos, "%s: mac is given twice: here and on its link's endpoint", where)
		case err != nil || len(mac) != 6:
			ps.errorf(is.MACPos, "%s: mac %q is not an Ethernet address such as 02:00:00:00:00:01", where, *is.MAC)
		case mac[0]&1 == 1:
			ps.errorf(is.MACPos, "%s: mac %q is a multicast address", where, *is.MAC)
		default:
			iface.MAC = mac
		}
	}
	if is.State != nil {
		switch *is.State {
		case "up":
		case "down":
			iface.Down = true
		default:
			ps.errorf(is.StatePos, "%s: state %q: expected up or down", where, *is.State)
		}
	}
	for _, a := range is.Addresses {
		if !a.Prefix.IsValid() {
			continue // already reported by the decoder
		}
		if a.Prefix.Addr().Is4() && a.Prefix.Bits() < 31 && a.Prefix.Addr() == a.Prefix.Masked().Addr() {
			ps.errorf(a.Pos, "%s: %s is the network address of its subnet, not a host address", where, a.Prefix)
			continue
		}
		if a.Prefix.Addr().IsMulticast() || a.Prefix.Addr().IsUnspecified() {
			ps.errorf(a.Pos, "%s: %s cannot be an interface address", where, a.Prefix)
			continue
		}
		iface.Addresses = append(iface.Addresses, a.Prefix)
		if a.Prefix.Addr().Is6() && iface.MTU > 0 && iface.MTU < MinMTUIPv6 {
			ps.errorf(a.Pos, "%s: IPv6 needs an mtu of at least %d, the interface has %d", where, MinMTUIPv6, iface.MTU)
		}
	}
	if iface.Type == TypeLoopback && iface.MTU > 0 {
		ps.errorf(is.MTUPos, "%s: the loopback's mtu is not configurable here", where)
	}
}

// checkAddresses refuses the same address twice on a node and subnets that
// overlap across its interfaces: the kernel would accept both and then route
// by whichever it found first. IPv6 link-local subnets are per interface.
func checkAddresses(n *Node, ps *problems) {
	type owned struct {
		p     netip.Prefix
		iface *Interface
	}
	var seen []owned
	for _, iface := range n.Interfaces {
		for _, p := range iface.Addresses {
			for _, o := range seen {
				sameIface := o.iface == iface
				if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() && !sameIface {
					continue
				}
				switch {
				case o.p.Addr() == p.Addr():
					ps.errorf(iface.Pos, "node %q: address %s is given twice (on %s and %s)", n.Name, p.Addr(), o.iface.Name, iface.Name)
				case o.p.Masked().Overlaps(p.Masked()) && !sameIface:
					// (Two addresses in one subnet of one interface are
					// primary and secondary: fine.)
					ps.errorf(iface.Pos, "node %q: address %s on %s overlaps %s on %s", n.Name, p, iface.Name, o.p, o.iface.Name)
				}
			}
			seen = append(seen, owned{p, iface})
		}
	}
}

func resolveRoutes(n *Node, specs []RouteSpec, ps *problems) {
	for i, rs := range specs {
		where := fmt.Sprintf("node %q: routes[%d]", n.Name, i)
		r := Route{Dev: rs.Dev, Metric: rs.Metric, Onlink: rs.Onlink, Pos: rs.Pos}
		ok := true
		switch rs.Dst {
		case "":
			ps.errorf(rs.Pos, "%s: dst: required (a prefix such as 10.0.0.0/8, or default)", where)
			ok = false
		case "default", "default4", "0.0.0.0/0":
			r.Dst = netip.MustParsePrefix("0.0.0.0/0")
		case "default6", "::/0":
			r.Dst = netip.MustParsePrefix("::/0")
		default:
			p, err := netip.ParsePrefix(rs.Dst)
			if err != nil {
				ps.errorf(rs.DstPos, "%s: dst %q is not a prefix such as 10.0.0.0/8", where, rs.Dst)
				ok = false
			} else {
				if p != p.Masked() {
					ps.errorf(rs.DstPos, "%s: dst %s has host bits set; did you mean %s?", where, p, p.Masked())
					ok = false
				}
				r.Dst = p.Masked()
			}
		}
		if rs.Via != "" {
			a, err := netip.ParseAddr(rs.Via)
			if err != nil {
				ps.errorf(rs.ViaPos, "%s: via %q is not an address", where, rs.Via)
				ok = false
			} else {
				r.Via = a
				// "default" means IPv4 unless the gateway says otherwise.
				if rs.Dst == "default" && a.Is6() {
					r.Dst = netip.MustParsePrefix("::/0")
				}
			}
		}
		if rs.Dev != "" {
			if iface := n.Interface(rs.Dev); iface == nil {
				ps.errorf(rs.DevPos, "%s: dev %q is not an interface of node %q", where, rs.Dev, n.Name)
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch {
		case !r.Via.IsValid() && rs.Dev == "":
			ps.errorf(rs.Pos, "%s: needs via: (a gateway) or dev: (an interface)", where)
			continue
		case r.Via.IsValid() && r.Via.Is4() != r.Dst.Addr().Is4():
			ps.errorf(rs.ViaPos, "%s: via %s and dst %s are of different address families", where, r.Via, r.Dst)
			continue
		case r.Via.IsValid() && r.Via.IsLinkLocalUnicast() && r.Via.Is6() && rs.Dev == "":
			ps.errorf(rs.ViaPos, "%s: a link-local gateway needs dev:", where)
			continue
		case r.Via.IsValid() && !rs.Onlink && !r.Via.IsLinkLocalUnicast() && !connected(n, r.Via, rs.Dev):
			ps.errorf(rs.ViaPos, "%s: gateway %s is on no subnet of node %q%s (add an address in its subnet, or set onlink: true)", where, r.Via, n.Name, onDev(rs.Dev))
			continue
		}
		n.Routes = append(n.Routes, r)
	}
}

func onDev(dev string) string {
	if dev == "" {
		return ""
	}
	return " on " + dev
}

func connected(n *Node, a netip.Addr, dev string) bool {
	for _, iface := range n.Interfaces {
		if dev != "" && iface.Name != dev {
			continue
		}
		for _, p := range iface.Addresses {
			if p.Masked().Contains(a) && p.Addr() != a {
				return true
			}
		}
	}
	return false
}

// inherit fills the fields node leaves unset from lower (a kind's or the
// defaults' settings): scalars and lists are taken whole, maps key by key.
func inherit(node, lower NodeSpec) NodeSpec {
	out := node
	v, lv := reflect.ValueOf(&out).Elem(), reflect.ValueOf(lower)
	t := v.Type()
	for i := range t.NumField() {
		f := v.Field(i)
		switch m := f.Addr().Interface().(type) {
		case interface{ inheritFrom(any) }:
			m.inheritFrom(lv.Field(i).Interface())
			continue
		}
		if (f.Kind() == reflect.Pointer || f.Kind() == reflect.Slice) && f.IsNil() {
			f.Set(lv.Field(i))
			if pf, ok := t.FieldByName(fieldPosName(t.Field(i).Name)); ok {
				v.FieldByIndex(pf.Index).Set(lv.FieldByIndex(pf.Index))
			}
		}
	}
	return out
}

func (m *Map[T]) inheritFrom(lower any) {
	for _, e := range lower.(Map[T]) {
		if _, ok := m.Get(e.Key); !ok {
			*m = append(*m, e)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func toMap(m Map[string]) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, e := range m {
		out[e.Key] = e.Value
	}
	return out
}

// NaturalCompare orders names the way people number interfaces: eth2 before
// eth10, eth1 before eth1.100.
func NaturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da != "" && db != "" {
			na, _ := strconv.ParseUint(da, 10, 64)
			nb, _ := strconv.ParseUint(db, 10, 64)
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && i < 18 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// resolveBinds makes the relative sources of SOURCE:TARGET binds relative
// to the topology file's directory, as containerlab resolves them.
func resolveBinds(binds []string, file string) []string {
	if len(binds) == 0 || file == "" {
		return binds
	}
	out := make([]string, len(binds))
	for i, b := range binds {
		src, rest, ok := strings.Cut(b, ":")
		if ok && src != "" && !filepath.IsAbs(src) {
			// Absolute, whatever the file was named by: Docker takes a
			// relative source for a volume's name.
			src = filepath.Join(filepath.Dir(file), src)
			if abs, err := filepath.Abs(src); err == nil {
				src = abs
			}
			b = src + ":" + rest
		}
		out[i] = b
	}
	return out
}

// envOf is a node's environment: the variables of its env-files (paths
// relative to the topology file, KEY=VALUE lines; blank lines and # comments
// skipped), in order, then env's over them, as containerlab merges them.
func envOf(node string, spec NodeSpec, ps *problems) map[string]string {
	out := map[string]string{}
	for _, f := range spec.EnvFiles {
		path := f
		if !filepath.IsAbs(path) && ps.file != "" {
			path = filepath.Join(filepath.Dir(ps.file), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			ps.errorf(spec.Pos, "node %q: env-files: %v", node, err)
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok || k == "" {
				ps.errorf(spec.Pos, "node %q: env-files: %s:%d: not KEY=VALUE", node, f, i+1)
				continue
			}
			out[k] = v
		}
	}
	maps.Copy(out, toMap(spec.Env))
	if len(out) == 0 {
		return nil
	}
	return out
}
