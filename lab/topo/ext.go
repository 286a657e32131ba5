package topo

import "reflect"

// The loader's half of the feature seam. The core of a topology — nodes,
// links, interfaces that are link ends or the loopback, addresses, routes,
// sysctls — is read here; everything else (VLANs, bridge VLANs, MACsec,
// IPsec tunnels, BGP, impairments, ...) is a feature's, read through the
// hooks below. A feature adds its keys with their types; the decoder reads
// them with the same rules as the core's (positions, ${VAR}, unknown keys
// refused with a did-you-mean), the values land in the Specs of the object
// they were written under, and the feature's hooks turn them into its own
// model, kept in that object's Ext. topo names no feature.

// Scope is where in a topology file a feature's key goes.
type Scope int

// The scopes.
const (
	// ScopeTopology keys sit under topology: beside nodes and links.
	ScopeTopology Scope = iota
	// ScopeNode keys sit in a node, and in defaults and kinds, from which
	// nodes inherit them whole (node > kind > defaults).
	ScopeNode
	// ScopeLink keys sit in an entry of topology.links.
	ScopeLink
	// ScopeInterface keys sit in an entry of a node's interfaces.
	ScopeInterface
	// ScopeFile keys sit at the top of the file, beside name and
	// topology: what is about the lab rather than part of it (drills).
	// They land in the Topology's Specs with the topology keys.
	ScopeFile
	// ScopeAction keys are actions a drill step does (under do:): a
	// feature's own (a key rotation, a rekey), which it resolves and
	// runs through its feature.ActionHook.
	ScopeAction
)

// Key is a key a feature adds to topology files.
type Key struct {
	Scope Scope
	Name  string
	// Spec is a value of the type the key decodes into — a struct, a
	// pointer to one, a slice — such as (*MACsecSpec)(nil).
	Spec any
}

// Specs holds what a feature's keys decoded into, as written (after
// inheritance, for node keys), by key name.
type Specs map[string]Spec

// Ext holds a feature's model of an object, by feature name: what its
// hooks resolved from the object's Specs.
type Ext map[string]any

func (s *Specs) inheritFrom(lower any) {
	for k, v := range lower.(Specs) {
		if _, ok := (*s)[k]; !ok {
			if *s == nil {
				*s = Specs{}
			}
			(*s)[k] = v
		}
	}
}

// Extension is a feature, as the loader sees it: a name, and any of the
// hooks below.
type Extension interface {
	Name() string
}

// KeysHook adds topology keys.
type KeysHook interface {
	Keys() []Key
}

// ResolveHook runs once the nodes (with their inherited keys) and the links
// exist, before any node's interfaces are read: what the topology and link
// keys describe is resolved here (tunnels, a link's MACsec).
type ResolveHook interface {
	Resolve(t *Topology, r Reporter)
}

// InterfacesHook adds to a node the devices the feature makes (a MACsec
// device on a link end, a tunnel's xfrm interface), after the link ends
// and before the interfaces the node declares are matched, so that the
// node can give them addresses and an MTU.
type InterfacesHook interface {
	AddInterfaces(t *Topology, n *Node, r Reporter)
}

// ClaimHook may claim an interface a node declares that is no link end,
// no loopback and no device of AddInterfaces (a VLAN subinterface): it
// returns the interface and true, or false to leave it. An interface it
// claims but finds wrong is nil, true, its problems reported. The first
// claim wins; one nobody claims is an error ("on no link").
type ClaimHook interface {
	ClaimInterface(n *Node, name string, at Pos, spec *InterfaceSpec, r Reporter) (*Interface, bool)
}

// InterfaceHook reads, for every interface a node declares, the keys the
// feature added to interfaces (in i.Specs), whoever owns the interface.
type InterfaceHook interface {
	CheckInterface(n *Node, i *Interface, r Reporter)
}

// NodeHook checks a node once its interfaces, addresses and routes are
// resolved (BGP neighbours are resolved against its subnets here).
type NodeHook interface {
	CheckNode(t *Topology, n *Node, r Reporter)
}

// TopologyHook checks the whole topology last (a tunnel's outer addresses
// against its nodes').
type TopologyHook interface {
	CheckTopology(t *Topology, r Reporter)
}

// OverheadHook says what an interface adds to its packets inside its
// parent's MTU, for the MTU plan, when the interface is the feature's:
// bytes, and what they are for messages ("SecTAG and ICV"). ok is false
// when the interface is not the feature's.
type OverheadHook interface {
	Overhead(n *Node, i *Interface) (bytes int, what string, ok bool)
}

// keysOf collects the extensions' keys by scope and name.
func keysOf(exts []Extension) map[Scope]map[string]Key {
	out := map[Scope]map[string]Key{}
	for _, e := range exts {
		h, ok := e.(KeysHook)
		if !ok {
			continue
		}
		for _, k := range h.Keys() {
			if out[k.Scope] == nil {
				out[k.Scope] = map[string]Key{}
			}
			out[k.Scope][k.Name] = k
		}
	}
	return out
}

// specsType is the type of the Specs field the decoder fills.
var specsType = reflect.TypeOf(Specs(nil))
