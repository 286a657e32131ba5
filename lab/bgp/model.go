package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/erlab-dev/erlab/lab/topo"
)

// ExpressRoute facts that become defaults (expressroute-model.md): the MSEE
// uses BGP keepalive 60 s / hold 180 s, and runs BFD at 300 ms × 3 on
// private and Microsoft peering.
const (
	DefaultKeepalive     = 60
	DefaultHoldTime      = 180
	DefaultBFDIntervalMs = 300
	DefaultBFDMultiplier = 3
	// MicrosoftASN is the ASN of the Microsoft edge on every peering.
	MicrosoftASN = 12076
	// VNetGatewayASN is the Azure virtual network gateway's.
	VNetGatewayASN = 65515
)

// Spec is a node's bgp: block as written.
type Spec struct {
	Pos       topo.Pos
	ASN       *uint32        `yaml:"asn"`
	RouterID  *string        `yaml:"router-id"`
	Multipath *bool          `yaml:"multipath"`
	Networks  []NetworkSpec  `yaml:"networks"`
	Neighbors []NeighborSpec `yaml:"neighbors"`
}

// NetworkSpec is a prefix the node originates, written as the prefix alone
// or with the communities its routes carry: {prefix: P, communities: [...]}.
type NetworkSpec struct {
	Pos         topo.Pos
	Prefix      topo.AddrSpec `yaml:"prefix" short:"true"`
	Communities []string      `yaml:"communities"`
}

// NeighborSpec is one BGP neighbour as written.
type NeighborSpec struct {
	Pos          topo.Pos
	Address      string   `yaml:"address"`
	Interface    string   `yaml:"interface"`
	RemoteAS     uint32   `yaml:"remote-as"`
	Description  string   `yaml:"description"`
	HoldTime     *int     `yaml:"hold-time"`
	HoldTimePos  topo.Pos `yaml:"-"`
	Keepalive    *int     `yaml:"keepalive"`
	Passive      *bool    `yaml:"passive"`
	Password     string   `yaml:"password"`
	Multihop     int      `yaml:"multihop"`
	LocalAddress string   `yaml:"local-address"`
	BFD          *BFDSpec `yaml:"bfd"`
	MaxPrefixes  int      `yaml:"max-prefixes"`
	// RemovePrivateAS takes private AS numbers out of the AS path of what
	// is sent to this (external) neighbour, as Microsoft does to what it
	// receives over Microsoft peering.
	RemovePrivateAS bool `yaml:"remove-private-as"`
	// Families are the address families the session carries: ipv4,
	// ipv6, or both (the default).
	Families []string    `yaml:"families"`
	Import   *PolicySpec `yaml:"import"`
	Export   *PolicySpec `yaml:"export"`
}

// BFDSpec turns BFD on for a neighbour; intervals in milliseconds.
type BFDSpec struct {
	Pos        topo.Pos
	Enabled    *bool `yaml:"enabled"`
	MinTx      int   `yaml:"min-tx"`
	MinRx      int   `yaml:"min-rx"`
	Multiplier int   `yaml:"multiplier"`
}

// PolicySpec is an import or export policy: an optional prefix filter (what
// it does not list is rejected) and what to set on what it accepts.
type PolicySpec struct {
	Pos         topo.Pos
	Prefixes    []PrefixMatchSpec `yaml:"prefixes"`
	LocalPref   *uint32           `yaml:"local-pref"`
	MED         *uint32           `yaml:"med"`
	Prepend     int               `yaml:"prepend"`
	Communities []string          `yaml:"communities"`
	NextHopSelf bool              `yaml:"next-hop-self"`
	// MatchCommunities passes only routes that carry one of these
	// communities (and the prefix filter, if any); an empty list passes
	// none, until it is changed while the lab runs (SetCommunityMatch): an
	// ExpressRoute route filter.
	MatchCommunities []string `yaml:"match-communities"`
	// Deny rejects what it matches before anything else is looked at, so
	// that a filter may pass a range but some prefixes in it.
	Deny []PrefixMatchSpec `yaml:"deny"`
}

// PrefixMatchSpec matches a prefix, and optionally longer ones (ge/le).
type PrefixMatchSpec struct {
	Pos    topo.Pos
	Prefix string `yaml:"prefix"`
	GE     int    `yaml:"ge"`
	LE     int    `yaml:"le"`
}

