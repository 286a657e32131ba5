package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/erlab-dev/erlab/lab/fileutil"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// DefaultStateRoot holds one directory per deployed lab: its state file,
// logs and per-node files. It is on tmpfs, like the namespaces it describes,
// so a reboot clears both together.
const DefaultStateRoot = "/run/erlab"

// NetNSPrefix starts the name of every namespace erlab makes (see
// nodes.NetNS).
const NetNSPrefix = nodes.NetNSPrefix

// NetNSName is the namespace of a lab's node.
func NetNSName(lab, node string) string { return nodes.NetNS(lab, node) }

// labNetNSPrefix is the prefix shared by all namespaces of one lab.
func labNetNSPrefix(lab string) string { return NetNSPrefix + lab + "." }

// splitNetNSName returns the lab and node of an erlab namespace name.
func splitNetNSName(ns string) (lab, node string, ok bool) {
	rest, ok := strings.CutPrefix(ns, NetNSPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ".")
}

// State is what a lab's directory records about it (state.json). The kernel
// is the truth for what exists; the state adds what the kernel cannot say:
// kinds, links, where the topology came from, and what each feature
// records of each node.
type State struct {
	Name     string      `json:"name"`
	File     string      `json:"file"`
	Status   string      `json:"status"` // deploying, deployed
	Deployed time.Time   `json:"deployed"`
	Nodes    []NodeState `json:"nodes"`
	Links    []LinkState `json:"links"`
}

// NodeState is a node as recorded in the state.
type NodeState struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	NetNS string `json:"netns"`
	Group string `json:"group,omitempty"`
	// Routes are the node's static routes, kept so that restoring a pulled
	// link can put back the routes the kernel flushed when it went down.
	Routes []topo.Route `json:"routes,omitempty"`
	// Features holds what each feature records of the node (its
	// StateHook), by feature name: never a key.
	Features map[string]json.RawMessage `json:"features,omitempty"`
	// Stopped says erlab stop stopped the node: its namespace is gone
	// and its link ends are parked until erlab start.
	Stopped bool `json:"stopped,omitempty"`
}

// LinkState is a link as recorded in the state.
type LinkState struct {
	A string `json:"a"` // node:iface
	B string `json:"b"`
}

func (o *Options) stateFromTopology(t *topo.Topology, status string) (*State, error) {
	s := &State{Name: t.Name, File: t.File, Status: status, Deployed: time.Now().UTC()}
	stateHooks := hooks[interface {
		Name() string
		State(*topo.Topology, string) any
	}](o)
	for _, n := range t.Nodes {
		ns := NodeState{Name: n.Name, Kind: n.Kind, NetNS: NetNSName(t.Name, n.Name), Group: n.Group, Routes: n.Routes}
		for _, h := range stateHooks {
			v := h.State(t, n.Name)
			if v == nil {
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("state of %s on %s: %w", h.Name(), n.Name, err)
			}
			if ns.Features == nil {
				ns.Features = map[string]json.RawMessage{}
			}
			ns.Features[h.Name()] = b
		}
		s.Nodes = append(s.Nodes, ns)
	}
	for _, l := range t.Links {
		s.Links = append(s.Links, LinkState{A: l.A.String(), B: l.B.String()})
	}
	return s, nil
}

// labDir returns the lab's state directory.
func (o *Options) labDir(lab string) string { return filepath.Join(o.stateRoot(), lab) }

// StateRootEnv, when set, is the state root of options that give none:
// tests of the CLI run it against a state root of their own.
const StateRootEnv = "ERLAB_STATE_ROOT"

func (o *Options) stateRoot() string {
	if o.StateRoot != "" {
		return o.StateRoot
	}
	if env := os.Getenv(StateRootEnv); env != "" {
		return env
	}
	return DefaultStateRoot
}

// writeState saves the state atomically, readable by root only: key
// material lives beside it.
func (o *Options) writeState(s *State) error {
	dir := o.labDir(s.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create lab directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := fileutil.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}

// readState loads a lab's state; fs.ErrNotExist when it has none.
func (o *Options) readState(lab string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(o.labDir(lab), "state.json"))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read state of lab %s: %w", lab, err)
	}
	return &s, nil
}

// Deployed lists the labs that have anything on this host — namespaces or a
// state directory — whether or not their deploy finished.
func Deployed(opts Options) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	nss, err := kernel.NetNSList(NetNSPrefix)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		if lab, _, ok := splitNetNSName(ns); ok {
			add(lab)
		}
	}
	entries, err := os.ReadDir(opts.stateRoot())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			add(e.Name())
		}
	}
	return names, nil
}

// TopologyFile returns the topology file a deployed lab was deployed from,
// as its state records it.
func TopologyFile(name string, opts Options) (string, error) {
	st, err := opts.readState(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", &NotDeployedError{Name: name}
	}
	if err != nil {
		return "", err
	}
	if st.File == "" {
		return "", fmt.Errorf("lab %s: its state records no topology file", name)
	}
	return st.File, nil
}
