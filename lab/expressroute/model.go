// Package expressroute is ExpressRoute as a model: an expressroute: block
// at the top of a topology declares what an Azure user configures — sites,
// circuits with their connectivity model, peerings, ExpressRoute Direct port
// pairs, virtual networks and their connections, Global Reach — and the
// feature expands it into the plain topology that reproduces each hop
// (customer edge, provider, MSEE pair, virtual network gateway, a workload
// in each virtual network), with the VLANs, addresses, BGP sessions, timers,
// BFD, policies and rate limits Azure runs. Azure's rules are checked on the
// declaration, each where it was written. The facts are those of
// ../shared/docs/expressroute-model.md (cited below as "model:").
package expressroute

import (
	"net/netip"

	"github.com/erlab-dev/erlab/lab/topo"
)

// Spec is the expressroute: block as written.
type Spec struct {
	Pos topo.Pos
	// Internal is the pool the links Azure and the customer keep to
	// themselves are numbered from (CE to site router, MSEE to gateway,
	// CE to provider edge).
	Internal *topo.AddrSpec `yaml:"internal"`
	// InternalIPv6 is the IPv6 pool of the same links, when the lab is
	// dual-stack (a /64 of ULA space by default).
	InternalIPv6 *topo.AddrSpec `yaml:"internal-ipv6"`
	Sites        []SiteSpec     `yaml:"sites"`
	Ports        []PortSpec     `yaml:"ports"`
	Circuits     []CircuitSpec  `yaml:"circuits"`
	VNets        []VNetSpec     `yaml:"vnets"`
	GlobalReach  []ReachSpec    `yaml:"global-reach"`
}

// SiteSpec is an on-premises site: its AS and the network behind it.
type SiteSpec struct {
	Pos     topo.Pos
	Name    string        `yaml:"name"`
	ASN     uint32        `yaml:"asn"`
	ASNPos  topo.Pos      `yaml:"-"`
	Network topo.AddrSpec `yaml:"network"`
	// IPv6Network is the site's IPv6 network, for IPv6 over private
	// peering.
	IPv6Network *topo.AddrSpec `yaml:"ipv6-network"`
}

// PortSpec is an ExpressRoute Direct port pair.
type PortSpec struct {
	Pos              topo.Pos
	Name             string   `yaml:"name"`
	Site             string   `yaml:"site"`
	SitePos          topo.Pos `yaml:"-"`
	Encapsulation    string   `yaml:"encapsulation"`
	EncapsulationPos topo.Pos `yaml:"-"`
	Speed            string   `yaml:"speed"`
	SpeedPos         topo.Pos `yaml:"-"`
	// MACsec is the MACsec feature's link block, put on both ports as
	// written (keys included, by file or env); MACsecSecondary, when
	// given, is the secondary port's instead (keys of its own).
	MACsec          topo.Raw `yaml:"macsec"`
	MACsecSecondary topo.Raw `yaml:"macsec-secondary"`
}

// CircuitSpec is an ExpressRoute circuit.
type CircuitSpec struct {
	Pos            topo.Pos
	Name           string   `yaml:"name"`
	Site           string   `yaml:"site"`
	SitePos        topo.Pos `yaml:"-"`
	Model          string   `yaml:"model"`
	ModelPos       topo.Pos `yaml:"-"`
	Port           string   `yaml:"port"`
	PortPos        topo.Pos `yaml:"-"`
	STag           int      `yaml:"s-tag"`
	STagPos        topo.Pos `yaml:"-"`
	ProviderASN    uint32   `yaml:"provider-asn"`
	ProviderASNPos topo.Pos `yaml:"-"`
	Bandwidth      string   `yaml:"bandwidth"`
	BandwidthPos   topo.Pos `yaml:"-"`
	SKU            string   `yaml:"sku"`
	SKUPos         topo.Pos `yaml:"-"`
	// Prepend is how many times the customer prepends its AS toward
	// Microsoft on this circuit (the secondary link one more).
	Prepend int `yaml:"prepend"`
	// LocalPref is what the site gives routes from this circuit: the
	// primary link's plus 100, the secondary's as given (default 100).
	LocalPref    *uint32      `yaml:"local-pref"`
	LocalPrefPos topo.Pos     `yaml:"-"`
	Private      *PeeringSpec `yaml:"private-peering"`
	Microsoft    *PeeringSpec `yaml:"microsoft-peering"`
}

