package expressroute

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/topo"
)

// The resolved model: the declaration with its references followed and
// Azure's rules checked.
type model struct {
	internal   netip.Prefix
	internalAt topo.Pos
	// internal6 numbers the IPv6 side of the links, when dual.
	internal6 netip.Prefix
	dual      bool
	// msAt is where the first Microsoft peering was declared, for the
	// node that stands for Microsoft's network.
	msAt     topo.Pos
	sites    []*site
	ports    []*port
	circuits []*circuit
	vnets    []*vnet
	reach    []*reach
}

type site struct {
	spec     *SiteSpec
	network  netip.Prefix
	network6 netip.Prefix // invalid when the site has no IPv6
}

func (s *site) core() string   { return s.spec.Name + "-core" }
func (s *site) host() string   { return s.spec.Name + "-host" }
func (s *site) public() string { return s.spec.Name + "-public" }

// hostAddr is the site host's address: the tenth of the network.
func (s *site) hostAddr() netip.Addr {
	a := s.network.Masked().Addr().Next()
	for range 9 {
		a = a.Next()
	}
	return a
}

// MicrosoftNode is the node that stands for Microsoft's global network
// behind the MSEEs, made when a circuit has Microsoft peering.
const MicrosoftNode = "microsoft"

type port struct {
	spec      *PortSpec
	site      *site
	encap     string // dot1q or qinq
	macsecDev string
	parent    [2]string // where the circuits' tags go, CE side and MSEE side
	circuits  int
}

func (p *port) ce(i int) string   { return fmt.Sprintf("%s-ce%d", p.spec.Name, i+1) }
func (p *port) msee(i int) string { return fmt.Sprintf("%s-msee%d", p.spec.Name, i+1) }

type circuit struct {
	spec     *CircuitSpec
	site     *site
	model    string
	port     *port
	sTag     int
	peerings []*peering
}

func (c *circuit) ce(i int) string {
	if c.port != nil {
		return c.port.ce(i)
	}
	return fmt.Sprintf("%s-ce%d", c.spec.Name, i+1)
}

func (c *circuit) msee(i int) string {
	if c.port != nil {
		return c.port.msee(i)
	}
	return fmt.Sprintf("%s-msee%d", c.spec.Name, i+1)
}

// custASN is the AS the MSEE peers with: the provider's on an any-to-any
// circuit, the customer's otherwise.
func (c *circuit) custASN() uint32 {
	if c.model == AnyToAny {
		return c.spec.ProviderASN
	}
	return c.site.spec.ASN
}

// localPref is what the site gives routes from link i: the primary is
// preferred, as Microsoft recommends the customer do.
func (c *circuit) localPref(i int) uint32 {
	lp := uint32(100)
	if c.spec.LocalPref != nil {
		lp = *c.spec.LocalPref
	}
	if i == 0 {
		return lp + 100
	}
	return lp
}

// prepend is how often the customer prepends toward Microsoft on link i:
// the secondary once more, so that Azure too prefers the primary.
func (c *circuit) prepend(i int) int { return c.spec.Prepend + i }

func (c *circuit) vlans() []int {
	var out []int
	for _, p := range c.peerings {
		out = append(out, p.spec.VLAN)
	}
	return out
}

type peering struct {
	kind      string // private or microsoft
	spec      *PeeringSpec
	subnets   [2]netip.Prefix
	subnets6  [2]netip.Prefix // IPv6 /126s, invalid when none
	advertise []netip.Prefix
	limit     int
	// filter is the route filter's communities (Microsoft peering), nil
	// when none is declared; attached says it is attached at deploy.
	filter   []string
	attached bool
}

type vnet struct {
	spec      *VNetSpec
	space     netip.Prefix
	space6    netip.Prefix
	sku       string
	community string
	conns     []*conn
	vpns      []*vpnConn
}

func (v *vnet) gw() string    { return v.spec.Name + "-gw" }
func (v *vnet) vpngw() string { return v.spec.Name + "-vpngw" }

// vmAddr is the workload's address: Azure gives VMs .4 onward.
func (v *vnet) vmAddr() netip.Addr {
	a := v.subnet().Masked().Addr()
	for range 4 {
		a = a.Next()
	}
	return a
}

// gatewaySubnet is where the virtual network's gateways meet: the address
// space's last /27 (Azure's GatewaySubnet, /27 as Microsoft recommends).
func (v *vnet) gatewaySubnet() netip.Prefix {
	b := v.space.Masked().Addr().As4()
	n := binary.BigEndian.Uint32(b[:]) | (1<<(32-v.space.Bits()) - 1) // the last address
	binary.BigEndian.PutUint32(b[:], n&^31)
	return netip.PrefixFrom(netip.AddrFrom4(b), 27)
}

// vpnConn is a site-to-site VPN connection of a virtual network's VPN
// gateway.
type vpnConn struct {
	spec *VPNSpec
	site *site
	over *circuit // nil: over the internet
	// end is the site router's end of a tunnel over a circuit: a /32 of
	// the internal pool, which the circuit carries.
	end netip.Addr
}

// subnet is the workload subnet: the address space's first /24, or the
// space itself when smaller.
func (v *vnet) subnet() netip.Prefix {
	if v.space.Bits() >= 24 {
		return v.space
	}
	return netip.PrefixFrom(v.space.Addr(), 24)
}