// Config is a node's validated BGP configuration: what its agent runs.
type Config struct {
	ASN       uint32         `json:"asn"`
	RouterID  netip.Addr     `json:"router_id"`
	Multipath bool           `json:"multipath"`
	Networks  []netip.Prefix `json:"networks,omitempty"`
	// Tags are the communities originated networks carry, by network.
	Tags      map[netip.Prefix][]string `json:"tags,omitempty"`
	Neighbors []Neighbor                `json:"neighbors"`
}

// Neighbor is a validated BGP neighbour.
type Neighbor struct {
	Address     netip.Addr `json:"address"`
	RemoteAS    uint32     `json:"remote_as"`
	Description string     `json:"description,omitempty"`
	HoldTime    int        `json:"hold_time"`
	Keepalive   int        `json:"keepalive"`
	// Passive makes this end wait for the peer to connect. When both ends
	// of a session are erlab routers and neither says, one of them is made
	// passive (see passiveRule): AutoPassive says this one was.
	Passive         bool       `json:"passive,omitempty"`
	AutoPassive     bool       `json:"auto_passive,omitempty"`
	Password        string     `json:"password,omitempty"`
	Multihop        int        `json:"multihop,omitempty"`
	LocalAddress    netip.Addr `json:"local_address,omitzero"`
	BFD             *BFD       `json:"bfd,omitempty"`
	MaxPrefixes     int        `json:"max_prefixes,omitempty"`
	RemovePrivateAS bool       `json:"remove_private_as,omitempty"`
	// IPv4Only and IPv6Only restrict the session to one family.
	IPv4Only bool    `json:"ipv4_only,omitempty"`
	IPv6Only bool    `json:"ipv6_only,omitempty"`
	Import   *Policy `json:"import,omitempty"`
	Export   *Policy `json:"export,omitempty"`
	// Interface is the node's interface whose subnet holds the neighbour,
	// for a directly connected one ("" for multihop).
	Interface string `json:"interface,omitempty"`
	// explicit says passive: was written, true or false.
	explicit bool
}

// BFD timers, in milliseconds.
type BFD struct {
	MinTx      int `json:"min_tx_ms"`
	MinRx      int `json:"min_rx_ms"`
	Multiplier int `json:"multiplier"`
}

// Policy is a validated import or export policy.
type Policy struct {
	Prefixes []PrefixMatch `json:"prefixes,omitempty"`
	// Nothing is an empty prefix filter (prefixes: []): no route passes.
	Nothing     bool     `json:"nothing,omitempty"`
	LocalPref   *uint32  `json:"local_pref,omitempty"`
	MED         *uint32  `json:"med,omitempty"`
	Prepend     int      `json:"prepend,omitempty"`
	Communities []string `json:"communities,omitempty"`
	// NextHopSelf (export only) advertises this router as the next hop,
	// as an iBGP speaker must for routes learned over eBGP.
	NextHopSelf bool `json:"next_hop_self,omitempty"`
	// ByCommunity says the policy matches communities (MatchCommunities,
	// which may be empty: then nothing passes).
	ByCommunity      bool          `json:"by_community,omitempty"`
	MatchCommunities []string      `json:"match_communities,omitempty"`
	Deny             []PrefixMatch `json:"deny,omitempty"`
}

// PrefixMatch matches Prefix and, with GE/LE, longer prefixes inside it.
type PrefixMatch struct {
	Prefix netip.Prefix `json:"prefix"`
	GE     int          `json:"ge,omitempty"`
	LE     int          `json:"le,omitempty"`
}

