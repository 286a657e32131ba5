// Package nodes is the registry of node kinds: the engine's seam for what
// a node is. Each kind is one small Kind value; what it does beyond
// validation it offers through optional single-method interfaces, found by
// type assertion, so adding a kind never touches the engine:
//
//   - Preparer: what the kind says of its nodes as soon as they exist (a
//     switch, one that forwards);
//   - Needer: the kernel features its nodes need;
//   - NamespaceMaker: where a node's network namespace comes from, when
//     not from the engine (a container's, bound at the usual name);
//   - Creator, Wirer, Starter: its devices, its ports, its processes;
//   - Execer: how a command runs in a node, when entering its network
//     namespace is not enough (a container's mount and PID namespaces);
//   - Stopper: how its nodes stop, when not by signals (a container's
//     runtime stops it, to start it again as it was);
//   - Sweeper: how to find and remove what its nodes leave behind, from
//     the lab's name alone (after a deploy killed half-way too);
//   - Inspector: what its runtime says of a node (a container's id and
//     state, and whether it still runs in the node's namespace);
//   - Shaper: how a graph draws its nodes.
package nodes

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Kind is a node kind: netns, bridge, ...
type Kind interface {
	// Name is the kind's name in topology files.
	Name() string
	// Check applies the kind's own rules to a resolved node of this kind.
	Check(n *topo.Node, r topo.Reporter)
}

// NetNSPrefix starts the name of every namespace erlab makes. The full name
// is erlab-<lab>.<node>: lab and node names hold no dot, so the name alone
// says which lab owns a namespace, even when the lab's state is gone.
const NetNSPrefix = "erlab-"

// NetNS is the namespace of a lab's node.
func NetNS(lab, node string) string { return NetNSPrefix + lab + "." + node }

// Node is a node being deployed, as a kind (and a feature) sees it.
type Node struct {
	Lab   string
	Spec  *topo.Node
	NetNS string // the node's namespace name
	// Dir is the node's directory under the lab's state directory. It
	// is not made for every node: call MakeDir before writing in it.
	Dir string
	Log *slog.Logger
	// Ops is what changes the kernel (or records the changes, in tests).
	Ops kernel.Ops
}

// MakeDir makes the node's directory (0700) if it is not there yet, for
// what keeps files (a daemon's configuration, logs and sockets, exec
// output). Only such nodes get one: a lab of thousands of plain nodes
// would otherwise pay a directory each, on deploy and again on destroy.
func (n *Node) MakeDir() error {
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return fmt.Errorf("node %s: %w", n.Spec.Name, err)
	}
	return nil
}

// Netlink runs fn with netlink bound to the node's namespace; cmd is its ip
// equivalent (without "-n NS").
func (n *Node) Netlink(cmd string, fn func(h *netlink.Handle) error) error {
	return n.Ops.Netlink(n.NetNS, cmd, fn)
}

// Do runs fn on a thread inside the node's namespace; cmd is what it amounts
// to as a command line.
func (n *Node) Do(cmd string, fn func() error) error { return n.Ops.Do(n.NetNS, cmd, fn) }

// Exec runs fn, which starts a process in the node (or talks to one);
// cmd is the command line.
func (n *Node) Exec(cmd string, fn func() error) error { return n.Ops.Exec(n.NetNS, cmd, fn) }

// Wait waits for a condition of the node.
func (n *Node) Wait(what string, fn func() error) error { return n.Ops.Wait(n.NetNS, what, fn) }

// Dry says whether the node's kernel operations are only recorded (a
// test of the deploy plan): a step that would wait for what it started,
// or read the kernel back, has nothing to wait for.
func (n *Node) Dry() bool { _, real := n.Ops.(kernel.Real); return !real }

// Preparer is a kind that says something of its nodes as soon as they
// exist, before any feature reads them: a switch (topo.Node.Switch), one
// that forwards.
type Preparer interface {
	Prepare(n *topo.Node)
}

// Needer is a kind whose nodes need kernel features.
type Needer interface {
	Needs(n *topo.Node) []*kernel.Feature
}

// NamespaceMaker is a kind whose nodes bring their own network namespace:
// it makes it and binds it at n.NetNS (ip netns attach), so that everything
// downstream finds it as any other node's.
type NamespaceMaker interface {
	MakeNamespace(ctx context.Context, n *Node) error
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

// Execer is a kind whose nodes run commands in more than their network
// namespace: Exec runs argv there with the caller's streams and returns
// its exit status.
type Execer interface {
	Exec(ctx context.Context, lab, node, netns string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// Stopper is a kind whose nodes stop otherwise than by signals to what
// runs in their namespace: a container, stopped through its runtime so
// that it starts again with its own filesystem (its MakeNamespace starts
// the stopped one again). kill stops it at once, as a crash.
type Stopper interface {
	Stop(ctx context.Context, n *Node, kill bool) error
}

// Sweeper is a kind that leaves things outside the lab's namespaces and
// state directory (containers, networks): Sweep finds and removes those of
// the lab from its name alone, and says how many it removed.
type Sweeper interface {
	Sweep(ctx context.Context, lab string, log *slog.Logger) (int, error)
}

// Inspector is a kind whose nodes have a runtime of their own to report
// (a container's id, image, state and management addresses). Inspect
// returns nil for a node its runtime does not have (removed behind
// erlab's back).
type Inspector interface {
	Inspect(ctx context.Context, n *Node) (*Runtime, error)
}

// Runtime is what a kind's runtime says of a node. Its JSON names are
// containerlab's, for the scripts that read containerlab inspect -f json.
type Runtime struct {
	ID    string `json:"container_id"`
	Image string `json:"image"`
	// State is the runtime's (running, exited, restarting, ...).
	State string `json:"state"`
	IPv4  string `json:"ipv4_address,omitempty"` // on the management network, with its length
	IPv6  string `json:"ipv6_address,omitempty"`
	// Detached says the node's processes run in another network
	// namespace than the one bound at the node's name, which holds its
	// links: the runtime restarted it behind erlab's back (docker
	// restart, a restart policy), or it ended.
	Detached bool `json:"detached,omitempty"`
}

// Shaper is a kind whose nodes a graph draws otherwise than as boxes:
// "switch" (a hexagon).
type Shaper interface {
	Shape() string
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
	for _, k := range []Kind{Netns{}, Bridge{}, Router{}, Linux{}} {
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

// All returns the registered kinds, sorted by name.
func (r *Registry) All() []Kind {
	var out []Kind
	for _, n := range r.Kinds() {
		out = append(out, r.kinds[n])
	}
	return out
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

// PrepareNode applies what a node's kind says of it; it satisfies
// topo.KindSet.
func (r *Registry) PrepareNode(n *topo.Node) {
	if p, ok := r.kinds[n.Kind].(Preparer); ok {
		p.Prepare(n)
	}
}

// CheckNode applies a node's kind rules; it satisfies topo.KindSet.
func (r *Registry) CheckNode(n *topo.Node, rep topo.Reporter) {
	if k, ok := r.kinds[n.Kind]; ok {
		k.Check(n, rep)
	}
}