type conn struct {
	spec    *ConnectionSpec
	circuit *circuit
}

type reach struct {
	spec     *ReachSpec
	circuits [2]*circuit
	subnet   netip.Prefix
}

// Gateway SKUs (model: "ExpressRoute gateways").
var gatewaySKUs = []string{"Standard", "HighPerformance", "UltraPerformance", "ErGw1Az", "ErGw2Az", "ErGw3Az"}

// owned is an address range the declaration uses, for the overlap rules.
type owned struct {
	p    netip.Prefix
	what string
	at   topo.Pos
}

type checker struct {
	r     topo.Reporter
	m     *model
	used  []owned
	names map[string]topo.Pos
}

func (k *checker) errorf(at topo.Pos, format string, args ...any) {
	k.r.Errorf(at, "expressroute: "+format, args...)
}

func (k *checker) warnf(at topo.Pos, format string, args ...any) {
	k.r.Warnf(at, "expressroute: "+format, args...)
}

// claim records a range and reports one it overlaps.
func (k *checker) claim(p netip.Prefix, what string, at topo.Pos) {
	for _, u := range k.used {
		if u.p.Overlaps(p) {
			k.errorf(at, "%s %s overlaps %s %s (line %d): each must be its own address space", what, p, u.what, u.p, u.at.Line)
			return
		}
	}
	k.used = append(k.used, owned{p: p, what: what, at: at})
}

// name checks an object's name: required, unique among its kind, and short
// enough for the node names made from it.
func (k *checker) name(kind, name string, at topo.Pos, seen map[string]topo.Pos) bool {
	if name == "" {
		k.errorf(at, "%s: name: required", kind)
		return false
	}
	if p, dup := seen[name]; dup {
		k.errorf(at, "%s %q is declared twice (first at line %d)", kind, name, p.Line)
		return false
	}
	seen[name] = at
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			k.errorf(at, "%s %q: a name is lower-case letters, digits and '-' (it names the lab's nodes)", kind, name)
			return false
		}
	}
	return true
}

