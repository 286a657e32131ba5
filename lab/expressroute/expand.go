package expressroute

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/erlab-dev/erlab/lab/topo"
)

// What the model writes: the plain topology's keys, as the features read
// them.

type nodeOut struct {
	Kind       string       `yaml:"kind,omitempty"`
	Group      string       `yaml:"group,omitempty"`
	Bridge     *bridgeOut   `yaml:"bridge,omitempty"`
	Interfaces topo.Ordered `yaml:"interfaces,omitempty"`
	Routes     []routeOut   `yaml:"routes,omitempty"`
	BGP        *bgpOut      `yaml:"bgp,omitempty"`
}

type bridgeOut struct {
	VLANProtocol string `yaml:"vlan-protocol"`
}

type ifOut struct {
	Addresses    []string   `yaml:"addresses,omitempty"`
	MTU          int        `yaml:"mtu,omitempty"`
	Parent       string     `yaml:"parent,omitempty"`
	VLAN         int        `yaml:"vlan,omitempty"`
	VLANProtocol string     `yaml:"vlan-protocol,omitempty"`
	Peering      string     `yaml:"peering,omitempty"`
	Access       int        `yaml:"access,omitempty"`
	Trunk        []int      `yaml:"trunk,omitempty"`
	Impair       *impairOut `yaml:"impair,omitempty"`
}

type routeOut struct {
	Dst string `yaml:"dst"`
	Via string `yaml:"via"`
}

type bgpOut struct {
	ASN       uint32    `yaml:"asn"`
	Networks  []any     `yaml:"networks,omitempty"` // a prefix, or a networkOut
	Neighbors []*nbrOut `yaml:"neighbors"`
}

type networkOut struct {
	Prefix      string   `yaml:"prefix"`
	Communities []string `yaml:"communities"`
}

type nbrOut struct {
	Address     string     `yaml:"address"`
	RemoteAS    uint32     `yaml:"remote-as"`
	Description string     `yaml:"description,omitempty"`
	HoldTime    int        `yaml:"hold-time,omitempty"`
	Keepalive   int        `yaml:"keepalive,omitempty"`
	Password    topo.Raw   `yaml:"password,omitempty"`
	BFD         *bfdOut    `yaml:"bfd,omitempty"`
	MaxPrefixes int        `yaml:"max-prefixes,omitempty"`
	RemovePriv  bool       `yaml:"remove-private-as,omitempty"`
	Families    []string   `yaml:"families,omitempty"`
	Import      *policyOut `yaml:"import,omitempty"`
	Export      *policyOut `yaml:"export,omitempty"`
}

type bfdOut struct {
	MinTx      int `yaml:"min-tx"`
	MinRx      int `yaml:"min-rx"`
	Multiplier int `yaml:"multiplier"`
}

type policyOut struct {
	Prefixes    []prefixOut `yaml:"prefixes,omitempty"`
	Deny        []prefixOut `yaml:"deny,omitempty"`
	LocalPref   *uint32     `yaml:"local-pref,omitempty"`
	Prepend     int         `yaml:"prepend,omitempty"`
	Communities []string    `yaml:"communities,omitempty"`
	NextHopSelf bool        `yaml:"next-hop-self,omitempty"`
	// Match is a route filter: nil writes nothing, an empty list [].
	Match *[]string `yaml:"match-communities,omitempty"`
}

type prefixOut struct {
	Prefix string `yaml:"prefix"`
	LE     int    `yaml:"le,omitempty"`
}

// within is a prefix and everything inside it.
func within(p netip.Prefix) prefixOut { return prefixOut{Prefix: p.String(), LE: p.Addr().BitLen()} }

func exact(p netip.Prefix) prefixOut { return prefixOut{Prefix: p.String()} }

type linkOut struct {
	Endpoints []string   `yaml:"endpoints"`
	Impair    *impairOut `yaml:"impair,omitempty"`
	MACsec    topo.Raw   `yaml:"macsec,omitempty"`
}

type tunnelOut struct {
	Name      string      `yaml:"name"`
	Endpoints []tunEndOut `yaml:"endpoints"`
	Algorithm string      `yaml:"algorithm"`
	IKE       ikeOut      `yaml:"ike"`
	Verify    verifyOut   `yaml:"verify"`
}

type tunEndOut struct {
	Node      string `yaml:"node"`
	Local     string `yaml:"local"`
	Interface string `yaml:"interface"`
}

type ikeOut struct {
	PSK topo.Raw `yaml:"psk"`
}

type verifyOut struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

type impairOut struct {
	Rate string `yaml:"rate"`
}

// Node groups, for graph and inspect.
const (
	groupOnPrem    = "on-premises"
	groupProvider  = "provider"
	groupMicrosoft = "microsoft"
	groupAzure     = "azure"
)

// builder collects the expansion before it is handed to the loader, so that
// nodes are written whole, in a stable order.
type builder struct {
	m       *model
	order   []string
	nodes   map[string]*nodeB
	links   []linkB
	tunnels []tunnelB
	filters []filterB
	pool    *pool
	pool6   *pool // the IPv6 side of the same links, when dual
	// toMicrosoft is, per MSEE that carries Microsoft peering, the
	// customers' public prefixes it passes on to Microsoft's network.
	toMicrosoft map[string][]netip.Prefix
	mseeOrder   []string
	// tunnelEnds counts each node's tunnels, to name their interfaces.
	tunnelEnds map[string]int
	// siteExtra is what a site's customer edges send Microsoft beside the
	// site's network (a VPN tunnel's end), and siteDeny what they keep
	// back (the more-specifics a tunnel over the circuit carries).
	siteExtra, siteDeny map[*site][]netip.Prefix
}

type nodeB struct {
	at      topo.Pos
	comment string
	out     nodeOut
	ports   int
}

type linkB struct {
	at      topo.Pos
	comment string
	out     linkOut
}

type filterB struct {
	at      topo.Pos
	comment string
	out     filterOut
}

type filterOut struct {
	Circuit     string   `yaml:"circuit"`
	Communities []string `yaml:"communities"`
	Attached    bool     `yaml:"attached"`
	Sessions    []string `yaml:"sessions"`
}

