// Package topo reads erlab topology files: raw YAML → a validated, typed
// model, in one place. Its core is containerlab's (name, topology.defaults,
// kinds, nodes, links with the brief endpoints form); erlab's extensions
// (interfaces, routes, sysctls, forward) live under their own keys.
package topo

import (
	"net"
	"net/netip"
	"path/filepath"
	"time"
)

// fileSpec is a topology file exactly as written, before inheritance.
type fileSpec struct {
	Name     string    `yaml:"name"`
	NamePos  Pos       `yaml:"-"`
	Prefix   *string   `yaml:"prefix"`
	Mgmt     *MgmtSpec `yaml:"mgmt"`
	Topology bodySpec  `yaml:"topology" what:"-"`
	Specs    Specs     `yaml:"-" scope:"file"`
}

type bodySpec struct {
	Defaults NodeSpec      `yaml:"defaults"`
	Kinds    Map[NodeSpec] `yaml:"kinds"`
	Groups   Map[NodeSpec] `yaml:"groups"`
	Nodes    Map[NodeSpec] `yaml:"nodes"`
	Links    []linkSpec    `yaml:"links"`
	Specs    Specs         `yaml:"-" scope:"topology"`
}

// NodeSpec is a node as written in topology.defaults, topology.kinds.KIND,
// topology.groups.GROUP or topology.nodes.NAME. Unset fields are nil so inheritance can tell "not
// given" from "given as zero".
type NodeSpec struct {
	Pos        Pos
	Kind       *string     `yaml:"kind"`
	KindPos    Pos         `yaml:"-"`
	Image      *string     `yaml:"image"`
	Cmd        *string     `yaml:"cmd"`
	Entrypoint *string     `yaml:"entrypoint"`
	User       *string     `yaml:"user"`
	Env        Map[string] `yaml:"env"`
	EnvFiles   []string    `yaml:"env-files"`
	Privileged *bool       `yaml:"privileged"`
	Binds      []string    `yaml:"binds"`
	Exec       []string    `yaml:"exec"`
	Labels     Map[string] `yaml:"labels"`
	Group      *string     `yaml:"group"`
	// The container runtime's keys, containerlab's names.
	MgmtIPv4    *string `yaml:"mgmt-ipv4"`
	MgmtIPv4Pos Pos     `yaml:"-"`
	MgmtIPv6    *string `yaml:"mgmt-ipv6"`
	MgmtIPv6Pos Pos     `yaml:"-"`
	// containerlab's deprecated spellings, read with a warning.
	MgmtIPv4Old    *string            `yaml:"mgmt_ipv4"`
	MgmtIPv4OldPos Pos                `yaml:"-"`
	MgmtIPv6Old    *string            `yaml:"mgmt_ipv6"`
	MgmtIPv6OldPos Pos                `yaml:"-"`
	CapAdd         []string           `yaml:"cap-add"`
	ShmSize        *string            `yaml:"shm-size"`
	ShmSizePos     Pos                `yaml:"-"`
	NetworkMode    *string            `yaml:"network-mode"`
	NetworkModePos Pos                `yaml:"-"`
	Ports          []string           `yaml:"ports"`
	CPU            *float64           `yaml:"cpu"`
	CPUPos         Pos                `yaml:"-"`
	CPUSet         *string            `yaml:"cpu-set"`
	Memory         *string            `yaml:"memory"`
	MemoryPos      Pos                `yaml:"-"`
	DNS            *DNSSpec           `yaml:"dns"`
	Healthcheck    *HealthcheckSpec   `yaml:"healthcheck"`
	Stages         refused            `yaml:"stages"`
	Forward        *bool              `yaml:"forward"`
	Sysctls        Map[string]        `yaml:"sysctls"`
	Interfaces     Map[InterfaceSpec] `yaml:"interfaces"`
	Routes         []RouteSpec        `yaml:"routes"`
	Specs          Specs              `yaml:"-" scope:"node"`
}