// PeeringSpec is a peering of a circuit.
type PeeringSpec struct {
	Pos              topo.Pos
	VLAN             int             `yaml:"vlan"`
	VLANPos          topo.Pos        `yaml:"-"`
	SecondaryVLAN    int             `yaml:"secondary-vlan"`
	SecondaryVLANPos topo.Pos        `yaml:"-"`
	Subnet           *topo.AddrSpec  `yaml:"subnet"`
	Subnets          []topo.AddrSpec `yaml:"subnets"`
	SubnetsPos       topo.Pos        `yaml:"-"`
	// IPv6Subnet is a /125 split in two /126s, or IPv6Subnets the two
	// /126s (model: "one /125 or two /126s (IPv6)").
	IPv6Subnet     *topo.AddrSpec  `yaml:"ipv6-subnet"`
	IPv6Subnets    []topo.AddrSpec `yaml:"ipv6-subnets"`
	IPv6SubnetsPos topo.Pos        `yaml:"-"`
	// MD5 is the sessions' password, passed on as written (${VAR}).
	MD5 topo.Raw `yaml:"md5"`
	// Advertise (Microsoft peering) are the public prefixes the customer
	// announces.
	Advertise []topo.AddrSpec `yaml:"advertise"`
	// RouteFilter (Microsoft peering) is what Microsoft sends: nothing
	// until a route filter is attached.
	RouteFilter *RouteFilterSpec `yaml:"route-filter"`
}

// RouteFilterSpec is a route filter on Microsoft peering: the BGP
// communities whose routes Microsoft sends, as services (exchange-online)
// or values (12076:5010, 12076:51004), attached unless attached: false.
type RouteFilterSpec struct {
	Pos         topo.Pos
	Communities []string `yaml:"communities"`
	Attached    *bool    `yaml:"attached"`
}

// VNetSpec is a virtual network with its ExpressRoute gateway.
type VNetSpec struct {
	Pos          topo.Pos
	Name         string        `yaml:"name"`
	AddressSpace topo.AddrSpec `yaml:"address-space"`
	// IPv6AddressSpace is the VNet's IPv6 space (dual-stack).
	IPv6AddressSpace *topo.AddrSpec   `yaml:"ipv6-address-space"`
	Region           string           `yaml:"region"`
	RegionPos        topo.Pos         `yaml:"-"`
	Gateway          string           `yaml:"gateway"`
	GatewayPos       topo.Pos         `yaml:"-"`
	Connections      []ConnectionSpec `yaml:"connections"`
	// VPN are the site-to-site connections of a VPN gateway beside the
	// ExpressRoute one (coexistence), over the internet or, with over:, over
	// a circuit's private peering (IPsec over ExpressRoute).
	VPN []VPNSpec `yaml:"vpn-connections"`
}

// VPNSpec is a site-to-site VPN connection: IKEv2 with a pre-shared key,
// route-based, BGP over the tunnel.
type VPNSpec struct {
	Pos     topo.Pos
	Site    string   `yaml:"site"`
	SitePos topo.Pos `yaml:"-"`
	// Over is a circuit whose private peering carries the tunnel (Virtual
	// WAN's IPsec over ExpressRoute); the internet when empty.
	Over    string   `yaml:"over"`
	OverPos topo.Pos `yaml:"-"`
	// PSK is the IPsec feature's key source, passed on as written.
	PSK topo.Raw `yaml:"psk"`
}

// ConnectionSpec connects a virtual network's gateway to a circuit.
type ConnectionSpec struct {
	Pos        topo.Pos
	Circuit    string   `yaml:"circuit"`
	CircuitPos topo.Pos `yaml:"-"`
	Weight     int      `yaml:"weight"`
	WeightPos  topo.Pos `yaml:"-"`
}

// ReachSpec is a Global Reach connection between two circuits' private
// peerings.
type ReachSpec struct {
	Pos         topo.Pos
	Circuits    []string      `yaml:"circuits"`
	CircuitsPos topo.Pos      `yaml:"-"`
	Subnet      topo.AddrSpec `yaml:"subnet"`
}