type tunnelB struct {
	at      topo.Pos
	comment string
	out     tunnelOut
}

func (b *builder) node(name string, at topo.Pos, comment string, out nodeOut) *nodeB {
	n := &nodeB{at: at, comment: comment, out: out}
	b.order = append(b.order, name)
	b.nodes[name] = n
	return n
}

// port takes a node's next link port.
func (b *builder) port(name string) string {
	n := b.nodes[name]
	n.ports++
	return fmt.Sprintf("eth%d", n.ports)
}

func (n *nodeB) iface(name string, i ifOut) {
	n.out.Interfaces = append(n.out.Interfaces, topo.KV{K: name, V: i})
}

// addAddress adds an address to an interface the node has already, or to a
// new one.
func (n *nodeB) addAddress(name string, addr string) {
	for k, kv := range n.out.Interfaces {
		if kv.K == name {
			i := kv.V.(ifOut)
			i.Addresses = append(i.Addresses, addr)
			n.out.Interfaces[k].V = i
			return
		}
	}
	n.iface(name, ifOut{Addresses: []string{addr}})
}

func (n *nodeB) neighbor(nb *nbrOut) { n.out.BGP.Neighbors = append(n.out.BGP.Neighbors, nb) }

func (n *nodeB) network(p any) { n.out.BGP.Networks = append(n.out.BGP.Networks, p) }

// connect links a's and b's next ports and returns their names.
func (b *builder) connect(at topo.Pos, comment, x, y string, extra linkOut) (string, string) {
	px, py := b.port(x), b.port(y)
	extra.Endpoints = []string{x + ":" + px, y + ":" + py}
	b.links = append(b.links, linkB{at: at, comment: comment, out: extra})
	return px, py
}

// wire links x and y over a /30 of the internal pool, x taking the first
// usable address; it returns both addresses.
func (b *builder) wire(at topo.Pos, comment, x, y string) (netip.Addr, netip.Addr) {
	return b.wireWith(at, comment, x, y, linkOut{})
}

// wireWith is wire with more on the link (a rate limit).
func (b *builder) wireWith(at topo.Pos, comment, x, y string, extra linkOut) (netip.Addr, netip.Addr) {
	ax, ay, _, _ := b.wireDual(at, comment, x, y, extra, false)
	return ax, ay
}

// wireDual is wireWith that, when dual, numbers the link from the IPv6
// pool too (a /126, x on the first usable address) and returns those
// addresses as well.
func (b *builder) wireDual(at topo.Pos, comment, x, y string, extra linkOut, dual bool) (ax, ay, ax6, ay6 netip.Addr) {
	px, py := b.connect(at, comment, x, y, extra)
	ax, ay = hosts30(b.pool.next())
	ix, iy := ifOut{Addresses: []string{pfx(ax, 30)}}, ifOut{Addresses: []string{pfx(ay, 30)}}
	if dual {
		ax6, ay6 = hosts30(b.pool6.next())
		ix.Addresses = append(ix.Addresses, pfx(ax6, 126))
		iy.Addresses = append(iy.Addresses, pfx(ay6, 126))
	}
	b.nodes[x].iface(px, ix)
	b.nodes[y].iface(py, iy)
	return ax, ay, ax6, ay6
}

func (b *builder) emit(x *topo.Expansion) {
	if b.m.dual {
		// A dual-stack lab runs one session per family: over an IPv4
		// session GoBGP would send IPv6 routes with an IPv4 next hop.
		for _, n := range b.nodes {
			if n.out.BGP == nil {
				continue
			}
			for _, nb := range n.out.BGP.Neighbors {
				nb.Families = []string{"ipv4"}
				if strings.Contains(nb.Address, ":") {
					nb.Families = []string{"ipv6"}
				}
			}
		}
	}
	for _, name := range b.order {
		n := b.nodes[name]
		x.AddNode(name, n.at, n.comment, n.out)
	}
	for _, l := range b.links {
		x.AddLink(l.at, l.comment, l.out)
	}
	for _, t := range b.tunnels {
		x.AddItem("tunnels", t.at, t.comment, t.out)
	}
	for _, f := range b.filters {
		x.AddItem(FiltersKey, f.at, f.comment, f.out)
	}
}

// pool numbers the internal links, /30 after /30, and counts what it was
// asked for beyond its end.
type pool struct {
	next30 netip.Addr
	bits   int // 30, or 126
	left   int
	over   int
}

func newPool(p netip.Prefix) *pool {
	host := p.Addr().BitLen() - p.Bits()
	left := 1 << 20 // an IPv6 pool of more than a million /126s is as good as endless
	if host-2 < 20 {
		left = 1 << (host - 2)
	}
	return &pool{next30: p.Masked().Addr(), left: left, bits: p.Addr().BitLen() - 2}
}

// next is the pool's next /30 (/126 for IPv6).
func (p *pool) next() netip.Prefix {
	if p.left == 0 {
		p.over++
	} else {
		p.left--
	}
	n := netip.PrefixFrom(p.next30, p.bits)
	a := p.next30
	for range 4 {
		a = a.Next()
	}
	p.next30 = a
	return n
}

// hosts30 is a /30's first and second usable addresses.
func hosts30(p netip.Prefix) (netip.Addr, netip.Addr) {
	a := p.Masked().Addr().Next()
	return a, a.Next()
}

func pfx(a netip.Addr, bits int) string { return netip.PrefixFrom(a, bits).String() }

// halves splits a /29 into its two /30s (model: "the first /30 is the
// primary link, the second the secondary"), or any prefix into its two
// halves.
func halves(p netip.Prefix) [2]netip.Prefix {
	bits := p.Bits() + 1
	first := netip.PrefixFrom(p.Masked().Addr(), bits)
	return [2]netip.Prefix{first, netip.PrefixFrom(addPow2(first.Addr(), first.Addr().BitLen()-bits), bits)}
}