func resolve(spec *Spec, r *counting) (*model, bool) {
	k := &checker{r: r, m: &model{}}
	before := r.errs
	k.m.internal = netip.MustParsePrefix("100.64.0.0/16")
	if spec.Internal != nil && spec.Internal.Prefix.IsValid() {
		p := spec.Internal.Prefix
		if !p.Addr().Is4() || p.Bits() > 24 || p != p.Masked() {
			k.errorf(spec.Internal.Pos, "internal: %s: give an IPv4 prefix of /24 or shorter, without host bits", p)
		}
		k.m.internal = p.Masked()
	}
	k.m.internal6 = netip.MustParsePrefix("fd00:64::/64")
	if spec.InternalIPv6 != nil && spec.InternalIPv6.Prefix.IsValid() {
		p := spec.InternalIPv6.Prefix
		if !p.Addr().Is6() || p.Bits() > 112 || p != p.Masked() {
			k.errorf(spec.InternalIPv6.Pos, "internal-ipv6: %s: give an IPv6 prefix of /112 or shorter, without host bits", p)
		}
		k.m.internal6 = p.Masked()
	}
	sites := map[string]*site{}
	seen := map[string]topo.Pos{}
	for i := range spec.Sites {
		s := &spec.Sites[i]
		if !k.name("site", s.Name, s.Pos, seen) {
			continue
		}
		at := s.ASNPos
		if at == (topo.Pos{}) {
			at = s.Pos
		}
		switch {
		case s.ASN == 0:
			k.errorf(at, "site %q: asn: required (the customer's AS; 16- or 32-bit)", s.Name)
		case reservedASN(s.ASN) != "":
			k.errorf(at, "site %q: asn %d cannot be a customer's: %s", s.Name, s.ASN, reservedASN(s.ASN))
		}
		st := &site{spec: s, network: s.Network.Prefix}
		switch n := s.Network.Prefix; {
		case !n.IsValid():
			k.errorf(s.Pos, "site %q: network: required (the site's IPv4 network, such as 10.1.0.0/24)", s.Name)
		case !n.Addr().Is4() || n.Bits() > 28:
			k.errorf(s.Network.Pos, "site %q: network %s: give an IPv4 prefix of /28 or shorter", s.Name, n)
		case n != n.Masked():
			k.errorf(s.Network.Pos, "site %q: network %s has host bits set; did you mean %s?", s.Name, n, n.Masked())
		default:
			k.claim(n, fmt.Sprintf("site %q's network", s.Name), s.Network.Pos)
		}
		if s.IPv6Network != nil {
			st.network6 = k.prefix6(s.IPv6Network, 64, fmt.Sprintf("site %q: ipv6-network", s.Name))
		}
		sites[s.Name] = st
		k.m.sites = append(k.m.sites, st)
	}
	siteOf := func(name string, at topo.Pos, what string) *site {
		if name == "" {
			if len(k.m.sites) == 1 {
				return k.m.sites[0]
			}
			if len(spec.Sites) == 0 {
				k.errorf(at, "%s: no site is declared: add sites: [{name: onprem, asn: 65010, network: 10.1.0.0/24}]", what)
			} else {
				k.errorf(at, "%s: site: required when there is more than one site (%s)", what, strings.Join(siteNames(k.m.sites), ", "))
			}
			return nil
		}
		s, ok := sites[name]
		if !ok {
			k.errorf(at, "%s: site %q is not declared (sites: %s)", what, name, strings.Join(siteNames(k.m.sites), ", "))
		}
		return s
	}
	ports := map[string]*port{}
	seen = map[string]topo.Pos{}
	for i := range spec.Ports {
		ps := &spec.Ports[i]
		if !k.name("port pair", ps.Name, ps.Pos, seen) {
			continue
		}
		what := fmt.Sprintf("port pair %q", ps.Name)
		p := &port{spec: ps, site: siteOf(ps.Site, or(ps.SitePos, ps.Pos), what)}
		switch strings.ToLower(ps.Encapsulation) {
		case "dot1q":
			p.encap = "dot1q"
		case "qinq":
			p.encap = "qinq"
		case "":
			k.errorf(ps.Pos, "%s: encapsulation: required, dot1q or qinq (fixed per port pair on ExpressRoute Direct)", what)
		default:
			k.errorf(ps.EncapsulationPos, "%s: encapsulation %q: dot1q (one tag) or qinq (two tags, both 0x8100)", what, ps.Encapsulation)
		}
		switch ps.Speed {
		case "", "10G", "100G":
		default:
			k.errorf(ps.SpeedPos, "%s: speed %q: ExpressRoute Direct ports are 10G or 100G", what, ps.Speed)
		}
		if ps.MACsec.IsZero() && !ps.MACsecSecondary.IsZero() {
			k.errorf(ps.MACsecSecondary.Pos, "%s: macsec-secondary: without macsec: for the primary port; MACsec protects both ports or neither", what)
		}
		if !ps.MACsec.IsZero() {
			p.macsecDev = macsec.DefaultDevice
			if dev, ok := ps.MACsec.Lookup("device"); ok {
				p.macsecDev = dev
			}
		}
		ports[ps.Name] = p
		k.m.ports = append(k.m.ports, p)
	}
	circuits := map[string]*circuit{}
	seen = map[string]topo.Pos{}
	// ExpressRoute Direct's tag rules, per port pair (model: "QinQ: ... an
	// S-tag ... unique on the port pair"; "Dot1Q: a C-tag must be unique
	// across all circuits and peerings on the port pair").
	sTags := map[*port]map[int]string{}
	cTags := map[*port]map[int]string{}
	for i := range spec.Circuits {
		cs := &spec.Circuits[i]
		if !k.name("circuit", cs.Name, cs.Pos, seen) {
			continue
		}
		what := fmt.Sprintf("circuit %q", cs.Name)
		c := &circuit{spec: cs, model: cs.Model}
		if !slices.Contains(models, cs.Model) {
			if cs.Model == "" {
				k.errorf(cs.Pos, "%s: model: required, one of %s", what, strings.Join(models, ", "))
			} else {
				k.errorf(cs.ModelPos, "%s: model %q: one of %s", what, cs.Model, strings.Join(models, ", "))
			}
			continue
		}
		if c.model == Direct {
			if cs.Port == "" {
				k.errorf(cs.Pos, "%s: port: required: the ExpressRoute Direct port pair the circuit is on", what)
				continue
			}
			p, ok := ports[cs.Port]
			if !ok {
				k.errorf(cs.PortPos, "%s: port pair %q is not declared under ports:", what, cs.Port)
				continue
			}
			c.port, c.site = p, p.site
			p.circuits++
			if cs.Site != "" && p.site != nil && cs.Site != p.site.spec.Name {
				k.errorf(cs.SitePos, "%s: site %q: the circuit is on port pair %q, whose routers are site %q's", what, cs.Site, p.spec.Name, p.site.spec.Name)
			}
		} else {
			if cs.Port != "" {
				k.errorf(cs.PortPos, "%s: port: is for ExpressRoute Direct circuits (model: direct); a %s circuit reaches the MSEEs through its provider", what, c.model)
			}
			c.site = siteOf(cs.Site, or(cs.SitePos, cs.Pos), what)
		}
		if c.site == nil {
			continue
		}
		// The S-tag.
		switch {
		case c.model == Direct && c.port.encap == "qinq":
			if cs.STag == 0 {
				k.errorf(cs.Pos, "%s: s-tag: required on a QinQ port pair (Azure assigns each circuit one at creation; it cannot be changed)", what)
			} else if k.vlanID(cs.STag, cs.STagPos, what+": s-tag") {
				if sTags[c.port] == nil {
					sTags[c.port] = map[int]string{}
				}
				if other, dup := sTags[c.port][cs.STag]; dup {
					k.errorf(cs.STagPos, "%s: s-tag %d is circuit %q's already: an S-tag is unique on a port pair", what, cs.STag, other)
				}
				sTags[c.port][cs.STag] = cs.Name
				c.sTag = cs.STag
			}
		case c.model == Direct:
			if cs.STag != 0 {
				k.errorf(cs.STagPos, "%s: s-tag: port pair %q is Dot1Q (one tag): a circuit has no S-tag there", what, c.port.spec.Name)
			}
		case c.model == CloudExchange:
			c.sTag = cs.STag
			if c.sTag == 0 {
				c.sTag = 1000 + i // the provider assigns one; erlab picks the circuit's position
			} else {
				k.vlanID(cs.STag, cs.STagPos, what+": s-tag")
			}
		default:
			if cs.STag != 0 {
				k.errorf(cs.STagPos, "%s: s-tag: a %s circuit carries the customer's tags as they are; only cloud-exchange and QinQ Direct circuits have one", what, c.model)
			}
		}
		// The provider's AS.
		if c.model == AnyToAny {
			switch {
			case cs.ProviderASN == 0:
				k.errorf(cs.Pos, "%s: provider-asn: required on an any-to-any circuit (the provider's PEs peer with the MSEEs: customer AS → provider AS → 12076)", what)
			case reservedASN(cs.ProviderASN) != "":
				k.errorf(cs.ProviderASNPos, "%s: provider-asn %d: %s", what, cs.ProviderASN, reservedASN(cs.ProviderASN))
			case cs.ProviderASN == c.site.spec.ASN:
				k.errorf(cs.ProviderASNPos, "%s: provider-asn %d is the site's own AS", what, cs.ProviderASN)
			}
		} else if cs.ProviderASN != 0 {
			k.errorf(cs.ProviderASNPos, "%s: provider-asn: only an any-to-any (Layer 3) provider runs BGP; a %s circuit is Layer 2", what, c.model)
		}
		k.bandwidth(c, what)
		limit := LimitStandard
		switch strings.ToLower(cs.SKU) {
		case "", "standard", "local":
		case "premium":
			limit = LimitPremium
		default:
			k.errorf(cs.SKUPos, "%s: sku %q: Local, Standard or Premium", what, cs.SKU)
		}
		if cs.Prepend < 0 || cs.Prepend > 15 {
			k.errorf(cs.Pos, "%s: prepend %d: 0 to 15", what, cs.Prepend)
		}
		if cs.Private == nil && cs.Microsoft == nil {
			k.errorf(cs.Pos, "%s: give private-peering:, microsoft-peering:, or both", what)
		}
		for _, pk := range []struct {
			kind string
			spec *PeeringSpec
		}{{"private", cs.Private}, {"microsoft", cs.Microsoft}} {
			if pk.spec == nil {
				continue
			}
			pr := k.peering(c, pk.kind, pk.spec, what, limit)
			if pr == nil {
				continue
			}
			if c.model == Direct && c.port.encap == "dot1q" {
				if cTags[c.port] == nil {
					cTags[c.port] = map[int]string{}
				}
				if other, dup := cTags[c.port][pr.spec.VLAN]; dup {
					k.errorf(pr.spec.VLANPos, "%s: %s peering: VLAN %d is %s already: on a Dot1Q port pair a C-tag is unique across all circuits and peerings", what, pk.kind, pr.spec.VLAN, other)
				}
				cTags[c.port][pr.spec.VLAN] = fmt.Sprintf("circuit %q's %s peering", cs.Name, pk.kind)
			}
			c.peerings = append(c.peerings, pr)
			if pk.kind == "microsoft" && k.m.msAt == (topo.Pos{}) {
				k.m.msAt = pr.spec.Pos
			}
		}
		// One VLAN per peering within a circuit (model: "no two peerings
		// of one circuit use the same VLAN"); across circuits on QinQ they
		// may repeat.
		if len(c.peerings) == 2 && c.peerings[0].spec.VLAN == c.peerings[1].spec.VLAN && c.peerings[0].spec.VLAN != 0 {
			k.errorf(c.peerings[1].spec.VLANPos, "%s: microsoft peering: VLAN %d is the private peering's too: each peering of a circuit has its own VLAN", what, c.peerings[1].spec.VLAN)
		}
		circuits[cs.Name] = c
		k.m.circuits = append(k.m.circuits, c)
	}
	seen = map[string]topo.Pos{}
	for i := range spec.VNets {
		vs := &spec.VNets[i]
		if !k.name("vnet", vs.Name, vs.Pos, seen) {
			continue
		}
		what := fmt.Sprintf("vnet %q", vs.Name)
		v := &vnet{spec: vs, space: vs.AddressSpace.Prefix, sku: "ErGw1Az"}
		switch n := v.space; {
		case !n.IsValid():
			k.errorf(vs.Pos, "%s: address-space: required, such as 10.10.0.0/16", what)
		case !n.Addr().Is4() || n.Bits() > 29:
			k.errorf(vs.AddressSpace.Pos, "%s: address-space %s: an IPv4 prefix of /29 or shorter", what, n)
		case n != n.Masked():
			k.errorf(vs.AddressSpace.Pos, "%s: address-space %s has host bits set; did you mean %s?", what, n, n.Masked())
		default:
			k.claim(n, what+"'s address space", vs.AddressSpace.Pos)
		}
		if vs.IPv6AddressSpace != nil {
			v.space6 = k.prefix6(vs.IPv6AddressSpace, 64, what+": ipv6-address-space")
		}
		if vs.Gateway != "" {
			if !slices.Contains(gatewaySKUs, vs.Gateway) {
				k.errorf(vs.GatewayPos, "%s: gateway %q: an ExpressRoute gateway SKU (%s)", what, vs.Gateway, strings.Join(gatewaySKUs, ", "))
			}
			v.sku = vs.Gateway
		}
		if vs.Region != "" {
			if code, ok := regionCommunity[vs.Region]; ok {
				v.community = fmt.Sprintf("%d:%d", MicrosoftASN, 50000+code)
			} else {
				k.warnf(vs.RegionPos, "%s: region %q: erlab knows the regional community of %s only; its routes go without one", what, vs.Region, strings.Join(mapKeys(regionCommunity), ", "))
			}
		}
		if len(vs.Connections) == 0 {
			k.errorf(vs.Pos, "%s: connections: required: the circuits its gateway is connected to", what)
		}
		cseen := map[string]bool{}
		for j := range vs.Connections {
			cn := &vs.Connections[j]
			c, ok := circuits[cn.Circuit]
			switch {
			case cn.Circuit == "":
				k.errorf(cn.Pos, "%s: connections[%d]: circuit: required", what, j)
			case !ok:
				if !declaredCircuit(spec, cn.Circuit) {
					k.errorf(or(cn.CircuitPos, cn.Pos), "%s: connections[%d]: circuit %q is not declared", what, j, cn.Circuit)
				}
			case cseen[cn.Circuit]:
				k.errorf(or(cn.CircuitPos, cn.Pos), "%s: connections[%d]: circuit %q is connected twice", what, j, cn.Circuit)
			case c.private() == nil:
				k.errorf(or(cn.CircuitPos, cn.Pos), "%s: connections[%d]: circuit %q has no private peering: a virtual network is reached over private peering only", what, j, cn.Circuit)
			case cn.Weight < 0 || cn.Weight > 32000:
				k.errorf(or(cn.WeightPos, cn.Pos), "%s: connections[%d]: weight %d: 0 to 32000", what, j, cn.Weight)
			default:
				cseen[cn.Circuit] = true
				v.conns = append(v.conns, &conn{spec: cn, circuit: c})
			}
		}
		k.vpnConnections(v, spec, circuits, siteOf)
		k.m.vnets = append(k.m.vnets, v)
	}
	for i := range spec.GlobalReach {
		rs := &spec.GlobalReach[i]
		what := fmt.Sprintf("global-reach[%d]", i)
		if len(rs.Circuits) != 2 {
			k.errorf(or(rs.CircuitsPos, rs.Pos), "%s: circuits: two circuits, whose private peerings Global Reach links", what)
			continue
		}
		r := &reach{spec: rs}
		ok := true
		for j, name := range rs.Circuits {
			c, found := circuits[name]
			switch {
			case !found:
				if !declaredCircuit(spec, name) {
					k.errorf(or(rs.CircuitsPos, rs.Pos), "%s: circuit %q is not declared", what, name)
				}
				ok = false
			case c.private() == nil:
				k.errorf(or(rs.CircuitsPos, rs.Pos), "%s: circuit %q has no private peering: Global Reach links private peerings", what, name)
				ok = false
			default:
				r.circuits[j] = c
			}
		}
		if !ok {
			continue
		}
		if r.circuits[0] == r.circuits[1] {
			k.errorf(or(rs.CircuitsPos, rs.Pos), "%s: a circuit cannot reach itself", what)
			continue
		}
		if r.circuits[0].site == r.circuits[1].site {
			k.warnf(or(rs.CircuitsPos, rs.Pos), "%s: both circuits are site %q's: Global Reach links two sites", what, r.circuits[0].site.spec.Name)
		} else if r.circuits[0].site.spec.ASN == r.circuits[1].site.spec.ASN {
			k.warnf(or(rs.CircuitsPos, rs.Pos), "%s: both sites are AS %d: each site's routers drop the other's routes, which carry their own AS", what, r.circuits[0].site.spec.ASN)
		}
		// model: "it needs its own /29 IPv4 subnet, unused elsewhere".
		switch n := rs.Subnet.Prefix; {
		case !n.IsValid():
			k.errorf(rs.Pos, "%s: subnet: required: a /29 of its own", what)
		case !n.Addr().Is4() || n.Bits() != 29:
			k.errorf(rs.Subnet.Pos, "%s: subnet %s: Global Reach needs an IPv4 /29", what, n)
		case n != n.Masked():
			k.errorf(rs.Subnet.Pos, "%s: subnet %s has host bits set; did you mean %s?", what, n, n.Masked())
		default:
			k.claim(n, "the Global Reach subnet", rs.Subnet.Pos)
			r.subnet = n
		}
		k.m.reach = append(k.m.reach, r)
	}
	// The internal pool last, so that a clash names the user's range.
	k.claim(k.m.internal, "the internal pool (expressroute: internal:)", or(posOf(spec.Internal), spec.Pos))
	k.m.internalAt = or(posOf(spec.Internal), spec.Pos)
	return k.m, r.errs == before
}

