// Package lab is erlab's engine: it loads and validates topologies, probes
// the kernel, deploys labs as phases of small concurrent steps, and
// inspects, drives and destroys them. cmd/erlab is a thin shell over it.
package lab

import (
	"io"
	"log/slog"
	"runtime"

	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// Status reports progress the way kind does: Start("Creating links") then
// End(true) or End(false). The CLI draws it; the library only calls it.
type Status interface {
	Start(msg string)
	End(ok bool)
}

// Options carry what every lab operation shares.
type Options struct {
	// Log receives the library's logs; nothing is logged when nil.
	Log *slog.Logger
	// Status shows progress; none when nil.
	Status Status
	// Kinds is the node-kind registry; nodes.Builtin() when nil.
	Kinds *nodes.Registry
	// StateRoot is where lab directories live; DefaultStateRoot when empty.
	StateRoot string
	// Workers bounds how many steps run at once; 4 per CPU when zero
	// (steps wait on the kernel more than on the CPU).
	Workers int
	// Retain keeps what a failed deploy made, for debugging.
	Retain bool
}

func (o *Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Log
}

func (o *Options) kinds() *nodes.Registry {
	if o.Kinds == nil {
		o.Kinds = nodes.Builtin()
	}
	return o.Kinds
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

// Load reads and validates a topology file with the registry's kinds.
func Load(path string, opts Options) (*topo.Topology, error) {
	return topo.Load(path, topo.Options{Kinds: opts.kinds()})
}