// addPow2 adds 2^n to an address.
func addPow2(a netip.Addr, n int) netip.Addr {
	b := a.AsSlice()
	carry := 1 << (n % 8)
	for i := len(b) - 1 - n/8; i >= 0 && carry > 0; i-- {
		sum := int(b[i]) + carry
		b[i], carry = byte(sum), sum>>8
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

// nth is the address n after a.
func nth(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

// rate is a bandwidth as tc writes it: 200Mbps → 200mbit.
func rate(bw string) string {
	s := strings.ToLower(bw)
	s = strings.TrimSuffix(s, "ps")
	return strings.TrimSuffix(s, "b") + "bit"
}

func u32(v uint32) *uint32 { return &v }

// msSession is what the Microsoft edge runs on every customer-facing
// session (model: "Timers and failure detection"): 60/180 s and BFD at
// 300 ms × 3.
func msSession(nb *nbrOut) *nbrOut {
	nb.HoldTime, nb.Keepalive = HoldTime, Keepalive
	nb.BFD = &bfdOut{MinTx: BFDInterval, MinRx: BFDInterval, Multiplier: BFDMultiplier}
	return nb
}

var links = [2]string{"primary", "secondary"}

// expand writes the model's plain topology.
func (m *model) expand(x *topo.Expansion) {
	b := &builder{m: m, nodes: map[string]*nodeB{}, pool: newPool(m.internal), pool6: newPool(m.internal6), toMicrosoft: map[string][]netip.Prefix{},
		tunnelEnds: map[string]int{}, siteExtra: map[*site][]netip.Prefix{}, siteDeny: map[*site][]netip.Prefix{}}
	// What the VPN connections over a circuit add to what the sites'
	// edges send, before the edges are written.
	for _, v := range m.vnets {
		for _, vc := range v.vpns {
			if vc.over != nil {
				vc.end = b.pool.next().Addr().Next() // a /32 of its own, outside the site's network
				b.siteExtra[vc.site] = append(b.siteExtra[vc.site], netip.PrefixFrom(vc.end, 32))
				h := halves(vc.site.network)
				b.siteDeny[vc.site] = append(b.siteDeny[vc.site], h[0], h[1])
			}
		}
	}
	for _, s := range m.sites {
		b.site(s)
	}
	for _, p := range m.ports {
		b.directPort(p)
	}
	for _, c := range m.circuits {
		b.circuit(c)
	}
	for _, v := range m.vnets {
		b.vnet(v)
	}
	for _, r := range m.reach {
		b.globalReach(r)
	}
	if len(b.mseeOrder) > 0 {
		b.microsoftNetwork()
	}
	for _, v := range m.vnets {
		if len(v.vpns) > 0 {
			b.vpnGateway(v)
		}
	}
	if b.pool.over > 0 {
		have := 1 << (32 - m.internal.Bits()) / 4
		x.Reporter().Errorf(m.internalAt, "expressroute: internal: %s holds %d /30s; the lab needs %d (give a larger internal: pool)", m.internal, have, have+b.pool.over)
		return
	}
	b.emit(x)
}

// publics is what a site advertises over Microsoft peering.
func (b *builder) publics(s *site) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range b.m.circuits {
		for _, pr := range c.peerings {
			for _, a := range pr.advertise {
				if c.site == s && !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	return out
}

func (b *builder) site(s *site) {
	core := b.node(s.core(), s.spec.Pos, fmt.Sprintf("site %s (AS %d): its router, meeting its customer edges over iBGP", s.spec.Name, s.spec.ASN),
		nodeOut{Kind: "router", Group: groupOnPrem, BGP: &bgpOut{ASN: s.spec.ASN}})
	core.network(s.network.String())
	host := b.node(s.host(), s.spec.Pos, fmt.Sprintf("site %s: a host on its network", s.spec.Name), nodeOut{Group: groupOnPrem})
	pc, ph := b.connect(s.spec.Pos, "", s.core(), s.host(), linkOut{})
	gw := s.network.Masked().Addr().Next()
	core.iface(pc, ifOut{Addresses: []string{pfx(gw, s.network.Bits())}})
	host.iface(ph, ifOut{Addresses: []string{pfx(s.hostAddr(), s.network.Bits())}})
	host.out.Routes = []routeOut{{Dst: "default", Via: gw.String()}}
	if n6 := s.network6; n6.IsValid() {
		// The site's IPv6 LAN: the network's first /64, the router on ::1.
		lan := netip.PrefixFrom(n6.Addr(), 64)
		gw6 := lan.Addr().Next()
		core.addAddress(pc, pfx(gw6, 64))
		host.addAddress(ph, pfx(nth(lan.Addr(), 10), 64))
		host.out.Routes = append(host.out.Routes, routeOut{Dst: "default", Via: gw6.String()})
		core.network(n6.String())
	}
	// The public prefixes Microsoft peering carries: the site's router
	// originates them, and a host on the first stands for what the site
	// sends Microsoft from public addresses (Microsoft peering takes no
	// private source; a NAT pool in a real site).
	pubs := b.publics(s)
	for _, p := range pubs {
		core.network(p.String())
	}
	if len(pubs) > 0 && pubs[0].Bits() <= 30 {
		pub := b.node(s.public(), s.spec.Pos, fmt.Sprintf("site %s: a host on its public prefix %s, which Microsoft peering carries", s.spec.Name, pubs[0]), nodeOut{Group: groupOnPrem})
		pc, pp := b.connect(s.spec.Pos, "", s.core(), s.public(), linkOut{})
		a := pubs[0].Masked().Addr().Next()
		core.iface(pc, ifOut{Addresses: []string{pfx(a, pubs[0].Bits())}})
		pub.iface(pp, ifOut{Addresses: []string{pfx(a.Next(), pubs[0].Bits())}})
		pub.out.Routes = []routeOut{{Dst: "default", Via: a.String()}}
	}
	for _, e := range b.siteExtra[s] {
		core.network(e.String())
		core.addAddress("lo", e.String())
	}
}

// customerEdge makes the CE pair of a circuit (or of a Direct port pair).
func (b *builder) customerEdge(prefix string, s *site, at topo.Pos, what string) {
	for i := range 2 {
		ce := fmt.Sprintf("%s-ce%d", prefix, i+1)
		b.node(ce, at, fmt.Sprintf("%s: the customer's %s edge router", what, links[i]),
			nodeOut{Kind: "router", Group: groupOnPrem, BGP: &bgpOut{ASN: s.spec.ASN}})
	}
}

// toSite meets a CE pair with its site's router over iBGP, the CEs
// advertising themselves as the next hop for what Microsoft sends.
func (b *builder) toSite(prefix string, s *site, at topo.Pos) {
	dual := b.dualSite(s)
	for i := range 2 {
		ce := fmt.Sprintf("%s-ce%d", prefix, i+1)
		coreAddr, ceAddr, core6, ce6 := b.wireDual(at, "", s.core(), ce, linkOut{}, dual)
		pairs := [][2]netip.Addr{{coreAddr, ceAddr}}
		if dual {
			pairs = append(pairs, [2]netip.Addr{core6, ce6})
		}
		for _, p := range pairs {
			b.nodes[ce].neighbor(&nbrOut{Address: p[0].String(), RemoteAS: s.spec.ASN, Description: s.spec.Name,
				Export: &policyOut{NextHopSelf: true}})
			// The site's router is the next hop of what it tells its edges
			// (a route over a VPN tunnel among it).
			b.nodes[s.core()].neighbor(&nbrOut{Address: p[1].String(), RemoteAS: s.spec.ASN, Description: ce, Export: &policyOut{NextHopSelf: true}})
		}
	}
}

func (b *builder) msee(prefix string, at topo.Pos, what string) {
	for i := range 2 {
		b.node(fmt.Sprintf("%s-msee%d", prefix, i+1), at, fmt.Sprintf("%s: Microsoft's %s edge router (MSEE)", what, links[i]),
			nodeOut{Kind: "router", Group: groupMicrosoft, BGP: &bgpOut{ASN: MicrosoftASN}})
	}
}

func (b *builder) directPort(p *port) {
	what := fmt.Sprintf("ExpressRoute Direct port pair %s (%s)", p.spec.Name, p.encap)
	b.customerEdge(p.spec.Name, p.site, p.spec.Pos, what)
	b.msee(p.spec.Name, p.spec.Pos, what)
	for i := range 2 {
		ce, ms := p.ce(i), p.msee(i)
		sec := p.spec.MACsec
		if i == 1 && !p.spec.MACsecSecondary.IsZero() {
			sec = p.spec.MACsecSecondary
		}
		pc, pm := b.connect(p.spec.Pos, fmt.Sprintf("%s: the %s port", what, links[i]), ce, ms, linkOut{MACsec: sec})
		// The circuits' tags ride on the MACsec device when the port
		// has one (MACsec covers all traffic on the port, BGP included).
		p.parent[0], p.parent[1] = pc, pm
		if p.macsecDev != "" {
			p.parent[0], p.parent[1] = p.macsecDev, p.macsecDev
		}
	}
	b.toSite(p.spec.Name, p.site, p.spec.Pos)
}

// siteExport is what a customer edge sends Microsoft over private peering:
// the site's network and anything in it (a leak of more-specifics counts
// against the MSEE's prefix limit), less what a tunnel over the circuit
// carries, plus the tunnel's end.
func (b *builder) siteExport(s *site) ([]prefixOut, []prefixOut) {
	out := []prefixOut{within(s.network)}
	for _, e := range b.siteExtra[s] {
		out = append(out, exact(e))
	}
	var deny []prefixOut
	for _, d := range b.siteDeny[s] {
		deny = append(deny, exact(d))
	}
	return out, deny
}

func (b *builder) circuit(c *circuit) {
	what := fmt.Sprintf("circuit %s (%s", c.spec.Name, c.model)
	if c.spec.Bandwidth != "" {
		what += ", " + c.spec.Bandwidth
	}
	what += ")"
	if c.port == nil {
		b.customerEdge(c.spec.Name, c.site, c.spec.Pos, what)
		b.msee(c.spec.Name, c.spec.Pos, what)
		defer b.toSite(c.spec.Name, c.site, c.spec.Pos)
	}
	siteOut, siteDeny := b.siteExport(c.site)
	for i := range 2 {
		ce, ms := c.ce(i), c.msee(i)
		var custIf, mseeIf func(vlan int) string // the peering's subinterface on each side
		var cust string                          // who peers with the MSEE: the CE, or the provider's PE
		switch c.model {
		case CloudExchange, PointToPoint:
			pe := fmt.Sprintf("%s-pe%d", c.spec.Name, i+1)
			n := b.node(pe, c.spec.Pos, fmt.Sprintf("%s: the provider's %s switch", what, links[i]), nodeOut{Kind: "bridge", Group: groupProvider})
			pc, pp := b.connect(c.spec.Pos, fmt.Sprintf("%s: %s link, the customer's side", what, links[i]), ce, pe, c.rateLimit())
			pp2, pm := b.connect(c.spec.Pos, fmt.Sprintf("%s: %s link, toward the MSEE", what, links[i]), pe, ms, linkOut{})
			vlans := c.vlans()
			if c.model == CloudExchange {
				// The provider's bridge pushes the circuit's S-tag (802.1ad)
				// on what the customer sends tagged.
				n.out.Bridge = &bridgeOut{VLANProtocol: "802.1ad"}
				n.iface(pp, ifOut{Access: c.sTag})
				n.iface(pp2, ifOut{Trunk: []int{c.sTag}})
				outer := fmt.Sprintf("%s.%d", pm, c.sTag)
				b.nodes[ms].iface(outer, ifOut{VLANProtocol: "802.1ad"})
				mseeIf = func(v int) string { return fmt.Sprintf("%s.%d", outer, v) }
			} else {
				// A point-to-point Ethernet line carries the customer's
				// 802.1Q tags as they are.
				n.iface(pp, ifOut{Trunk: vlans})
				n.iface(pp2, ifOut{Trunk: vlans})
				mseeIf = func(v int) string { return fmt.Sprintf("%s.%d", pm, v) }
			}
			custIf = func(v int) string { return fmt.Sprintf("%s.%d", pc, v) }
			cust = ce
		case AnyToAny:
			// The provider's PE routes: the customer's WAN link is the
			// provider's, the peering's VLAN runs from the PE to the MSEE,
			// and the PE is the MSEE's BGP peer (customer AS → provider
			// AS → 12076).
			pe := fmt.Sprintf("%s-pe%d", c.spec.Name, i+1)
			b.node(pe, c.spec.Pos, fmt.Sprintf("%s: the provider's %s PE router (AS %d)", what, links[i], c.spec.ProviderASN),
				nodeOut{Kind: "router", Group: groupProvider, BGP: &bgpOut{ASN: c.spec.ProviderASN}})
			ceAddr, peAddr, ce6, pe6 := b.wireDual(c.spec.Pos, fmt.Sprintf("%s: %s, the customer's WAN link", what, links[i]), ce, pe, c.rateLimit(), c.dual())
			lp := c.localPref(i)
			b.nodes[ce].neighbor(&nbrOut{Address: peAddr.String(), RemoteAS: c.spec.ProviderASN, Description: fmt.Sprintf("%s %s", c.spec.Name, links[i]),
				Import: &policyOut{LocalPref: u32(lp)}, Export: &policyOut{Prepend: c.prepend(i), Prefixes: siteOut, Deny: siteDeny}})
			b.nodes[pe].neighbor(&nbrOut{Address: ceAddr.String(), RemoteAS: c.site.spec.ASN, Description: ce})
			if c.dual() {
				b.nodes[ce].neighbor(&nbrOut{Address: pe6.String(), RemoteAS: c.spec.ProviderASN, Description: fmt.Sprintf("%s %s", c.spec.Name, links[i]),
					Import: &policyOut{LocalPref: u32(lp)}, Export: &policyOut{Prepend: c.prepend(i), Prefixes: []prefixOut{within(c.site.network6)}}})
				b.nodes[pe].neighbor(&nbrOut{Address: ce6.String(), RemoteAS: c.site.spec.ASN, Description: ce})
			}
			pp, pm := b.connect(c.spec.Pos, fmt.Sprintf("%s: %s, toward the MSEE", what, links[i]), pe, ms, linkOut{})
			custIf = func(v int) string { return fmt.Sprintf("%s.%d", pp, v) }
			mseeIf = func(v int) string { return fmt.Sprintf("%s.%d", pm, v) }
			cust = pe
		case Direct:
			parent := c.port.parent
			if c.port.encap == "qinq" {
				// Both tags are 802.1Q (0x8100) on ExpressRoute Direct
				// (model: "for QinQ both tags use EtherType 0x8100"). The
				// S-tag's subinterface is the circuit's own: its bandwidth
				// is a rate limit there, each side's egress.
				for side, node := range []string{ce, ms} {
					b.nodes[node].iface(fmt.Sprintf("%s.%d", parent[side], c.sTag), ifOut{VLANProtocol: "802.1Q", Impair: c.rateLimit().Impair})
				}
				custIf = func(v int) string { return inner(parent[0], c.sTag, v) }
				mseeIf = func(v int) string { return inner(parent[1], c.sTag, v) }
			} else {
				custIf = func(v int) string { return fmt.Sprintf("%s.%d", parent[0], v) }
				mseeIf = func(v int) string { return fmt.Sprintf("%s.%d", parent[1], v) }
			}
			cust = ce
		}
		for _, pr := range c.peerings {
			sub := pr.subnets[i]
			ca, ma := hosts30(sub)
			vlan := pr.spec.VLAN
			ci := ifOut{Addresses: []string{pfx(ca, 30)}, Peering: pr.kind}
			mi := ifOut{Addresses: []string{pfx(ma, 30)}, Peering: pr.kind}
			var ca6, ma6 netip.Addr
			if pr.subnets6[i].IsValid() {
				ca6, ma6 = hosts30(pr.subnets6[i]) // the /126's first and second usable addresses
				ci.Addresses = append(ci.Addresses, pfx(ca6, 126))
				mi.Addresses = append(mi.Addresses, pfx(ma6, 126))
			}
			if c.port != nil && c.port.encap == "dot1q" && c.port.circuits > 1 {
				// The peering label says one circuit per parent; a Dot1Q
				// port pair carries several on one (checked above, by
				// C-tag across the pair).
				ci.Peering, mi.Peering = "", ""
			}
			if c.port != nil {
				ci.MTU, mi.MTU = 1500, 1500 // model: "IP MTU 1500"
				if c.port.encap == "dot1q" {
					// A Dot1Q port gives a circuit no interface of its
					// own: each peering's VLAN is held to its bandwidth.
					lim := c.rateLimit().Impair
					ci.Impair, mi.Impair = lim, lim
				}
			}
			b.subif(cust, custIf(vlan), ci)
			b.subif(ms, mseeIf(vlan), mi)
			desc := fmt.Sprintf("%s %s %s", c.spec.Name, pr.kind, links[i])
			toCust := &policyOut{Prefixes: b.toCustomer(c, pr)}
			if pr.kind == "microsoft" {
				b.toMS(ms, pr.advertise)
				if pr.filter != nil {
					// The route filter: Microsoft's service routes whose
					// community it lists; detached, an empty list.
					f := []string{}
					if pr.attached {
						f = pr.filter
					}
					toCust = &policyOut{Match: &f}
					b.filterSession(c, pr, fmt.Sprintf("%s:%s", ms, ca))
				}
			}
			b.nodes[ms].neighbor(msSession(&nbrOut{Address: ca.String(), RemoteAS: c.custASN(), Description: desc, Password: pr.spec.MD5,
				MaxPrefixes: pr.limit, Export: toCust}))
			if c.model == AnyToAny {
				b.nodes[cust].neighbor(msSession(&nbrOut{Address: ma.String(), RemoteAS: MicrosoftASN, Description: desc, Password: pr.spec.MD5}))
				continue
			}
			exp := &policyOut{Prepend: c.prepend(i), Prefixes: siteOut, Deny: siteDeny}
			if pr.kind == "microsoft" {
				exp = &policyOut{Prepend: c.prepend(i)}
				for _, a := range pr.advertise {
					exp.Prefixes = append(exp.Prefixes, exact(a))
				}
			}
			b.nodes[cust].neighbor(msSession(&nbrOut{Address: ma.String(), RemoteAS: MicrosoftASN, Description: desc, Password: pr.spec.MD5,
				Import: &policyOut{LocalPref: u32(c.localPref(i))}, Export: exp}))
		}
		for _, pr := range c.peerings {
			if pr.subnets6[i].IsValid() {
				b.peering6(c, pr, i, cust, ms)
			}
		}
	}
}

// peering6 is a private peering's IPv6 session pair on link i: the same
// timers and BFD, the IPv6 prefix limit (model: "100 IPv6"), the VNets'
// IPv6 spaces one way and the site's IPv6 network the other.
func (b *builder) peering6(c *circuit, pr *peering, i int, cust, ms string) {
	ca6, ma6 := hosts30(pr.subnets6[i])
	desc := fmt.Sprintf("%s %s %s IPv6", c.spec.Name, pr.kind, links[i])
	toCust := []prefixOut{}
	for _, v := range b.m.vnets {
		for _, cn := range v.conns {
			if cn.circuit == c && v.space6.IsValid() {
				toCust = append(toCust, exact(v.space6))
			}
		}
	}
	b.nodes[ms].neighbor(msSession(&nbrOut{Address: ca6.String(), RemoteAS: c.custASN(), Description: desc, Password: pr.spec.MD5,
		MaxPrefixes: LimitIPv6, Export: &policyOut{Prefixes: toCust}}))
	if c.model == AnyToAny {
		b.nodes[cust].neighbor(msSession(&nbrOut{Address: ma6.String(), RemoteAS: MicrosoftASN, Description: desc, Password: pr.spec.MD5}))
		return
	}
	b.nodes[cust].neighbor(msSession(&nbrOut{Address: ma6.String(), RemoteAS: MicrosoftASN, Description: desc, Password: pr.spec.MD5,
		Import: &policyOut{LocalPref: u32(c.localPref(i))}, Export: &policyOut{Prepend: c.prepend(i), Prefixes: []prefixOut{within(c.site.network6)}}}))
}

// dualSite says the site runs IPv6 over ExpressRoute: an IPv6 network, and
// a circuit with IPv6 private peering.
func (b *builder) dualSite(s *site) bool {
	for _, c := range b.m.circuits {
		if c.site == s && c.dual() {
			return true
		}
	}
	return false
}

// filterSession notes an MSEE session a circuit's route filter is on.
func (b *builder) filterSession(c *circuit, pr *peering, session string) {
	for i := range b.filters {
		if b.filters[i].out.Circuit == c.spec.Name {
			b.filters[i].out.Sessions = append(b.filters[i].out.Sessions, session)
			return
		}
	}
	b.filters = append(b.filters, filterB{at: pr.spec.RouteFilter.Pos,
		comment: fmt.Sprintf("circuit %s's route filter on Microsoft peering, which route-filter-attach/-detach: %s change", c.spec.Name, c.spec.Name),
		out:     filterOut{Circuit: c.spec.Name, Communities: pr.filter, Attached: pr.attached, Sessions: []string{session}}})
}

// toMS notes what an MSEE passes on to Microsoft's network: the public
// prefixes its Microsoft peering customers advertise.
func (b *builder) toMS(msee string, adv []netip.Prefix) {
	if _, ok := b.toMicrosoft[msee]; !ok {
		b.mseeOrder = append(b.mseeOrder, msee)
		b.toMicrosoft[msee] = []netip.Prefix{}
	}
	for _, a := range adv {
		if !slices.Contains(b.toMicrosoft[msee], a) {
			b.toMicrosoft[msee] = append(b.toMicrosoft[msee], a)
		}
	}
}

// microsoftNetwork is what Microsoft peering reaches: Microsoft's global
// network behind the MSEEs, originating the services' prefixes tagged with
// their communities, and taking the customers' public prefixes with their
// private AS numbers removed (expressroute-routing.md: "we remove private
// AS numbers in the AS PATH for the received prefixes").
func (b *builder) microsoftNetwork() {
	n := b.node(MicrosoftNode, b.m.msAt, fmt.Sprintf("Microsoft's global network (AS %d): the services Microsoft peering reaches, their prefixes tagged with their communities", MicrosoftNetworkASN),
		nodeOut{Kind: "router", Group: groupMicrosoft, BGP: &bgpOut{ASN: MicrosoftNetworkASN}})
	for _, sv := range services {
		n.network(networkOut{Prefix: sv.prefix.String(), Communities: []string{sv.community}})
		n.addAddress("lo", pfx(sv.prefix.Addr().Next(), 32))
	}
	for _, ms := range b.mseeOrder {
		na, ma := b.wire(b.nodes[ms].at, fmt.Sprintf("%s to Microsoft's network", ms), MicrosoftNode, ms)
		n.neighbor(&nbrOut{Address: ma.String(), RemoteAS: MicrosoftASN, Description: ms})
		exp := &policyOut{Prefixes: []prefixOut{}}
		for _, p := range b.toMicrosoft[ms] {
			exp.Prefixes = append(exp.Prefixes, exact(p))
		}
		b.nodes[ms].neighbor(&nbrOut{Address: na.String(), RemoteAS: MicrosoftNetworkASN, Description: "Microsoft's network", RemovePriv: true, Export: exp})
	}
}

// rateLimit is the circuit's bandwidth as a rate limit (tbf): on the
// customer's link to the provider, or on a Direct circuit's subinterfaces
// of the port pair (the S-tag's with QinQ, each peering's with Dot1Q).
func (c *circuit) rateLimit() linkOut {
	if c.spec.Bandwidth == "" {
		return linkOut{}
	}
	return linkOut{Impair: &impairOut{Rate: rate(c.spec.Bandwidth)}}
}

// inner names a QinQ C-tag subinterface PARENT.S.C.
func inner(parent string, s, c int) string {
	return fmt.Sprintf("%s.%d.%d", parent, s, c)
}

// subif adds a subinterface. A stacked name that would not fit Linux's 15
// bytes (macsec0.4094.4094) becomes sSTAGcCTAG, its parent: and vlan: given.
func (b *builder) subif(node, name string, i ifOut) {
	if len(name) > 15 {
		dot := strings.LastIndex(name, ".")
		i.Parent = name[:dot]
		fmt.Sscanf(name[dot+1:], "%d", &i.VLAN)
		name = fmt.Sprintf("s%sc%d", i.Parent[strings.LastIndex(i.Parent, ".")+1:], i.VLAN)
	}
	b.nodes[node].iface(name, i)
}

// toCustomer is what an MSEE sends a circuit's customer over private
// peering: the address spaces of the virtual networks connected to the
// circuit and, with Global Reach, the other site's network. A shared Direct
// port pair does not leak one circuit's routes to another's customer.
func (b *builder) toCustomer(c *circuit, pr *peering) []prefixOut {
	out := []prefixOut{} // an empty filter sends nothing
	if pr.kind != "private" {
		return out // no route filter is attached: Microsoft sends nothing
	}
	for _, v := range b.m.vnets {
		for _, cn := range v.conns {
			if cn.circuit == c {
				out = append(out, exact(v.space))
			}
		}
	}
	for _, r := range b.m.reach {
		for k, rc := range r.circuits {
			if rc == c {
				out = append(out, within(r.circuits[1-k].site.network))
			}
		}
	}
	return out
}

func (b *builder) vnet(v *vnet) {
	gw := v.gw()
	vm := v.spec.Name + "-vm"
	b.node(gw, v.spec.Pos, fmt.Sprintf("virtual network %s: its ExpressRoute gateway (AS 65515, %s)", v.spec.Name, v.sku),
		nodeOut{Kind: "router", Group: groupAzure, BGP: &bgpOut{ASN: GatewayASN, Networks: []any{v.space.String()}}})
	b.node(vm, v.spec.Pos, fmt.Sprintf("virtual network %s: a workload", v.spec.Name), nodeOut{Group: groupAzure})
	pg, pv := b.connect(v.spec.Pos, "", gw, vm, linkOut{})
	sub := v.subnet()
	gwa := sub.Masked().Addr().Next()
	b.nodes[gw].iface(pg, ifOut{Addresses: []string{pfx(gwa, sub.Bits())}})
	b.nodes[vm].iface(pv, ifOut{Addresses: []string{pfx(v.vmAddr(), sub.Bits())}})
	b.nodes[vm].out.Routes = []routeOut{{Dst: "default", Via: gwa.String()}}
	if s6 := v.space6; s6.IsValid() {
		// The workloads' IPv6 subnet: the space's first /64.
		lan := netip.PrefixFrom(s6.Addr(), 64)
		b.nodes[gw].addAddress(pg, pfx(lan.Addr().Next(), 64))
		b.nodes[vm].addAddress(pv, pfx(nth(lan.Addr(), 4), 64))
		b.nodes[vm].out.Routes = append(b.nodes[vm].out.Routes, routeOut{Dst: "default", Via: lan.Addr().Next().String()})
		b.nodes[gw].network(s6.String())
	}
	for _, cn := range v.conns {
		c := cn.circuit
		siteOut, _ := b.siteExport(c.site)
		dual := v.space6.IsValid() && c.dual()
		for i := range 2 {
			ms := c.msee(i)
			ma, ga, ma6, ga6 := b.wireDual(cn.spec.Pos, fmt.Sprintf("connection %s to circuit %s, %s MSEE", v.spec.Name, c.spec.Name, links[i]), ms, gw, linkOut{}, dual)
			lp := uint32(100 + cn.spec.Weight) // model: connection weight first, then AS path
			// The gateway advertises its virtual network's address space.
			b.nodes[gw].neighbor(&nbrOut{Address: ma.String(), RemoteAS: MicrosoftASN, Description: fmt.Sprintf("%s %s", c.spec.Name, links[i]),
				HoldTime: HoldTime, Keepalive: Keepalive, Import: &policyOut{LocalPref: u32(lp)}, Export: &policyOut{Prefixes: []prefixOut{exact(v.space)}}})
			var imp *policyOut
			if v.community != "" {
				imp = &policyOut{Communities: []string{v.community}}
			}
			b.nodes[ms].neighbor(&nbrOut{Address: ga.String(), RemoteAS: GatewayASN, Description: gw,
				HoldTime: HoldTime, Keepalive: Keepalive, Import: imp, Export: &policyOut{Prefixes: siteOut}})
			if dual {
				b.nodes[gw].neighbor(&nbrOut{Address: ma6.String(), RemoteAS: MicrosoftASN, Description: fmt.Sprintf("%s %s IPv6", c.spec.Name, links[i]),
					HoldTime: HoldTime, Keepalive: Keepalive, Import: &policyOut{LocalPref: u32(lp)}, Export: &policyOut{Prefixes: []prefixOut{exact(v.space6)}}})
				b.nodes[ms].neighbor(&nbrOut{Address: ga6.String(), RemoteAS: GatewayASN, Description: gw,
					HoldTime: HoldTime, Keepalive: Keepalive, Import: imp, Export: &policyOut{Prefixes: []prefixOut{within(c.site.network6)}}})
			}
		}
	}
}

func (b *builder) globalReach(r *reach) {
	a, z := r.circuits[0], r.circuits[1]
	what := fmt.Sprintf("Global Reach %s to %s", a.spec.Name, z.spec.Name)
	for i, sub := range halves(r.subnet) {
		ma, mz := a.msee(i), z.msee(i)
		pa, pz := b.connect(r.spec.Pos, fmt.Sprintf("%s, %s", what, links[i]), ma, mz, linkOut{})
		xa, xz := hosts30(sub)
		b.nodes[ma].iface(pa, ifOut{Addresses: []string{pfx(xa, 30)}})
		b.nodes[mz].iface(pz, ifOut{Addresses: []string{pfx(xz, 30)}})
		b.nodes[ma].neighbor(&nbrOut{Address: xz.String(), RemoteAS: MicrosoftASN, Description: what,
			Export: &policyOut{NextHopSelf: true, Prefixes: []prefixOut{within(a.site.network)}}})
		b.nodes[mz].neighbor(&nbrOut{Address: xa.String(), RemoteAS: MicrosoftASN, Description: what,
			Export: &policyOut{NextHopSelf: true, Prefixes: []prefixOut{within(z.site.network)}}})
	}
}

// vpnGateway is a virtual network's VPN gateway beside its ExpressRoute
// gateway (model: "Coexistence: route-based VPN only, both gateways in the
// same virtual network"; the Azure VPN gateway keeps 60/180 s timers and
// runs no BFD), and its site-to-site connections: IKEv2 with a pre-shared
// key, a route-based tunnel (an xfrm interface each end), BGP over it on
// APIPA addresses.
func (b *builder) vpnGateway(v *vnet) {
	gw, vpn := v.gw(), v.vpngw()
	b.node(vpn, v.spec.Pos, fmt.Sprintf("virtual network %s: its VPN gateway (AS 65515), beside the ExpressRoute gateway", v.spec.Name),
		nodeOut{Kind: "router", Group: groupAzure, BGP: &bgpOut{ASN: GatewayASN}})
	// The two gateways share the GatewaySubnet and exchange routes (iBGP,
	// each the next hop of what it learned).
	pg, pv := b.connect(v.spec.Pos, fmt.Sprintf("virtual network %s: the GatewaySubnet", v.spec.Name), gw, vpn, linkOut{})
	ga, va := hosts30(netip.PrefixFrom(v.gatewaySubnet().Addr(), 30))
	b.nodes[gw].iface(pg, ifOut{Addresses: []string{pfx(ga, 30)}})
	b.nodes[vpn].iface(pv, ifOut{Addresses: []string{pfx(va, 30)}})
	// Where the VPN runs over the internet it carries the prefixes
	// ExpressRoute carries, and the virtual network prefers ExpressRoute
	// (model: "ExpressRoute is preferred"): the ExpressRoute gateway, the
	// virtual network's router here, gives what the VPN gateway brings the
	// lower preference. The VPN gateway itself sends into its tunnel what
	// it learned through it, as Azure's does, so it always offers that
	// path: the backup is in place before ExpressRoute fails, and the
	// MSEEs' withdrawal alone moves the traffic.
	var fromVPN *policyOut
	for _, vc := range v.vpns {
		if vc.over == nil {
			fromVPN = &policyOut{LocalPref: u32(VPNLocalPref)}
		}
	}
	b.nodes[gw].neighbor(&nbrOut{Address: va.String(), RemoteAS: GatewayASN, Description: vpn, Import: fromVPN, Export: &policyOut{NextHopSelf: true}})
	b.nodes[vpn].neighbor(&nbrOut{Address: ga.String(), RemoteAS: GatewayASN, Description: gw, Export: &policyOut{NextHopSelf: true}})
	for k, vc := range v.vpns {
		s := vc.site
		core := s.core()
		var coreEnd, vpnEnd netip.Addr
		name := fmt.Sprintf("%s-%s", v.spec.Name, s.spec.Name)
		what := fmt.Sprintf("site-to-site VPN connection %s: %s to %s's VPN gateway over the internet", name, s.spec.Name, v.spec.Name)
		underlay := fmt.Sprintf("site-to-site VPN connection %s: the internet between %s and %s", name, core, vpn)
		// Over the internet the tunnel carries the same prefixes as
		// ExpressRoute, and the lower preference (the site's router's here,
		// the ExpressRoute gateway's above) keeps it the backup;
		// over a circuit it must carry more-specifics, or Azure would send
		// the traffic over ExpressRoute without IPsec (model: "advertise
		// more-specific (or disjoint) prefixes over the tunnel").
		siteNets, vnetNets := []prefixOut{exact(s.network)}, []prefixOut{exact(v.space)}
		imp := &policyOut{LocalPref: u32(VPNLocalPref)}
		if vc.over == nil {
			coreEnd, vpnEnd = b.wire(vc.spec.Pos, underlay, core, vpn)
		} else {
			name += "-over-" + vc.over.spec.Name
			what = fmt.Sprintf("IPsec over ExpressRoute %s: %s to %s's VPN gateway over circuit %s's private peering", name, s.spec.Name, v.spec.Name, vc.over.spec.Name)
			coreEnd, vpnEnd = vc.end, va
			h := halves(s.network)
			siteNets = []prefixOut{exact(h[0]), exact(h[1])}
			vnetNets = []prefixOut{exact(v.subnet())}
			for _, p := range h {
				b.nodes[core].network(p.String())
			}
			// The VPN gateway originates the workload subnet, which it
			// reaches through the ExpressRoute gateway's /16.
			if !slices.Contains(b.nodes[vpn].out.BGP.Networks, any(v.subnet().String())) {
				b.nodes[vpn].network(v.subnet().String())
			}
			imp = nil // the more-specifics win by length
		}
		ci, vi := b.tunnelIface(core), b.tunnelIface(vpn)
		base := netip.MustParseAddr("169.254.21.0") // Azure's APIPA range for BGP over VPN
		for range 4 * k {
			base = base.Next()
		}
		ca, va2 := hosts30(netip.PrefixFrom(base, 30))
		b.nodes[core].addAddress(ci, pfx(ca, 30))
		b.nodes[vpn].addAddress(vi, pfx(va2, 30))
		b.nodes[core].neighbor(&nbrOut{Address: va2.String(), RemoteAS: GatewayASN, Description: name, HoldTime: HoldTime, Keepalive: Keepalive,
			Import: imp, Export: &policyOut{Prefixes: siteNets}})
		b.nodes[vpn].neighbor(&nbrOut{Address: ca.String(), RemoteAS: s.spec.ASN, Description: name, HoldTime: HoldTime, Keepalive: Keepalive,
			Export: &policyOut{Prefixes: vnetNets}})
		b.tunnels = append(b.tunnels, tunnelB{at: vc.spec.Pos, comment: what, out: tunnelOut{
			Name: name,
			Endpoints: []tunEndOut{
				{Node: core, Local: coreEnd.String(), Interface: ci},
				{Node: vpn, Local: vpnEnd.String(), Interface: vi},
			},
			Algorithm: "aes256gcm16", // GCMAES256, of Azure's IPsec policies
			IKE:       ikeOut{PSK: vc.spec.PSK},
			Verify:    verifyOut{From: s.host(), To: v.vmAddr().String()},
		}})
	}
}

// tunnelIface names a node's next tunnel interface: ipsec0, ipsec1, ...
func (b *builder) tunnelIface(node string) string {
	n := b.tunnelEnds[node]
	b.tunnelEnds[node]++
	return fmt.Sprintf("ipsec%d", n)
}
