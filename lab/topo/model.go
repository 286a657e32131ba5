// Package topo reads erlab topology files: raw YAML → a validated, typed
// model, in one place. Its core is containerlab's (name, topology.defaults,
// kinds, nodes, links with the brief endpoints form); erlab's extensions
// (interfaces, routes, sysctls, forward) live under their own keys.
package topo

import (
	"net"
	"net/netip"
)

// fileSpec is a topology file exactly as written, before inheritance.
type fileSpec struct {
	Name     string   `yaml:"name"`
	NamePos  Pos      `yaml:"-"`
	Prefix   *string  `yaml:"prefix"`
	Mgmt     ignored  `yaml:"mgmt"`
	Topology bodySpec `yaml:"topology" what:"-"`
}

type bodySpec struct {
	Defaults NodeSpec      `yaml:"defaults"`
	Kinds    Map[NodeSpec] `yaml:"kinds"`
	Nodes    Map[NodeSpec] `yaml:"nodes"`
	Links    []linkSpec    `yaml:"links"`
	Tunnels  []TunnelSpec  `yaml:"tunnels"`
}

// NodeSpec is a node as written in topology.defaults, topology.kinds.KIND or
// topology.nodes.NAME. Unset fields are nil so inheritance can tell "not
// given" from "given as zero".
type NodeSpec struct {
	Pos        Pos
	Kind       *string            `yaml:"kind"`
	KindPos    Pos                `yaml:"-"`
	Image      *string            `yaml:"image"`
	Cmd        *string            `yaml:"cmd"`
	Env        Map[string]        `yaml:"env"`
	Binds      []string           `yaml:"binds"`
	Exec       []string           `yaml:"exec"`
	Labels     Map[string]        `yaml:"labels"`
	Group      *string            `yaml:"group"`
	Forward    *bool              `yaml:"forward"`
	Sysctls    Map[string]        `yaml:"sysctls"`
	Interfaces Map[InterfaceSpec] `yaml:"interfaces"`
	Routes     []RouteSpec        `yaml:"routes"`
	BGP        *BGPSpec           `yaml:"bgp"`
	Bridge     *BridgeSpec        `yaml:"bridge"`
}

// BridgeSpec is a bridge node's bridge: block: which tag its VLANs use.
type BridgeSpec struct {
	Pos          Pos
	VLANProtocol string `yaml:"vlan-protocol"` // 802.1Q (a switch) or 802.1ad (a provider bridge)
}

// InterfaceSpec is one entry of a node's interfaces map.
type InterfaceSpec struct {
	Pos             Pos
	Addresses       []AddrSpec `yaml:"addresses"`
	MTU             *int       `yaml:"mtu"`
	MTUPos          Pos        `yaml:"-"`
	MAC             *string    `yaml:"mac"`
	MACPos          Pos        `yaml:"-"`
	State           *string    `yaml:"state"`
	StatePos        Pos        `yaml:"-"`
	Parent          *string    `yaml:"parent"`
	ParentPos       Pos        `yaml:"-"`
	VLAN            *int       `yaml:"vlan"`
	VLANPos         Pos        `yaml:"-"`
	VLANProtocol    *string    `yaml:"vlan-protocol"`
	Access          *int       `yaml:"access"`
	AccessPos       Pos        `yaml:"-"`
	Trunk           []int      `yaml:"trunk"`
	TrunkPos        Pos        `yaml:"-"`
	VLANProtocolPos Pos        `yaml:"-"`
	// Peering labels a VLAN as an ExpressRoute peering of the circuit its
	// parent carries (private or microsoft): one VLAN per peering per circuit.
	Peering    *string `yaml:"peering"`
	PeeringPos Pos     `yaml:"-"`
}

// AddrSpec is an interface address with prefix length, as written.
type AddrSpec struct {
	Prefix netip.Prefix
	Pos    Pos
}

// RouteSpec is a static route as written.
type RouteSpec struct {
	Pos    Pos
	Dst    string `yaml:"dst"`
	DstPos Pos    `yaml:"-"`
	Via    string `yaml:"via"`
	ViaPos Pos    `yaml:"-"`
	Dev    string `yaml:"dev"`
	DevPos Pos    `yaml:"-"`
	Metric int    `yaml:"metric"`
	Onlink bool   `yaml:"onlink"`
}