// vpnConnections checks a virtual network's site-to-site connections
// (model: "Coexistence: route-based VPN only, both gateways in the same
// virtual network"; "IPsec over ExpressRoute (Virtual WAN): the hub VPN
// gateway uses private addresses reached over the circuit").
func (k *checker) vpnConnections(v *vnet, spec *Spec, circuits map[string]*circuit, siteOf func(string, topo.Pos, string) *site) {
	what := fmt.Sprintf("vnet %q", v.spec.Name)
	if len(v.spec.VPN) > 0 && v.space.IsValid() && v.space.Bits() > 23 {
		k.errorf(v.spec.AddressSpace.Pos, "%s: address-space %s: with a VPN gateway, a /23 or shorter: the workloads' /24 and the GatewaySubnet (its last /27) apart", what, v.space)
	}
	seen := map[string]bool{}
	for j := range v.spec.VPN {
		vs := &v.spec.VPN[j]
		cw := fmt.Sprintf("%s: vpn-connections[%d]", what, j)
		vc := &vpnConn{spec: vs, site: siteOf(vs.Site, or(vs.SitePos, vs.Pos), cw)}
		if vc.site == nil {
			continue
		}
		if vs.Over != "" {
			c, ok := circuits[vs.Over]
			switch {
			case !ok:
				if !declaredCircuit(spec, vs.Over) {
					k.errorf(vs.OverPos, "%s: over: circuit %q is not declared", cw, vs.Over)
				}
				continue
			case c.private() == nil:
				k.errorf(vs.OverPos, "%s: over: circuit %q has no private peering, which IPsec over ExpressRoute runs on", cw, vs.Over)
				continue
			case c.site != vc.site:
				k.errorf(vs.OverPos, "%s: over: circuit %q is site %q's, not %q's", cw, vs.Over, c.site.spec.Name, vc.site.spec.Name)
				continue
			case !slices.ContainsFunc(v.conns, func(cn *conn) bool { return cn.circuit == c }):
				k.errorf(vs.OverPos, "%s: over: circuit %q is not connected to %s (connections:): the tunnel's far end is reached over it", cw, vs.Over, v.spec.Name)
				continue
			}
			vc.over = c
		}
		key := vc.site.spec.Name + " " + vs.Over
		if seen[key] {
			k.errorf(vs.Pos, "%s: site %q is connected twice %s", cw, vc.site.spec.Name, map[bool]string{true: "over the internet", false: "over " + vs.Over}[vs.Over == ""])
			continue
		}
		seen[key] = true
		if vs.PSK.IsZero() {
			k.errorf(vs.Pos, "%s: psk: required, the connection's pre-shared key ({file: keys/s2s.psk}, or {env: VAR})", cw)
			continue
		}
		if vs.Over == "" {
			for _, c := range k.m.circuits {
				if c.site == vc.site && c.spec.LocalPref != nil && *c.spec.LocalPref <= VPNLocalPref {
					k.errorf(c.spec.LocalPrefPos, "circuit %q: local-pref %d: site %q has a VPN connection to %s, whose routes get %d; ExpressRoute's must be preferred", c.spec.Name, *c.spec.LocalPref, vc.site.spec.Name, v.spec.Name, VPNLocalPref)
				}
			}
		}
		v.vpns = append(v.vpns, vc)
	}
}