// Azure's numbers (model: "Peerings and addressing", "Timers").
const (
	MicrosoftASN = 12076
	GatewayASN   = 65515
	// MicrosoftNetworkASN is Microsoft's global network, behind the MSEEs,
	// where the services Microsoft peering reaches are announced from.
	MicrosoftNetworkASN = 8075
	// VPNLocalPref is what the site's router gives routes learned over a
	// VPN connection, and the ExpressRoute gateway those its VPN gateway
	// brings: below any ExpressRoute route's, as Microsoft's
	// coexistence guidance has it (model: "ExpressRoute is preferred";
	// on-premises 150 for ExpressRoute against 100 in Microsoft's example,
	// where erlab's secondary link has 100 already).
	VPNLocalPref  = 50
	Keepalive     = 60
	HoldTime      = 180
	BFDInterval   = 300 // ms, TX and RX
	BFDMultiplier = 3
	// Prefix limits per session (model: "Prefix limits").
	LimitStandard  = 4000
	LimitPremium   = 10000
	LimitMicrosoft = 200
	LimitIPv6      = 100 // private peering, per IPv6 session
)

// Connectivity models.
const (
	CloudExchange = "cloud-exchange" // colocation at an exchange: the provider's switch pushes an S-tag
	PointToPoint  = "point-to-point" // a provider's Ethernet line: the customer's tags carried as they are
	AnyToAny      = "any-to-any"     // IP VPN: the provider's PEs run BGP with both sides
	Direct        = "direct"         // ExpressRoute Direct: a port pair straight to the MSEEs
)

var models = []string{CloudExchange, PointToPoint, AnyToAny, Direct}

// reservedASN says why an ASN cannot be a customer's (model: "Microsoft's
// ASN is 12076 ... Reserved on the Azure side: 65515, 65517–65520").
func reservedASN(asn uint32) string {
	switch {
	case asn == MicrosoftASN:
		return "12076 is Microsoft's own AS, on every MSEE"
	case asn == GatewayASN:
		return "65515 is the Azure virtual network gateway's AS"
	case asn >= 65517 && asn <= 65520:
		return "65517 to 65520 are reserved by Azure"
	}
	return ""
}

// Provider circuit bandwidths (model: "Circuit bandwidths") and ExpressRoute
// Direct's, by port speed (model: "ExpressRoute Direct").
var (
	providerBandwidths = []string{"50Mbps", "100Mbps", "200Mbps", "500Mbps", "1Gbps", "2Gbps", "5Gbps", "10Gbps"}
	directBandwidths   = map[string][]string{
		"10G":  {"1Gbps", "2Gbps", "5Gbps", "10Gbps"},
		"100G": {"5Gbps", "10Gbps", "40Gbps", "100Gbps"},
	}
)

// A Microsoft service reached over Microsoft peering: the community
// Microsoft tags its prefixes with (expressroute-routing.md, "Support for
// BGP communities": Exchange Online 12076:5010, SharePoint Online
// 12076:5020, Skype for Business Online 12076:5030) and one of the
// prefixes the service publishes, which the lab's Microsoft network
// originates (one address of it answers pings).
type service struct {
	name      string
	community string
	prefix    netip.Prefix
}

var services = []service{
	{"exchange-online", "12076:5010", netip.MustParsePrefix("40.96.0.0/13")},
	{"sharepoint-online", "12076:5020", netip.MustParsePrefix("13.107.136.0/22")},
	{"skype-for-business-online", "12076:5030", netip.MustParsePrefix("52.112.0.0/14")},
}

// regionCommunity is the regional community value Microsoft tags a
// region's private peering routes with (12076:50xxx; 51xxx on Microsoft
// peering), for the regions model: documents.
var regionCommunity = map[string]int{"East US": 4}

// isPublic says whether a prefix is public address space, as Microsoft
// peering requires (model: "Microsoft peering: public address space only").
func isPublic(p netip.Prefix) bool {
	a := p.Addr()
	if a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	if a.Is4() && netip.MustParsePrefix("100.64.0.0/10").Overlaps(p) {
		return false // shared address space (RFC 6598)
	}
	return true
}