type linkSpec struct {
	Pos          Pos
	Endpoints    []endpointSpec `yaml:"endpoints"`
	EndpointsPos Pos            `yaml:"-"`
	MTU          *int           `yaml:"mtu"`
	MTUPos       Pos            `yaml:"-"`
	MACsec       *MACsecSpec    `yaml:"macsec"`
}

type endpointSpec struct {
	Value string
	Pos   Pos
}

// Topology is a validated lab: every reference resolved, every value checked.
type Topology struct {
	Name     string
	File     string // absolute path of the topology file
	Nodes    []*Node
	Links    []*Link
	Tunnels  []*Tunnel
	Warnings ErrorList
}

// Node is one validated node, with defaults and its kind's settings applied.
type Node struct {
	Name       string
	Pos        Pos
	Kind       string
	Image      string
	Cmd        string
	Env        map[string]string
	Binds      []string
	Exec       []string
	Labels     map[string]string
	Group      string
	Forward    bool
	Sysctls    []Sysctl
	Interfaces []*Interface // in natural name order: lo, eth1, eth1.100, eth2, eth10
	Routes     []Route
	BGP        *BGP // nil: no BGP speaker
	// BridgeVLANProtocol is the tag a bridge node's VLANs use: 802.1Q, or
	// 802.1ad for a provider bridge that pushes S-tags.
	BridgeVLANProtocol VLANProtocol
}

// Interface is a network interface of a node.
type Interface struct {
	Name string
	Pos  Pos
	Type InterfaceType
	// Link is the veth link this interface ends (TypeVeth), or protects
	// (TypeMACsec, whose Parent is the veth end).
	Link *Link
	// Parent, VLAN and VLANProtocol describe a TypeVLAN subinterface.
	Parent       string
	VLAN         int
	VLANProtocol VLANProtocol
	Addresses    []netip.Prefix
	MTU          int // 0: the kernel's default
	MAC          net.HardwareAddr
	Down         bool // administratively down at deploy
	// Access and Trunk are a bridge port's VLANs: one untagged (access, or
	// customer port on a provider bridge), or several tagged (trunk).
	Access int
	Trunk  []int
	// Peering is the ExpressRoute peering a VLAN carries, if labelled.
	Peering string
	// Tunnel is the IPsec tunnel whose xfrm interface this is (TypeXfrm).
	Tunnel *Tunnel
}

// InterfaceType says what kind of device an interface is.
type InterfaceType string

// Interface types.
const (
	TypeVeth     InterfaceType = "veth"
	TypeVLAN     InterfaceType = "vlan"
	TypeLoopback InterfaceType = "loopback"
)

// VLANProtocol is the EtherType of a VLAN tag.
type VLANProtocol string

// VLAN tag protocols. ExpressRoute Direct QinQ uses 802.1Q for both tags;
// provider networks use 802.1ad for the outer (S) tag.
const (
	Dot1Q  VLANProtocol = "802.1Q"  // EtherType 0x8100
	Dot1ad VLANProtocol = "802.1ad" // EtherType 0x88A8
)

// Sysctl is a per-namespace kernel setting.
type Sysctl struct {
	Key   string // dotted form: net.ipv4.ip_forward
	Value string
	Pos   Pos
}

// Route is a static route.
type Route struct {
	Dst    netip.Prefix
	Via    netip.Addr // invalid when the route is a device route
	Dev    string
	Metric int
	Onlink bool
	Pos    Pos `json:"-"`
}

// Link is a veth pair between two node interfaces.
type Link struct {
	Pos    Pos
	A      Endpoint
	B      Endpoint
	MTU    int
	MACsec *MACsec // nil: the link is plaintext
}

// Endpoint is one end of a link.
type Endpoint struct {
	Node  string
	Iface string
	Pos   Pos
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Node returns the node with the given name, or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Interface returns the node's interface with the given name, or nil.
func (n *Node) Interface(name string) *Interface {
	for _, i := range n.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}
