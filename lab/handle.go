package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/vishvananda/netlink"
)

// Lab is one lab, by its topology or by its name: what every command acts
// on. It implements feature.Lab, the view features' inspect, verify and
// actions take.
type Lab struct {
	name string
	top  *topo.Topology // nil when opened by name and its file is gone
	opts Options

	// The lab's state as last read, and its nodes by name: inspect and
	// the features ask per node, and reading the file each time made
	// inspecting a 1,000-node lab take 20 s. Deploy and Destroy, which
	// write it, forget it.
	mu      sync.Mutex
	st      *State
	stErr   error
	byName  map[string]int
	stValid bool
	// links are the nodes' interfaces as Inspect last read them, which the
	// features' sections read again.
	links map[string][]netlink.Link
}

// Links implements feature.Lab.
func (l *Lab) Links(node string) ([]netlink.Link, error) {
	l.mu.Lock()
	links, ok := l.links[node]
	l.mu.Unlock()
	if ok {
		return links, nil
	}
	ns, err := l.NetNS(node)
	if err != nil {
		return nil, err
	}
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
}

// keepLinks records what Inspect read of a node's interfaces.
func (l *Lab) keepLinks(node string, links []netlink.Link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.links == nil {
		l.links = map[string][]netlink.Link{}
	}
	l.links[node] = links
}

// state is the lab's state file, read once per handle.
func (l *Lab) state() (*State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stValid {
		l.st, l.stErr = l.opts.readState(l.name)
		l.byName, l.stValid = nil, true
		if l.st != nil {
			l.byName = make(map[string]int, len(l.st.Nodes))
			for i, n := range l.st.Nodes {
				l.byName[n.Name] = i
			}
		}
	}
	return l.st, l.stErr
}

// forget drops the state read, after a change to it.
func (l *Lab) forget() {
	l.mu.Lock()
	l.st, l.stErr, l.byName, l.stValid, l.links = nil, nil, nil, false, nil
	l.mu.Unlock()
}

// deployedNode finds a node of the deployed lab — in its state, or, when
// the state is gone, among its namespaces — and says what there is when
// it is not there.
func (l *Lab) deployedNode(node string) (*NodeState, error) {
	st, err := l.state()
	if err != nil {
		st = &State{Name: l.name}
		nss, _ := kernel.NetNSList(labNetNSPrefix(l.name))
		for _, ns := range nss {
			if _, n, _ := splitNetNSName(ns); n != parkNode {
				st.Nodes = append(st.Nodes, NodeState{Name: n, Kind: "?", NetNS: ns})
			}
		}
		if len(st.Nodes) == 0 {
			return nil, &NotDeployedError{Name: l.name}
		}
	}
	i, ok := -1, false
	if err == nil {
		l.mu.Lock()
		i, ok = l.byName[node]
		l.mu.Unlock()
	} else {
		for k, n := range st.Nodes {
			if n.Name == node {
				i, ok = k, true
			}
		}
	}
	if !ok {
		var names []string
		for _, n := range st.Nodes {
			names = append(names, n.Name)
		}
		return nil, &UnknownError{Lab: l.name, What: "node", Name: node, Known: names}
	}
	n := &st.Nodes[i]
	if n.Stopped {
		return nil, &StoppedError{Lab: l.name, Node: node}
	}
	if !kernel.NetNSExists(n.NetNS) {
		return nil, fmt.Errorf("lab %s: node %s has no namespace (%s): the lab is half-built or half-destroyed; destroy it and deploy again", l.name, node, n.NetNS)
	}
	return n, nil
}

var _ feature.Lab = (*Lab)(nil)

// Open opens a lab from a topology file, or, when fileOrName is no file, a
// deployed lab by name (reading the topology it was deployed from, if that
// file is still there).
func Open(ctx context.Context, fileOrName string, opts Options) (*Lab, error) {
	if fileOrName == "" {
		return nil, errors.New("give the lab with -t FILE or --name LAB")
	}
	if st, err := os.Stat(fileOrName); err == nil && !st.IsDir() || strings.HasSuffix(fileOrName, ".yml") || strings.HasSuffix(fileOrName, ".yaml") || strings.Contains(fileOrName, "/") {
		return OpenFile(fileOrName, opts)
	}
	return OpenName(fileOrName, opts)
}