// MgmtSpec is the top-level mgmt: block, containerlab's: the lab's
// management network, a Docker bridge network its container nodes join
// (eth0 in each).
type MgmtSpec struct {
	Pos               Pos
	Network           *string `yaml:"network"`
	Bridge            *string `yaml:"bridge"`
	IPv4Subnet        *string `yaml:"ipv4-subnet"`
	IPv4SubnetPos     Pos     `yaml:"-"`
	IPv4Gw            *string `yaml:"ipv4-gw"`
	IPv4GwPos         Pos     `yaml:"-"`
	IPv4Range         *string `yaml:"ipv4-range"`
	IPv4RangePos      Pos     `yaml:"-"`
	IPv6Subnet        *string `yaml:"ipv6-subnet"`
	IPv6SubnetPos     Pos     `yaml:"-"`
	IPv6Gw            *string `yaml:"ipv6-gw"`
	IPv6GwPos         Pos     `yaml:"-"`
	IPv6Range         *string `yaml:"ipv6-range"`
	IPv6RangePos      Pos     `yaml:"-"`
	MTU               *int    `yaml:"mtu"`
	MTUPos            Pos     `yaml:"-"`
	ExternalAccess    *bool   `yaml:"external-access"`
	ExternalAccessPos Pos     `yaml:"-"`
}

// DNSSpec is a container node's dns: block.
type DNSSpec struct {
	Pos     Pos
	Servers []string `yaml:"servers"`
	Search  []string `yaml:"search"`
	Options []string `yaml:"options"`
}

// HealthcheckSpec is a container node's healthcheck: block, durations in
// seconds as containerlab writes them.
type HealthcheckSpec struct {
	Pos         Pos
	Test        []string `yaml:"test"`
	StartPeriod *int     `yaml:"start-period"`
	Interval    *int     `yaml:"interval"`
	Timeout     *int     `yaml:"timeout"`
	Retries     *int     `yaml:"retries"`
}

// InterfaceSpec is one entry of a node's interfaces map.
type InterfaceSpec struct {
	Pos       Pos
	Addresses []AddrSpec `yaml:"addresses"`
	MTU       *int       `yaml:"mtu"`
	MTUPos    Pos        `yaml:"-"`
	MAC       *string    `yaml:"mac"`
	MACPos    Pos        `yaml:"-"`
	State     *string    `yaml:"state"`
	StatePos  Pos        `yaml:"-"`
	Specs     Specs      `yaml:"-" scope:"interface"`
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
	Type         *string        `yaml:"type"`
	TypePos      Pos            `yaml:"-"`
	Endpoints    []endpointSpec `yaml:"endpoints"`
	EndpointsPos Pos            `yaml:"-"`
	MTU          *int           `yaml:"mtu"`
	MTUPos       Pos            `yaml:"-"`
	// containerlab's type: host form: the node's end, and the name of
	// the far end in the host's namespace.
	// vars feed containerlab's configuration templates: read, warned.
	Vars             ignored       `yaml:"vars"`
	Endpoint         *endpointSpec `yaml:"endpoint"`
	HostInterface    *string       `yaml:"host-interface"`
	HostInterfacePos Pos           `yaml:"-"`
	Specs            Specs         `yaml:"-" scope:"link"`
}

// endpointSpec is a link end: "node:interface", or containerlab's
// extended form {node: N, interface: I, mac: M}.
type endpointSpec struct {
	Value  string
	Pos    Pos
	MAC    string
	MACPos Pos
}

// Topology is a validated lab: every reference resolved, every value checked.
type Topology struct {
	Name  string
	File  string // absolute path of the topology file
	Nodes []*Node
	Links []*Link
	// HostLinks are the links with one end in the host's namespace.
	HostLinks []*HostLink
	// Mgmt is the lab's management network, nil when it has none.
	Mgmt     *Mgmt
	Warnings ErrorList
	// Specs are the features' keys under topology:, Ext their models.
	Specs Specs
	Ext   Ext

	// Lookups by name, built as the topology is read: the checks and the
	// deploy ask per node, and a scan each time made a 10,000-node lab
	// quadratic. nil for a topology built by hand.
	nodeByName map[string]*Node
	linksOf    map[string][]*Link
}

// index builds the lookups of the nodes and links there are.
func (t *Topology) index() {
	t.nodeByName = make(map[string]*Node, len(t.Nodes))
	for _, n := range t.Nodes {
		t.nodeByName[n.Name] = n
	}
	t.linksOf = make(map[string][]*Link, len(t.Nodes))
	for _, l := range t.Links {
		t.linksOf[l.A.Node] = append(t.linksOf[l.A.Node], l)
		if l.B.Node != l.A.Node {
			t.linksOf[l.B.Node] = append(t.linksOf[l.B.Node], l)
		}
	}
}