// dual says the circuit carries IPv6: its private peering has IPv6
// subnets (which the checks allow only with the site's IPv6 network).
func (c *circuit) dual() bool {
	pr := c.private()
	return pr != nil && pr.subnets6[0].IsValid()
}

func (c *circuit) private() *peering {
	for _, p := range c.peerings {
		if p.kind == "private" {
			return p
		}
	}
	return nil
}

// peering checks a peering: its VLAN, its subnets and their roles, what it
// advertises, its limit.
func (k *checker) peering(c *circuit, kind string, ps *PeeringSpec, circuitWhat string, limit int) *peering {
	what := fmt.Sprintf("%s: %s peering", circuitWhat, kind)
	pr := &peering{kind: kind, spec: ps, limit: limit}
	if kind == "microsoft" {
		pr.limit = LimitMicrosoft
	}
	ok := true
	if ps.VLAN == 0 {
		k.errorf(ps.Pos, "%s: vlan: required (the peering's VLAN ID; primary and secondary use the same one)", what)
		ok = false
	} else {
		ok = k.vlanID(ps.VLAN, ps.VLANPos, what+": vlan") && ok
	}
	// model: "primary and secondary use the same VLAN ID".
	if ps.SecondaryVLAN != 0 && ps.SecondaryVLAN != ps.VLAN {
		k.errorf(ps.SecondaryVLANPos, "%s: secondary-vlan %d differs from vlan %d: a peering's primary and secondary links use the same VLAN ID", what, ps.SecondaryVLAN, ps.VLAN)
		ok = false
	}
	// The peer subnets (model: "one /29 or two /30s ... the first /30 is
	// the primary link ... the customer takes the first usable address").
	switch {
	case ps.Subnet != nil && len(ps.Subnets) > 0:
		k.errorf(ps.Subnet.Pos, "%s: give subnet: (a /29) or subnets: (two /30s), not both", what)
		ok = false
	case ps.Subnet != nil:
		n := ps.Subnet.Prefix
		switch {
		case !n.Addr().Is4() || n.Bits() != 29:
			k.errorf(ps.Subnet.Pos, "%s: subnet %s: a peering's IPv4 peer subnets are one /29 (split into the primary's and the secondary's /30) or two /30s", what, n)
			ok = false
		case n != n.Masked():
			k.errorf(ps.Subnet.Pos, "%s: subnet %s has host bits set; did you mean %s? (the customer takes the first usable address of each /30, the MSEE the second)", what, n, n.Masked())
			ok = false
		default:
			pr.subnets = halves(n)
		}
	case len(ps.Subnets) == 2:
		for j, s := range ps.Subnets {
			n := s.Prefix
			switch {
			case !n.Addr().Is4() || n.Bits() != 30:
				k.errorf(s.Pos, "%s: subnets[%d] %s: each of the two peer subnets is a /30 (the first the primary link's, the second the secondary's)", what, j, n)
				ok = false
			case n != n.Masked():
				a, _ := hosts30(n)
				k.errorf(s.Pos, "%s: subnets[%d] %s has host bits set: write the /30 as %s; the customer takes its first usable address (%s), the MSEE the second", what, j, n, n.Masked(), a)
				ok = false
			default:
				pr.subnets[j] = n
			}
		}
		if ok && pr.subnets[0] == pr.subnets[1] {
			k.errorf(ps.Subnets[1].Pos, "%s: subnets: the primary and the secondary need a /30 each", what)
			ok = false
		}
	case len(ps.Subnets) > 0:
		k.errorf(ps.SubnetsPos, "%s: subnets: two /30s, the primary link's then the secondary's (or one /29 as subnet:)", what)
		ok = false
	default:
		k.errorf(ps.Pos, "%s: subnet: required: a /29, or two /30s as subnets:", what)
		ok = false
	}
	at := ps.Pos
	if ps.Subnet != nil {
		at = ps.Subnet.Pos
	} else if len(ps.Subnets) > 0 {
		at = ps.Subnets[0].Pos
	}
	if ok {
		for j, s := range pr.subnets {
			if kind == "microsoft" && !isPublic(s) {
				k.errorf(at, "%s: subnet %s is private address space: Microsoft peering uses public addresses only (owned by the customer or the provider)", what, s)
				ok = false
				break
			}
			k.claim(s, fmt.Sprintf("%s %s's %s subnet", circuitWhat, kind+" peering", links[j]), at)
		}
	}
	if ps.IPv6Subnet != nil || len(ps.IPv6Subnets) > 0 {
		ok = k.peering6(c, pr, what) && ok
	}
	if rf := ps.RouteFilter; rf != nil {
		if kind == "private" {
			k.errorf(rf.Pos, "%s: route-filter: is for Microsoft peering; private peering carries the virtual networks' routes without one", what)
			ok = false
		} else if f, fok := k.routeFilter(rf, what); fok {
			pr.filter, pr.attached = f, rf.Attached == nil || *rf.Attached
		} else {
			ok = false
		}
	}
	if kind == "private" && len(ps.Advertise) > 0 {
		k.errorf(ps.Advertise[0].Pos, "%s: advertise: is for Microsoft peering; over private peering the site's network is advertised", what)
		ok = false
	}
	for j, a := range ps.Advertise {
		n := a.Prefix
		switch {
		case n != n.Masked():
			k.errorf(a.Pos, "%s: advertise[%d] %s has host bits set; did you mean %s?", what, j, n, n.Masked())
			ok = false
		case !isPublic(n):
			k.errorf(a.Pos, "%s: advertise[%d] %s is private address space: Microsoft peering accepts public prefixes only", what, j, n)
			ok = false
		default:
			pr.advertise = append(pr.advertise, n)
		}
	}
	if kind == "microsoft" && len(pr.advertise) > LimitMicrosoft {
		k.warnf(ps.Advertise[0].Pos, "%s: %d prefixes advertised; the MSEE's limit is %d per session and drops the session when exceeded", what, len(pr.advertise), LimitMicrosoft)
	}
	if !ok {
		return nil
	}
	return pr
}

