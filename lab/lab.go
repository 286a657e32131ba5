// Package lab is erlab's engine: it loads and validates topologies, probes
// the kernel, deploys labs as a plan of small steps with dependencies, and
// inspects, drives and destroys them. It names no feature and no kind: it
// iterates what is registered (builtin.go) through two seams, package
// feature for features and package nodes for node kinds. cmd/erlab is a
// thin shell over it.
package lab

import (
	"io"
	"log/slog"
	"os"
	"runtime"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// Status reports progress the way kind does: Start("Creating links") then
// End(true) or End(false). The CLI draws it; the library only calls it.
type Status = feature.Status

// Options carry what every lab operation shares.
type Options struct {
	// Log receives the library's logs; nothing is logged when nil.
	Log *slog.Logger
	// Status shows progress; none when nil.
	Status Status
	// Kinds is the node-kind registry; the built-in kinds when nil.
	Kinds *nodes.Registry
	// Features are the features topologies are read and labs deployed
	// with, in the order their hooks run; the built-in ones when nil.
	Features []feature.Feature
	// StateRoot is where lab directories live; DefaultStateRoot when empty.
	StateRoot string
	// Workers bounds how many steps run at once; 4 per CPU when zero
	// (steps wait on the kernel more than on the CPU).
	Workers int
	// Retain keeps what a failed deploy made, for debugging.
	Retain bool
	// GenerateKeys makes, when a topology is loaded, the key files it
	// names and that do not exist yet (topo.Options.GenerateKeys).
	GenerateKeys bool
	// Ops makes the kernel changes of a deploy; kernel.Real when nil. A
	// kernel.Recorder records them instead (tests without root).
	Ops kernel.Ops
}

func (o *Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Log
}

func (o *Options) kinds() *nodes.Registry {
	if o.Kinds == nil {
		o.Kinds = BuiltinKinds()
	}
	return o.Kinds
}

func (o *Options) features() []feature.Feature {
	if o.Features == nil {
		o.Features = BuiltinFeatures()
	}
	return o.Features
}

func (o *Options) ops() kernel.Ops {
	if o.Ops == nil {
		log := o.log()
		o.Ops = kernel.Real{Log: func(ns, cmd string) { log.Debug("kernel", "netns", ns, "do", cmd) }}
	}
	return o.Ops
}

// Registry returns the node kinds these options use.
func (o Options) Registry() *nodes.Registry { return o.kinds() }

func (o *Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return 4 * runtime.NumCPU()
}

type noStatus struct{}

func (noStatus) Start(string) {}
func (noStatus) End(bool)     {}

func (o *Options) status() Status {
	if o.Status == nil {
		return noStatus{}
	}
	return o.Status
}

// TopoOptions are the loader's options for these: the kinds, and the
// features as its extensions.
func (o Options) TopoOptions() topo.Options {
	var exts []topo.Extension
	for _, f := range o.features() {
		exts = append(exts, f)
	}
	return topo.Options{Kinds: o.kinds(), Extensions: exts, GenerateKeys: o.GenerateKeys}
}

// Load reads and validates a topology file with the registered kinds and
// features.
func Load(path string, opts Options) (*topo.Topology, error) {
	return topo.Load(path, opts.TopoOptions())
}

// hooks returns the registered features that implement hook H, in order.
func hooks[H any](o *Options) []H {
	var out []H
	for _, f := range o.features() {
		if h, ok := f.(H); ok {
			out = append(out, h)
		}
	}
	return out
}

// featureNamed returns the registered feature of that name.
func (o *Options) featureNamed(name string) feature.Feature {
	for _, f := range o.features() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// Expand reads a topology file and returns the plain topology erlab builds
// from it: every model key (expressroute:) written out as the nodes and
// links it stands for. The result is a topology file of its own.
func Expand(path string, opts Options) ([]byte, error) {
	if _, err := Load(path, opts); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return topo.Expand(data, path, opts.TopoOptions())
}
