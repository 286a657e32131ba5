package topo

import (
	"fmt"
	"net"
	"net/netip"
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

func resolve(spec *fileSpec, ps *problems, kinds KindSet) *Topology {
	t := &Topology{Name: spec.Name}
	switch {
	case spec.Name == "":
		ps.errorf(Pos{}, "name: required: the lab's name, such as \"name: er-lab\"")
	case !labNameRe.MatchString(spec.Name):
		ps.errorf(spec.NamePos, "name: %q is not a valid lab name (letters, digits, '-' and '_', at most 40, starting with a letter or digit)", spec.Name)
	}
	if spec.Prefix != nil {
		ps.warnf(Pos{}, "prefix: ignored: erlab names every namespace erlab-<lab>.<node>")
	}
	if spec.Mgmt.set {
		ps.warnf(spec.Mgmt.pos, "mgmt: ignored: erlab nodes have no management network")
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
	if body.Defaults.Kind != nil && !kinds.Known(*body.Defaults.Kind) {
		ps.errorf(body.Defaults.KindPos, "defaults: unknown kind %q (%s)", *body.Defaults.Kind, supported(*body.Defaults.Kind, kinds))
	}
	if len(body.Nodes) == 0 {
		ps.errorf(Pos{}, "topology.nodes: a lab needs at least one node")
	}
	specs := map[string]NodeSpec{}
	for _, e := range body.Nodes {
		n, merged := resolveNode(e, body, ps, kinds)
		t.Nodes = append(t.Nodes, n)
		specs[n.Name] = merged
	}
	t.Links = resolveLinks(t, body.Links, ps)
	t.Tunnels = resolveTunnels(t, body.Tunnels, filepath.Dir(ps.file), ps)
	for _, n := range t.Nodes {
		addTunnelInterfaces(t, n, ps)
		resolveInterfaces(t, n, specs[n.Name], ps)
		checkAddresses(n, ps)
		resolveRoutes(n, specs[n.Name].Routes, ps)
		resolveBGP(n, specs[n.Name].BGP, ps)
		if kinds.Known(n.Kind) {
			kinds.CheckNode(n, ps)
		}
	}
	checkTunnelAddresses(t, ps)
	return t
}

func supported(kind string, kinds KindSet) string {
	s := "supported: " + strings.Join(kinds.Kinds(), ", ")
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
	kind, kindPos := DefaultKind, e.KeyPos
	switch {
	case e.Value.Kind != nil:
		kind, kindPos = *e.Value.Kind, e.Value.KindPos
	case body.Defaults.Kind != nil:
		kind, kindPos = *body.Defaults.Kind, body.Defaults.KindPos
	}
	spec := e.Value
	if kind != "" && !kinds.Known(kind) {
		if e.Value.Kind != nil {
			ps.errorf(kindPos, "node %q: unknown kind %q (%s)", e.Key, kind, supported(kind, kinds))
		}
	} else if ks, ok := body.Kinds.Get(kind); ok {
		spec = inherit(spec, ks)
	}
	spec = inherit(spec, body.Defaults)

	n := &Node{
		Name:    e.Key,
		Pos:     e.KeyPos,
		Kind:    kind,
		Image:   deref(spec.Image),
		Cmd:     deref(spec.Cmd),
		Env:     toMap(spec.Env),
		Binds:   spec.Binds,
		Exec:    spec.Exec,
		Labels:  toMap(spec.Labels),
		Group:   deref(spec.Group),
		Forward: spec.Forward != nil && *spec.Forward,
	}
	n.BridgeVLANProtocol = Dot1Q
	if spec.Bridge != nil && spec.Bridge.VLANProtocol != "" {
		switch strings.ToLower(spec.Bridge.VLANProtocol) {
		case "802.1q", "0x8100":
		case "802.1ad", "0x88a8":
			n.BridgeVLANProtocol = Dot1ad
		default:
			ps.errorf(spec.Bridge.Pos, "node %q: bridge: vlan-protocol %q: 802.1Q (a VLAN switch) or 802.1ad (a provider bridge)", n.Name, spec.Bridge.VLANProtocol)
		}
	}
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
	var links []*Link
	for i, ls := range specs {
		if len(ls.Endpoints) != 2 {
			pos := ls.EndpointsPos
			if pos.Line == 0 {
				pos = ls.Pos
			}
			ps.errorf(pos, "links[%d]: needs exactly two endpoints, such as endpoints: [\"ce1:eth1\", \"pe1:eth1\"]; got %d", i, len(ls.Endpoints))
			continue
		}
		l := &Link{Pos: ls.Pos}
		ok := true
		for j, es := range ls.Endpoints {
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
		if ok && ls.MACsec != nil {
			resolveMACsec(t, l, ls.MACsec, filepath.Dir(ps.file), i, ps)
		}
		if ok {
			links = append(links, l)
		}
	}
	return links
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

func resolveInterfaces(t *Topology, n *Node, spec NodeSpec, ps *problems) {
	for _, l := range t.Links {
		for _, ep := range []Endpoint{l.A, l.B} {
			if ep.Node != n.Name {
				continue
			}
			end := &Interface{Name: ep.Iface, Pos: ep.Pos, Type: TypeVeth, Link: l, MTU: l.MTU}
			n.Interfaces = append(n.Interfaces, end)
			if l.MACsec == nil {
				continue
			}
			// The peer builds our SCI from this address: fix it in advance.
			end.MAC = linkMAC(t.Name, ep)
			if other := n.Interface(l.MACsec.Device); other != nil {
				ps.errorf(ep.Pos, "node %q: MACsec device %q is on two links; give each link's macsec a device: name", n.Name, l.MACsec.Device)
				continue
			}
			parent := ep.Iface
			if l.MACsec.Subinterface != "" {
				parent += "." + l.MACsec.Subinterface // declared under the node's interfaces; checked below
			}
			n.Interfaces = append(n.Interfaces, &Interface{Name: l.MACsec.Device, Pos: ep.Pos, Type: TypeMACsec, Link: l, Parent: parent})
		}
	}
	for _, e := range spec.Interfaces {
		name, is := e.Key, e.Value
		where := fmt.Sprintf("node %q: interface %q", n.Name, name)
		if msg := ValidIfName(name); msg != "" {
			ps.errorf(e.KeyPos, "node %q: %s", n.Name, msg)
			continue
		}
		iface := n.Interface(name)
		switch {
		case iface != nil && iface.Type == TypeMACsec:
			if is.Parent != nil || is.VLAN != nil {
				ps.errorf(e.KeyPos, "%s: is the MACsec device of a link, on %s", where, iface.Parent)
			}
		case iface != nil:
			if is.Parent != nil || is.VLAN != nil {
				ps.errorf(e.KeyPos, "%s: ends a link, so it cannot also be a VLAN subinterface", where)
			}
		case name == "lo":
			iface = &Interface{Name: name, Type: TypeLoopback}
			n.Interfaces = append(n.Interfaces, iface)
		case is.Parent != nil || is.VLAN != nil || strings.Contains(name, "."):
			iface = &Interface{Name: name, Type: TypeVLAN}
			if !resolveVLAN(iface, is, where, e.KeyPos, ps) {
				continue
			}
			n.Interfaces = append(n.Interfaces, iface)
		default:
			ps.errorf(e.KeyPos, "%s: is on no link; add a link with endpoint \"%s:%s\", or make it a VLAN subinterface (parent:, vlan:)", where, n.Name, name)
			continue
		}
		iface.Pos = e.KeyPos
		applyInterfaceSpec(iface, is, where, ps)
	}
	// A VLAN's parent must exist on the node and the chain must end at a real
	// device; a cycle (a.1 → b.1 → a.1) has no device at its root.
	// One tag per parent: a VLAN ID (of one EtherType) twice on a parent
	// is refused by the kernel, and on a Dot1Q port it would put two
	// peerings on one C-tag.
	type tag struct {
		parent string
		id     int
		proto  VLANProtocol
	}
	tags := map[tag]string{}
	for _, iface := range n.Interfaces {
		if iface.Type != TypeVLAN {
			continue
		}
		k := tag{iface.Parent, iface.VLAN, iface.VLANProtocol}
		if other, dup := tags[k]; dup {
			ps.errorf(iface.Pos, "node %q: interface %q: VLAN %d (%s) on %s is already %s", n.Name, iface.Name, iface.VLAN, iface.VLANProtocol, iface.Parent, other)
			continue
		}
		tags[k] = iface.Name
	}
	// One VLAN per peering per circuit: a circuit is what a parent carries
	// (a Dot1Q port, or an S-tag on a QinQ port).
	type peering struct{ parent, name string }
	peerings := map[peering]*Interface{}
	for _, iface := range n.Interfaces {
		if iface.Peering == "" {
			continue
		}
		k := peering{iface.Parent, iface.Peering}
		if other, dup := peerings[k]; dup {
			ps.errorf(iface.Pos, "node %q: interface %q: the circuit on %s already has its %s peering on VLAN %d (%s); one VLAN per peering per circuit",
				n.Name, iface.Name, iface.Parent, iface.Peering, other.VLAN, other.Name)
			continue
		}
		peerings[k] = iface
	}
	for _, iface := range n.Interfaces {
		if iface.Type != TypeVLAN {
			continue
		}
		where := fmt.Sprintf("node %q: interface %q", n.Name, iface.Name)
		parent := n.Interface(iface.Parent)
		switch {
		case parent == nil:
			ps.errorf(iface.Pos, "%s: parent %q is not an interface of this node", where, iface.Parent)
		case parent.Type == TypeLoopback:
			ps.errorf(iface.Pos, "%s: a VLAN cannot sit on the loopback device", where)
		case vlanCycle(n, iface):
			ps.errorf(iface.Pos, "%s: its parent chain loops back to itself", where)
		}
	}
	for _, iface := range n.Interfaces {
		if iface.Type != TypeMACsec || iface.Link.MACsec.Subinterface == "" {
			continue
		}
		if p := n.Interface(iface.Parent); p == nil || p.Type != TypeVLAN {
			ps.errorf(iface.Pos, "node %q: MACsec device %q goes on subinterface %s, which is not a VLAN subinterface of this node; declare it under its interfaces", n.Name, iface.Name, iface.Parent)
		}
	}
	planMTU(n, ps)
	slices.SortStableFunc(n.Interfaces, func(a, b *Interface) int { return NaturalCompare(a.Name, b.Name) })
}

func vlanCycle(n *Node, iface *Interface) bool {
	cur := iface
	for range len(n.Interfaces) + 1 {
		if cur.Type != TypeVLAN {
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

// resolveVLAN fills a subinterface from its keys, or from its name in the
// usual PARENT.ID form (eth1.100) when the keys are absent.
func resolveVLAN(iface *Interface, is InterfaceSpec, where string, pos Pos, ps *problems) bool {
	parent, idText := "", ""
	if i := strings.LastIndex(iface.Name, "."); i > 0 {
		parent, idText = iface.Name[:i], iface.Name[i+1:]
	}
	if is.Parent != nil {
		parent = *is.Parent
	}
	if parent == "" {
		ps.errorf(pos, "%s: a VLAN subinterface needs parent: (or a name such as eth1.100)", where)
		return false
	}
	iface.Parent = parent
	idPos := pos
	switch {
	case is.VLAN != nil:
		iface.VLAN, idPos = *is.VLAN, is.VLANPos
	case idText != "":
		id, err := strconv.Atoi(idText)
		if err != nil {
			ps.errorf(pos, "%s: the VLAN ID cannot be read from the name; give vlan: ID", where)
			return false
		}
		iface.VLAN = id
	default:
		ps.errorf(pos, "%s: a VLAN subinterface needs vlan: ID", where)
		return false
	}
	if iface.VLAN < 1 || iface.VLAN > 4094 {
		ps.errorf(idPos, "%s: VLAN ID %d is out of range (1 to 4094; 0 and 4095 are reserved by 802.1Q)", where, iface.VLAN)
		return false
	}
	iface.VLANProtocol = Dot1Q
	if is.VLANProtocol != nil {
		switch strings.ToLower(*is.VLANProtocol) {
		case "802.1q", "0x8100", "dot1q":
			iface.VLANProtocol = Dot1Q
		case "802.1ad", "0x88a8", "qinq":
			iface.VLANProtocol = Dot1ad
		default:
			ps.errorf(is.VLANProtocolPos, "%s: vlan-protocol %q: expected 802.1Q (0x8100) or 802.1ad (0x88A8)", where, *is.VLANProtocol)
			return false
		}
	}
	return true
}

func applyInterfaceSpec(iface *Interface, is InterfaceSpec, where string, ps *problems) {
	if is.Peering != nil {
		switch {
		case *is.Peering != "private" && *is.Peering != "microsoft":
			ps.errorf(is.PeeringPos, "%s: peering %q: private or microsoft", where, *is.Peering)
		case iface.Type != TypeVLAN:
			ps.errorf(is.PeeringPos, "%s: peering: only a VLAN subinterface carries a peering", where)
		default:
			iface.Peering = *is.Peering
		}
	}
	if is.MTU != nil {
		if msg := checkMTU(*is.MTU); msg != "" {
			ps.errorf(is.MTUPos, "%s: %s", where, msg)
		}
		iface.MTU = *is.MTU
	}
	if is.MAC != nil {
		mac, err := net.ParseMAC(*is.MAC)
		switch {
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
	if is.Access != nil {
		if *is.Access < 1 || *is.Access > 4094 {
			ps.errorf(is.AccessPos, "%s: access VLAN %d is out of range (1 to 4094)", where, *is.Access)
		}
		iface.Access = *is.Access
	}
	for _, v := range is.Trunk {
		if v < 1 || v > 4094 {
			ps.errorf(is.TrunkPos, "%s: trunk VLAN %d is out of range (1 to 4094)", where, v)
		}
	}
	iface.Trunk = is.Trunk
	if is.Access != nil && len(is.Trunk) > 0 {
		ps.errorf(is.AccessPos, "%s: a port is access (one untagged VLAN) or trunk (tagged VLANs), not both", where)
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