// prefix6 checks an IPv6 prefix of a site or a VNet: IPv6, no longer than
// maxBits, without host bits, overlapping nothing else declared.
func (k *checker) prefix6(a *topo.AddrSpec, maxBits int, what string) netip.Prefix {
	n := a.Prefix
	switch {
	case !n.IsValid() || !n.Addr().Is6() || n.Addr().Is4In6():
		k.errorf(a.Pos, "%s: %s: give an IPv6 prefix, such as 2001:db8:1::/48", what, n)
	case n.Bits() > maxBits:
		k.errorf(a.Pos, "%s %s: a /%d or shorter (a LAN is a /64)", what, n, maxBits)
	case n != n.Masked():
		k.errorf(a.Pos, "%s %s has host bits set; did you mean %s?", what, n, n.Masked())
	default:
		k.claim(n, what, a.Pos)
		return n
	}
	return netip.Prefix{}
}

// peering6 checks a private peering's IPv6 subnets (model: "one /125 or
// two /126s ... the customer (or provider) router takes the first usable
// address and the MSEE the second"), and that there is something for its
// sessions to carry.
func (k *checker) peering6(c *circuit, pr *peering, what string) bool {
	ps := pr.spec
	at := ps.Pos
	if ps.IPv6Subnet != nil {
		at = ps.IPv6Subnet.Pos
	} else if len(ps.IPv6Subnets) > 0 {
		at = ps.IPv6Subnets[0].Pos
	}
	if pr.kind != "private" {
		k.errorf(at, "%s: IPv6 is modelled on private peering only", what)
		return false
	}
	if !c.site.network6.IsValid() {
		k.errorf(at, "%s: IPv6 subnets, but site %q has no ipv6-network: the IPv6 sessions would carry nothing of the site's", what, c.site.spec.Name)
		return false
	}
	switch {
	case ps.IPv6Subnet != nil && len(ps.IPv6Subnets) > 0:
		k.errorf(at, "%s: give ipv6-subnet: (a /125) or ipv6-subnets: (two /126s), not both", what)
		return false
	case ps.IPv6Subnet != nil:
		n := ps.IPv6Subnet.Prefix
		switch {
		case !n.Addr().Is6() || n.Bits() != 125:
			k.errorf(at, "%s: ipv6-subnet %s: a peering's IPv6 peer subnets are one /125 (split into the primary's and the secondary's /126) or two /126s", what, n)
			return false
		case n != n.Masked():
			k.errorf(at, "%s: ipv6-subnet %s has host bits set; did you mean %s? (the customer takes the first usable address of each /126, the MSEE the second)", what, n, n.Masked())
			return false
		}
		pr.subnets6 = halves(n)
	case len(ps.IPv6Subnets) == 2:
		for j, sp := range ps.IPv6Subnets {
			n := sp.Prefix
			switch {
			case !n.Addr().Is6() || n.Bits() != 126:
				k.errorf(sp.Pos, "%s: ipv6-subnets[%d] %s: each of the two IPv6 peer subnets is a /126 (the primary link's, then the secondary's)", what, j, n)
				return false
			case n != n.Masked():
				k.errorf(sp.Pos, "%s: ipv6-subnets[%d] %s has host bits set: write the /126 as %s", what, j, n, n.Masked())
				return false
			}
			pr.subnets6[j] = n
		}
		if pr.subnets6[0] == pr.subnets6[1] {
			k.errorf(ps.IPv6Subnets[1].Pos, "%s: ipv6-subnets: the primary and the secondary need a /126 each", what)
			return false
		}
	default:
		k.errorf(ps.IPv6SubnetsPos, "%s: ipv6-subnets: two /126s, the primary link's then the secondary's (or one /125 as ipv6-subnet:)", what)
		return false
	}
	for j, sub := range pr.subnets6 {
		k.claim(sub, fmt.Sprintf("%s's %s IPv6 subnet", what, links[j]), at)
	}
	k.m.dual = true
	return true
}