func resolve(n *topo.Node, spec *Spec, ps topo.Reporter) *Config {
	if spec == nil {
		return nil
	}
	where := fmt.Sprintf("node %q: bgp", n.Name)
	b := &Config{Multipath: spec.Multipath != nil && *spec.Multipath}
	if spec.ASN == nil || *spec.ASN == 0 {
		ps.Errorf(spec.Pos, "%s: asn: required (the node's AS number)", where)
	} else {
		b.ASN = *spec.ASN
	}
	if spec.RouterID != nil {
		id, err := netip.ParseAddr(*spec.RouterID)
		if err != nil || !id.Is4() {
			ps.Errorf(spec.Pos, "%s: router-id %q is not an IPv4 address", where, *spec.RouterID)
		}
		b.RouterID = id
	} else if id, ok := defaultRouterID(n); ok {
		b.RouterID = id
	} else {
		ps.Errorf(spec.Pos, "%s: router-id: required, as the node has no IPv4 address to take it from", where)
	}
	for _, ns := range spec.Networks {
		a := ns.Prefix
		if !a.Prefix.IsValid() {
			ps.Errorf(ns.Pos, "%s: networks: a prefix, or {prefix: P, communities: [...]}", where)
			continue
		}
		if a.Prefix != a.Prefix.Masked() {
			ps.Errorf(a.Pos, "%s: network %s has host bits set; did you mean %s?", where, a.Prefix, a.Prefix.Masked())
			continue
		}
		b.Networks = append(b.Networks, a.Prefix)
		if len(ns.Communities) > 0 && checkCommunities(ns.Communities, fmt.Sprintf("%s: network %s", where, a.Prefix), ns.Pos, ps) {
			if b.Tags == nil {
				b.Tags = map[netip.Prefix][]string{}
			}
			b.Tags[a.Prefix] = ns.Communities
		}
	}
	seen := map[netip.Addr]bool{}
	for i, ns := range spec.Neighbors {
		nw := fmt.Sprintf("%s: neighbors[%d]", where, i)
		nb, ok := resolveNeighbor(n, b.ASN, ns, nw, ps)
		if !ok {
			continue
		}
		if seen[nb.Address] {
			ps.Errorf(ns.Pos, "%s: neighbour %s is given twice", nw, nb.Address)
			continue
		}
		seen[nb.Address] = true
		b.Neighbors = append(b.Neighbors, nb)
	}
	return b
}

