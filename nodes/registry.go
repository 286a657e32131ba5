// Package nodes is the registry of node kinds. Each kind is one small Kind
// value; what a kind does beyond validation it offers through optional
// single-method interfaces (Creator, Wirer, Starter) that the lab engine
// finds by type assertion, so adding a kind never touches the engine.
package nodes

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/topo"
)

// Kind is a node kind: netns, bridge, ...
type Kind interface {
	// Name is the kind's name in topology files.
	Name() string
	// Check applies the kind's own rules, and its defaults, to a node of
	// this kind.
	Check(n *topo.Node, r topo.Reporter)
}

// Node is a node being deployed, as a kind sees it.
type Node struct {
	Lab   string
	Spec  *topo.Node
	NetNS string          // the node's namespace name
	Dir   string          // the node's directory under the lab's state directory
	NL    *netlink.Handle // netlink bound to the node's namespace
	Log   *slog.Logger
}

// Creator is a kind that makes devices of its own once the node's namespace
// exists and before links are attached (a bridge makes its bridge).
type Creator interface {
	Create(ctx context.Context, n *Node) error
}

// Wirer is a kind that acts on its link interfaces once they exist (a
// bridge enslaves them as ports).
type Wirer interface {
	Wire(ctx context.Context, n *Node) error
}

// Starter is a kind that runs something in the node once its interfaces,
// addresses and routes are in place.
type Starter interface {
	Start(ctx context.Context, n *Node) error
}

// Registry holds the node kinds a lab may use.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]Kind{}} }

// Builtin returns a registry of erlab's own kinds.
func Builtin() *Registry {
	r := NewRegistry()
	for _, k := range []Kind{Netns{}, Bridge{}, Router{}} {
		if err := r.Register(k); err != nil {
			panic(err) // a programming error: two built-in kinds share a name
		}
	}
	return r
}

// Register adds a kind; a name already taken is refused.
func (r *Registry) Register(k Kind) error {
	if _, dup := r.kinds[k.Name()]; dup {
		return fmt.Errorf("node kind %q is registered twice", k.Name())
	}
	r.kinds[k.Name()] = k
	return nil
}

// Get returns the kind with the given name.
func (r *Registry) Get(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Kinds lists the registered kind names, sorted.
func (r *Registry) Kinds() []string {
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Known reports whether a kind is registered.
func (r *Registry) Known(name string) bool { return slices.Contains(r.Kinds(), name) }

// CheckNode applies a node's kind rules; it satisfies topo.KindSet.
func (r *Registry) CheckNode(n *topo.Node, rep topo.Reporter) {
	if k, ok := r.kinds[n.Kind]; ok {
		k.Check(n, rep)
	}
}