// LinksOf returns the links with an end on the node, in the file's order.
func (t *Topology) LinksOf(node string) []*Link {
	if t.linksOf != nil {
		return t.linksOf[node]
	}
	var out []*Link
	for _, l := range t.Links {
		if l.A.Node == node || l.B.Node == node {
			out = append(out, l)
		}
	}
	return out
}

// Node is one validated node, with defaults and its kind's settings applied.
type Node struct {
	Name       string
	Pos        Pos
	Kind       string
	Image      string
	Cmd        string
	Entrypoint string
	User       string
	// Env is env-files' variables, then env's over them.
	Env        map[string]string
	Privileged bool
	Binds      []string
	Exec       []string
	Labels     map[string]string
	Group      string
	// Mgmt is the lab's management network when this node joins it (a
	// container node, not in network-mode none, of a lab that has one).
	Mgmt        *Mgmt
	MgmtIPv4    netip.Addr // its address there; invalid: the runtime picks
	MgmtIPv6    netip.Addr
	NetworkMode string // "" or "none"
	Ports       []string
	CPU         float64 // CPUs (1.5: one and a half); 0: no limit
	CPUSet      string
	Memory      int64    // bytes; 0: no limit
	CapAdd      []string // capabilities beyond the kind's defaults, without CAP_
	ShmSize     int64    // bytes of /dev/shm; 0: the runtime's default
	DNS         *DNS
	Healthcheck *Healthcheck
	mgmtPos     [2]Pos // where mgmt-ipv4 and mgmt-ipv6 are written
	Forward     bool
	Sysctls     []Sysctl
	Interfaces  []*Interface // in natural name order: lo, eth1, eth1.100, eth2, eth10
	Routes      []Route
	// Switch says the node is a layer-2 switch whose link ends are ports
	// (its kind says so): no addresses, no routes.
	Switch bool
	// Specs are the features' node keys (inherited), Ext their models.
	Specs Specs
	Ext   Ext
}

// Mgmt is a lab's management network. An invalid subnet lets the runtime
// pick one (ipv4-subnet: auto); an invalid gateway is the subnet's first
// address, as Docker picks it.
type Mgmt struct {
	Pos        Pos
	Network    string // "": the lab's own (MgmtNetwork)
	Bridge     string
	IPv4Subnet netip.Prefix
	IPv4Gw     netip.Addr
	IPv4Range  netip.Prefix
	IPv6Subnet netip.Prefix
	IPv6Gw     netip.Addr
	IPv6Range  netip.Prefix
	MTU        int
}

// DNS is a container's resolver settings.
type DNS struct {
	Servers []netip.Addr
	Search  []string
	Options []string
}

// Healthcheck is a container's health check, run by its runtime.
type Healthcheck struct {
	Test                           []string
	StartPeriod, Interval, Timeout time.Duration
	Retries                        int
}

// Interface is a network interface of a node.
type Interface struct {
	Name string
	Pos  Pos
	Type InterfaceType
	// Owner is the feature that makes the device ("" for a link end or
	// the loopback, which the engine makes).
	Owner string
	// Link is the veth link this interface ends (TypeVeth), or, for a
	// device a feature stacks on a link end, the link it is on.
	Link *Link
	// HostIface is the far end's name in the host's namespace, for the
	// node's end of a host link (TypeHostVeth).
	HostIface string
	// Parent is the device this one sits on ("" for a link end or lo).
	Parent    string
	Addresses []netip.Prefix
	MTU       int // 0: the kernel's default
	MAC       net.HardwareAddr
	Down      bool // administratively down at deploy
	// PayloadLayer, when set, names the layer this device wraps whole
	// frames of the devices stacked on it in ("MACsec", which encrypts
	// them): their VLAN tags count against its MTU, where a port keeps
	// tags outside its MTU, and traffic through it is inside that layer.
	PayloadLayer string
	// Specs are the features' interface keys as written, Ext their models.
	Specs Specs
	Ext   Ext
}

// InterfaceType says what kind of device an interface is. The engine's
// own are veth and loopback; features add theirs.
type InterfaceType string