// defaultRouterID takes the node's highest loopback IPv4 address, else its
// first IPv4 address, as routers conventionally do.
func defaultRouterID(n *topo.Node) (netip.Addr, bool) {
	var best netip.Addr
	for _, i := range n.Interfaces {
		for _, p := range i.Addresses {
			if !p.Addr().Is4() {
				continue
			}
			if i.Type == topo.TypeLoopback && (!best.IsValid() || best.Less(p.Addr())) {
				best = p.Addr()
			}
		}
	}
	if best.IsValid() {
		return best, true
	}
	for _, i := range n.Interfaces {
		for _, p := range i.Addresses {
			if p.Addr().Is4() {
				return p.Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}

func resolveNeighbor(n *topo.Node, asn uint32, ns NeighborSpec, where string, ps topo.Reporter) (Neighbor, bool) {
	nb := Neighbor{RemoteAS: ns.RemoteAS, Description: ns.Description, Passive: ns.Passive != nil && *ns.Passive, explicit: ns.Passive != nil, Password: ns.Password,
		Multihop: ns.Multihop, MaxPrefixes: ns.MaxPrefixes, HoldTime: DefaultHoldTime, Keepalive: DefaultKeepalive, RemovePrivateAS: ns.RemovePrivateAS}
	if ns.Address == "" && ns.Interface != "" {
		peer, msg := peerOnLink(n, ns.Interface)
		if msg != "" {
			ps.Errorf(ns.Pos, "%s: %s", where, msg)
			return nb, false
		}
		ns.Address = peer.String()
	}
	a, err := netip.ParseAddr(ns.Address)
	if err != nil {
		ps.Errorf(ns.Pos, "%s: address %q is not an IP address (give address:, or interface: on a /30)", where, ns.Address)
		return nb, false
	}
	nb.Address = a
	ok := true
	checkPeeringAddresses(n, asn, nb, where, ns.Pos, ps)
	if ns.RemoteAS == 0 {
		ps.Errorf(ns.Pos, "%s: remote-as: required", where)
		ok = false
	}
	if ns.HoldTime != nil {
		nb.HoldTime = *ns.HoldTime
		if ns.Keepalive == nil {
			nb.Keepalive = nb.HoldTime / 3
		}
	}
	if ns.Keepalive != nil {
		nb.Keepalive = *ns.Keepalive
	}
	// RFC 4271: a hold time is 0 (no keepalives) or at least 3 seconds.
	if nb.HoldTime != 0 && (nb.HoldTime < 3 || nb.HoldTime > 65535) {
		ps.Errorf(ns.HoldTimePos, "%s: hold-time %d: 0, or 3 to 65535 seconds", where, nb.HoldTime)
		ok = false
	}
	if nb.Keepalive < 0 || (nb.HoldTime > 0 && nb.Keepalive >= nb.HoldTime) {
		ps.Errorf(ns.Pos, "%s: keepalive %d must be shorter than the hold time %d", where, nb.Keepalive, nb.HoldTime)
		ok = false
	}
	if ns.LocalAddress != "" {
		la, err := netip.ParseAddr(ns.LocalAddress)
		if err != nil || !hasAddress(n, la) {
			ps.Errorf(ns.Pos, "%s: local-address %q is not an address of node %q", where, ns.LocalAddress, n.Name)
			ok = false
		}
		nb.LocalAddress = la
	}
	if ns.Multihop < 0 || ns.Multihop > 255 {
		ps.Errorf(ns.Pos, "%s: multihop %d: a TTL from 1 to 255", where, ns.Multihop)
		ok = false
	}
	if iface := connectedIface(n, a); iface != "" {
		nb.Interface = iface
	} else if ns.Multihop == 0 {
		ps.Errorf(ns.Pos, "%s: %s is on no subnet of node %q; a neighbour further away needs multihop: TTL", where, a, n.Name)
		ok = false
	}
	if ns.RemovePrivateAS && ns.RemoteAS == asn {
		ps.Errorf(ns.Pos, "%s: remove-private-as acts on what is sent to an external neighbour; %s is internal (AS %d)", where, a, asn)
		ok = false
	}
	switch fams := strings.Join(slices.Sorted(slices.Values(ns.Families)), ","); fams {
	case "", "ipv4,ipv6":
	case "ipv4":
		nb.IPv4Only = true
	case "ipv6":
		nb.IPv6Only = true
	default:
		ps.Errorf(ns.Pos, "%s: families %v: ipv4, ipv6 or both", where, ns.Families)
		ok = false
	}
	if ns.MaxPrefixes < 0 {
		ps.Errorf(ns.Pos, "%s: max-prefixes %d is negative", where, ns.MaxPrefixes)
		ok = false
	}
	if ns.BFD != nil && (ns.BFD.Enabled == nil || *ns.BFD.Enabled) {
		b := &BFD{MinTx: ns.BFD.MinTx, MinRx: ns.BFD.MinRx, Multiplier: ns.BFD.Multiplier}
		if b.MinTx == 0 {
			b.MinTx = DefaultBFDIntervalMs
		}
		if b.MinRx == 0 {
			b.MinRx = DefaultBFDIntervalMs
		}
		if b.Multiplier == 0 {
			b.Multiplier = DefaultBFDMultiplier
		}
		if b.MinTx < 10 || b.MinRx < 10 || b.Multiplier < 1 || b.Multiplier > 255 {
			ps.Errorf(ns.BFD.Pos, "%s: bfd: intervals of at least 10 ms and a multiplier of 1 to 255", where)
			ok = false
		}
		if ns.Multihop > 0 {
			ps.Errorf(ns.BFD.Pos, "%s: bfd: erlab's BFD is single-hop (RFC 5881); this neighbour is multihop", where)
			ok = false
		}
		nb.BFD = b
	}
	var pok bool
	if nb.Import, pok = resolvePolicy(ns.Import, where+": import", ps); !pok {
		ok = false
	}
	if nb.Export, pok = resolvePolicy(ns.Export, where+": export", ps); !pok {
		ok = false
	}
	return nb, ok
}

func resolvePolicy(spec *PolicySpec, where string, ps topo.Reporter) (*Policy, bool) {
	if spec == nil {
		return nil, true
	}
	p := &Policy{LocalPref: spec.LocalPref, MED: spec.MED, Prepend: spec.Prepend, Communities: spec.Communities, NextHopSelf: spec.NextHopSelf,
		ByCommunity: spec.MatchCommunities != nil, MatchCommunities: spec.MatchCommunities}
	ok := true
	p.Nothing = spec.Prefixes != nil && len(spec.Prefixes) == 0
	if spec.NextHopSelf && strings.HasSuffix(where, "import") {
		ps.Errorf(spec.Pos, "%s: next-hop-self applies to routes sent (export), not received", where)
		ok = false
	}
	ok = checkCommunities(spec.Communities, where, spec.Pos, ps) && ok
	ok = checkCommunities(spec.MatchCommunities, where+": match-communities", spec.Pos, ps) && ok
	var pok bool
	p.Prefixes, pok = prefixMatches(spec.Prefixes, where+": prefixes", ps)
	ok = pok && ok
	p.Deny, pok = prefixMatches(spec.Deny, where+": deny", ps)
	ok = pok && ok
	if spec.Prepend < 0 || spec.Prepend > 16 {
		ps.Errorf(spec.Pos, "%s: prepend %d: 0 to 16 times", where, spec.Prepend)
		ok = false
	}
	return p, ok
}

func prefixMatches(specs []PrefixMatchSpec, where string, ps topo.Reporter) ([]PrefixMatch, bool) {
	var out []PrefixMatch
	ok := true
	for i, m := range specs {
		pre, err := netip.ParsePrefix(m.Prefix)
		if err != nil || pre != pre.Masked() {
			ps.Errorf(m.Pos, "%s[%d]: %q is not a prefix such as 10.0.0.0/8", where, i, m.Prefix)
			ok = false
			continue
		}
		maxLen := pre.Addr().BitLen()
		if (m.GE != 0 && (m.GE < pre.Bits() || m.GE > maxLen)) || (m.LE != 0 && (m.LE < pre.Bits() || m.LE > maxLen)) || (m.GE != 0 && m.LE != 0 && m.GE > m.LE) {
			ps.Errorf(m.Pos, "%s[%d]: ge/le must satisfy %d <= ge <= le <= %d", where, i, pre.Bits(), maxLen)
			ok = false
			continue
		}
		out = append(out, PrefixMatch{Prefix: pre, GE: m.GE, LE: m.LE})
	}
	return out, ok
}

func checkCommunities(cs []string, where string, at topo.Pos, ps topo.Reporter) bool {
	ok := true
	for _, c := range cs {
		if !validCommunity(c) {
			ps.Errorf(at, "%s: community %q is not ASN:VALUE (each 0-65535), such as 12076:50004", where, c)
			ok = false
		}
	}
	return ok
}

func validCommunity(c string) bool {
	a, v, found := strings.Cut(c, ":")
	if !found {
		return false
	}
	_, err1 := strconv.ParseUint(a, 10, 16)
	_, err2 := strconv.ParseUint(v, 10, 16)
	return err1 == nil && err2 == nil
}

func hasAddress(n *topo.Node, a netip.Addr) bool {
	for _, i := range n.Interfaces {
		for _, p := range i.Addresses {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

func connectedIface(n *topo.Node, a netip.Addr) string {
	for _, i := range n.Interfaces {
		if i.Type == topo.TypeLoopback {
			continue
		}
		for _, p := range i.Addresses {
			if p.Masked().Contains(a) && p.Addr() != a {
				return i.Name
			}
		}
	}
	return ""
}

// peerOnLink derives a neighbour's address from a point-to-point subnet of
// the interface: the other usable address of its /30 or /31 (IPv4), /126 or
// /127 (IPv6). ExpressRoute peerings are /30s (and /126s).
func peerOnLink(n *topo.Node, ifname string) (netip.Addr, string) {
	iface := n.Interface(ifname)
	if iface == nil {
		return netip.Addr{}, fmt.Sprintf("interface %q is not an interface of node %q", ifname, n.Name)
	}
	for _, p := range iface.Addresses {
		first, second, ok := usablePair(p)
		if !ok {
			continue
		}
		if p.Addr() == first {
			return second, ""
		}
		return first, ""
	}
	return netip.Addr{}, fmt.Sprintf("interface %q has no /30, /31, /126 or /127 address to take the neighbour's from; give address:", ifname)
}

// usablePair returns the two usable addresses of a point-to-point subnet.
func usablePair(p netip.Prefix) (first, second netip.Addr, ok bool) {
	host := p.Addr().BitLen() - p.Bits()
	base := p.Masked().Addr()
	switch host {
	case 1: // /31, /127: both addresses (RFC 3021)
		return base, base.Next(), true
	case 2: // /30, /126: the network address and the last one are not hosts
		return base.Next(), base.Next().Next(), true
	}
	return netip.Addr{}, netip.Addr{}, false
}

// checkPeeringAddresses warns when an ExpressRoute peering's /30 is the
// wrong way round: the customer (or provider) edge takes the first usable
// address, the MSEE (AS 12076) the second.
func checkPeeringAddresses(n *topo.Node, asn uint32, nb Neighbor, where string, pos topo.Pos, ps topo.Reporter) {
	var ours netip.Prefix
	for _, i := range n.Interfaces {
		for _, p := range i.Addresses {
			if p.Masked().Contains(nb.Address) && p.Addr() != nb.Address {
				ours = p
			}
		}
	}
	first, _, ok := usablePair(ours)
	if !ok || ours.Addr().BitLen()-ours.Bits() != 2 {
		return
	}
	// Only the peering between a customer (or provider) edge and an MSEE
	// follows the rule; Azure's own links (MSEE to gateway) do not.
	if asn == VNetGatewayASN || nb.RemoteAS == VNetGatewayASN || asn == nb.RemoteAS {
		return // and between two MSEEs (Global Reach), over iBGP
	}
	weAreMSEE := asn == MicrosoftASN
	switch {
	case nb.RemoteAS == MicrosoftASN && ours.Addr() != first:
		ps.Warnf(pos, "%s: on an ExpressRoute peering's /30 the customer edge takes the first usable address (%s) and the MSEE the second", where, first)
	case weAreMSEE && nb.RemoteAS != MicrosoftASN && nb.Address != first:
		ps.Warnf(pos, "%s: on an ExpressRoute peering's /30 the MSEE takes the second usable address and the customer edge the first (%s)", where, first)
	}
}

// passiveRule makes one end of each session between two erlab routers
// passive, when neither end says which: the end whose own address on the
// session is the higher waits, the other connects.
//
// Both ends active is what GoBGP does by default, and with it a connection
// collision (both dial at once, RFC 4271 §6.8) can leave each end holding
// the connection the other dialed, in OpenConfirm, for the previous
// session's hold time — or for ever on a first session, which has none
// (GoBGP v4.8.0, pkg/server/fsm.go: the collision check only peeks at the
// outgoing connection, the dialer is not stopped once it has sent its
// OPEN, and its parked connection is never read). Seen in 2 of 27 deploys
// of er-vwan-ipsec.yml and in 50-router labs; reproduced with a 50 ms
// delay line: 12 of 60 fresh starts and 10 of 40 simultaneous resets stuck
// with both ends active, none of 100 with one end passive, which reconnects
// as fast (GoBGP's first dial comes 1.5-2 s after Active, whatever the
// connect-retry).
func passiveRule(t *topo.Topology) {
	type session struct {
		node string
		nb   *Neighbor
	}
	// Each BGP node's neighbours, by the node's own address on the session.
	byLocal := map[netip.Addr][]session{}
	for _, n := range t.Nodes {
		c := Of(n)
		if c == nil {
			continue
		}
		for i := range c.Neighbors {
			nb := &c.Neighbors[i]
			if local := localAddress(n, nb); local.IsValid() {
				byLocal[local] = append(byLocal[local], session{n.Name, nb})
			}
		}
	}
	for local, ss := range byLocal {
		for _, s := range ss {
			for _, far := range byLocal[s.nb.Address] {
				if far.node == s.node || far.nb.Address != local || s.nb.explicit || far.nb.explicit {
					continue
				}
				// The two ends of one session, neither configured.
				s.nb.Passive = local.Compare(s.nb.Address) > 0
				s.nb.AutoPassive = s.nb.Passive
			}
		}
	}
}

// localAddress is the node's own address on a session: local-address:, or
// its address on the subnet that holds the neighbour.
func localAddress(n *topo.Node, nb *Neighbor) netip.Addr {
	if nb.LocalAddress.IsValid() {
		return nb.LocalAddress
	}
	if i := n.Interface(nb.Interface); i != nil {
		for _, p := range i.Addresses {
			if p.Masked().Contains(nb.Address) && p.Addr() != nb.Address {
				return p.Addr()
			}
		}
	}
	return netip.Addr{}
}