// OpenFile opens the lab a topology file describes, validating the file.
func OpenFile(path string, opts Options) (*Lab, error) {
	t, err := Load(path, opts)
	if err != nil {
		return nil, err
	}
	return FromTopology(t, opts), nil
}

// OpenName opens a lab by name. The lab need not be deployed (destroy of
// nothing is no error), but what needs its nodes says so.
func OpenName(name string, opts Options) (*Lab, error) {
	l := &Lab{name: name, opts: opts}
	if st, err := opts.readState(name); err == nil && st.File != "" {
		if t, err := Load(st.File, opts); err == nil {
			t.Name = name // a test may have deployed it under another name
			l.top = t
		}
	}
	return l, nil
}

// FromTopology is the lab of an already loaded topology.
func FromTopology(t *topo.Topology, opts Options) *Lab {
	return &Lab{name: t.Name, top: t, opts: opts}
}

// Name implements feature.Lab.
func (l *Lab) Name() string { return l.name }

// Topology implements feature.Lab.
func (l *Lab) Topology() *topo.Topology { return l.top }

// Options returns the options the lab was opened with.
func (l *Lab) Options() Options { return l.opts }

// Dir implements feature.Lab.
func (l *Lab) Dir() string { return l.opts.labDir(l.name) }

// NodeDir implements feature.Lab.
func (l *Lab) NodeDir(node string) string { return filepath.Join(l.Dir(), "nodes", node) }

// Log implements feature.Lab.
func (l *Lab) Log() *slog.Logger { return l.opts.log().With("lab", l.name) }

// Status implements feature.Lab.
func (l *Lab) Status() feature.Status { return l.opts.status() }

// NetNS implements feature.Lab: the node's namespace, which must exist.
func (l *Lab) NetNS(node string) (string, error) {
	n, err := l.deployedNode(node)
	if err != nil {
		return "", err
	}
	return n.NetNS, nil
}

// Nodes implements feature.Lab.
func (l *Lab) Nodes() []string {
	var out []string
	if st, err := l.state(); err == nil {
		for _, n := range st.Nodes {
			out = append(out, n.Name)
		}
		return out
	}
	nss, _ := kernel.NetNSList(labNetNSPrefix(l.name))
	for _, ns := range nss {
		if _, n, _ := splitNetNSName(ns); n != parkNode {
			out = append(out, n)
		}
	}
	return out
}

// State implements feature.Lab.
func (l *Lab) State(featureName, node string, v any) bool {
	if _, err := l.state(); err != nil {
		return false
	}
	l.mu.Lock()
	i, ok := l.byName[node]
	l.mu.Unlock()
	if !ok {
		return false
	}
	raw, ok := l.st.Nodes[i].Features[featureName]
	return ok && json.Unmarshal(raw, v) == nil
}

// Exec implements feature.Lab: argv inside a node, with the given
// streams; it returns the exit status (128+N for a signal, as a shell).
func (l *Lab) Exec(ctx context.Context, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no command given")
	}
	n, err := l.deployedNode(node)
	if err != nil {
		return 0, err
	}
	l.Log().Debug("exec", "node", node, "argv", argv)
	return l.opts.execIn(ctx, l.name, n, argv, stdin, stdout, stderr)
}

// needTopology is the lab's topology, or an error saying why a command
// needs it.
func (l *Lab) needTopology(what string) (*topo.Topology, error) {
	if l.top != nil {
		return l.top, nil
	}
	if _, err := l.state(); errors.Is(err, fs.ErrNotExist) {
		return nil, &NotDeployedError{Name: l.name}
	}
	return nil, fmt.Errorf("lab %s: %s needs its topology file, and the one it was deployed from is gone: give it with -t FILE", l.name, what)
}