// The engine's interface types.
const (
	TypeVeth     InterfaceType = "veth"
	TypeHostVeth InterfaceType = "host-veth" // a veth whose peer is in the host's namespace
	TypeLoopback InterfaceType = "loopback"
)

// HostNode is the name a brief-form endpoint gives the host's namespace
// ("host:IFNAME"), as containerlab's, in a lab with no node of that name.
const HostNode = "host"

// HostLink is a veth pair from a node's interface to one in the host's
// namespace (containerlab's host link).
type HostLink struct {
	Pos       Pos
	Index     int // its place under links:
	End       Endpoint
	HostIface string
	MTU       int
	MAC       net.HardwareAddr // the node's end's, from the extended form
}

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
	Pos   Pos
	Index int // its place under links:, from 0, as errors name it
	A     Endpoint
	B     Endpoint
	MTU   int
	// Specs are the features' link keys as written, Ext their models.
	Specs Specs
	Ext   Ext
	// macs are the ends' MACs as containerlab's extended form gives them
	// (endpoints: [{node, interface, mac}]), A's then B's; they become
	// the interfaces' MACs.
	macs [2]net.HardwareAddr
}

// Endpoint is one end of a link.
type Endpoint struct {
	Node  string
	Iface string
	Pos   Pos
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Dir is the topology file's directory, against which relative paths in
// it (key files) are read.
func (t *Topology) Dir() string { return filepath.Dir(t.File) }

// Node returns the node with the given name, or nil.
func (t *Topology) Node(name string) *Node {
	if n := t.nodeByName[name]; n != nil && n.Name == name {
		return n
	}
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

// Spec is one value of a feature's key, with where it was written.
type Spec struct {
	Value any
	Pos   Pos // the value's position
	Key   Pos // the key's position
}

// SpecOf returns the value of a feature's key in specs, typed.
func SpecOf[T any](specs Specs, key string) (T, Spec, bool) {
	s, ok := specs[key]
	if !ok {
		var zero T
		return zero, s, false
	}
	v, ok := s.Value.(T)
	return v, s, ok
}

// Ends returns the link's two ends.
func (l *Link) Ends() [2]Endpoint { return [2]Endpoint{l.A, l.B} }

// Other returns the end of the link that is not ep.
func (l *Link) Other(ep Endpoint) Endpoint {
	if l.A.Node == ep.Node && l.A.Iface == ep.Iface {
		return l.B
	}
	return l.A
}

// End returns the link's end on the node's interface, if it has one.
func (l *Link) End(node, iface string) (Endpoint, bool) {
	for _, ep := range l.Ends() {
		if ep.Node == node && ep.Iface == iface {
			return ep, true
		}
	}
	return Endpoint{}, false
}

// Lowest returns the device at the bottom of the interface's stack: the
// link end (or loopback) it sits on, through its parents; nil for a chain
// that leads nowhere.
func (n *Node) Lowest(i *Interface) *Interface {
	for range len(n.Interfaces) + 1 {
		if i == nil || i.Parent == "" {
			return i
		}
		i = n.Interface(i.Parent)
	}
	return nil
}

// Above says whether the interface sits, through its parents, on the
// device named lower.
func (n *Node) Above(i *Interface, lower string) bool {
	for range len(n.Interfaces) + 1 {
		if i == nil || i.Parent == "" {
			return false
		}
		if i.Parent == lower {
			return true
		}
		i = n.Interface(i.Parent)
	}
	return false
}

// Stack returns the interface and what sits on it, at any depth, parents
// first.
func (n *Node) Stack(base *Interface) []*Interface {
	in := map[string]bool{base.Name: true}
	out := []*Interface{base}
	for _, i := range n.ParentsFirst() {
		if i != base && i.Parent != "" && in[i.Parent] {
			in[i.Name] = true
			out = append(out, i)
		}
	}
	return out
}

// ParentsFirst returns the node's interfaces with every one after its
// parent.
func (n *Node) ParentsFirst() []*Interface {
	var out []*Interface
	done := map[string]bool{}
	for len(out) < len(n.Interfaces) {
		progress := false
		for _, i := range n.Interfaces {
			if done[i.Name] || (i.Parent != "" && !done[i.Parent]) {
				continue
			}
			out, done[i.Name], progress = append(out, i), true, true
		}
		if !progress { // validation refuses cycles; never loop on one
			break
		}
	}
	return out
}
