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

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Lab is one lab, by its topology or by its name: what every command acts
// on. It implements feature.Lab, the view features' inspect, verify and
// actions take.
type Lab struct {
	name string
	top  *topo.Topology // nil when opened by name and its file is gone
	opts Options
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
	n, err := l.opts.deployedNode(l.name, node)
	if err != nil {
		return "", err
	}
	return n.NetNS, nil
}

// Nodes implements feature.Lab.
func (l *Lab) Nodes() []string {
	var out []string
	if st, err := l.opts.readState(l.name); err == nil {
		for _, n := range st.Nodes {
			out = append(out, n.Name)
		}
		return out
	}
	nss, _ := kernel.NetNSList(labNetNSPrefix(l.name))
	for _, ns := range nss {
		_, n, _ := splitNetNSName(ns)
		out = append(out, n)
	}
	return out
}

// State implements feature.Lab.
func (l *Lab) State(featureName, node string, v any) bool {
	st, err := l.opts.readState(l.name)
	if err != nil {
		return false
	}
	for _, n := range st.Nodes {
		if n.Name == node {
			raw, ok := n.Features[featureName]
			return ok && json.Unmarshal(raw, v) == nil
		}
	}
	return false
}

// Exec implements feature.Lab: argv inside a node, with the given
// streams; it returns the exit status (128+N for a signal, as a shell).
func (l *Lab) Exec(ctx context.Context, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no command given")
	}
	n, err := l.opts.deployedNode(l.name, node)
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
	if _, err := l.opts.readState(l.name); errors.Is(err, fs.ErrNotExist) {
		return nil, &NotDeployedError{Name: l.name}
	}
	return nil, fmt.Errorf("lab %s: %s needs its topology file, and the one it was deployed from is gone: give it with -t FILE", l.name, what)
}