// routeFilter resolves a route filter's communities: services by name, or
// Microsoft's service (12076:5xxx) and regional Microsoft peering
// (12076:51xxx) values. A private peering's regional community (50xxx)
// would let the virtual networks' routes out over Microsoft peering.
func (k *checker) routeFilter(rf *RouteFilterSpec, what string) ([]string, bool) {
	if len(rf.Communities) == 0 {
		k.errorf(rf.Pos, "%s: route-filter: communities: required, the services whose routes Microsoft sends (%s), or values such as 12076:5010", what, strings.Join(serviceNames(), ", "))
		return nil, false
	}
	var out []string
	ok := true
	for _, c := range rf.Communities {
		if i := slices.IndexFunc(services, func(s service) bool { return s.name == c }); i >= 0 {
			c = services[i].community
		} else {
			if !filterCommunity(c) {
				k.errorf(rf.Pos, "%s: route-filter: %q is neither a service (%s) nor a Microsoft peering community (12076:5000-5999 for services, 12076:51000-51999 for regions)", what, c, strings.Join(serviceNames(), ", "))
				ok = false
				continue
			}
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, ok
}

func serviceNames() []string {
	var out []string
	for _, s := range services {
		out = append(out, s.name)
	}
	return out
}

func (k *checker) vlanID(id int, at topo.Pos, what string) bool {
	if id < 1 || id > 4094 {
		k.errorf(at, "%s %d is out of range (1 to 4094)", what, id)
		return false
	}
	return true
}

func (k *checker) bandwidth(c *circuit, what string) {
	bw := c.spec.Bandwidth
	if bw == "" {
		return
	}
	allowed := providerBandwidths
	kind := "a provider circuit"
	if c.port != nil {
		speed := c.port.spec.Speed
		if speed == "" {
			speed = "10G"
		}
		allowed, kind = directBandwidths[speed], "a circuit on a "+speed+" ExpressRoute Direct port pair"
	}
	if !slices.Contains(allowed, bw) {
		k.errorf(c.spec.BandwidthPos, "%s: bandwidth %q: %s is one of %s", what, bw, kind, strings.Join(allowed, ", "))
	}
}

func siteNames(ss []*site) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.spec.Name)
	}
	return out
}

func mapKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// declaredCircuit reports whether a circuit of that name is declared, resolved or not
// (one that failed its own checks is not reported again where it is used).
func declaredCircuit(spec *Spec, name string) bool {
	for _, c := range spec.Circuits {
		if c.Name == name {
			return true
		}
	}
	return false
}

func or(p, q topo.Pos) topo.Pos {
	if p != (topo.Pos{}) {
		return p
	}
	return q
}

func posOf(a *topo.AddrSpec) topo.Pos {
	if a == nil {
		return topo.Pos{}
	}
	return a.Pos
}
