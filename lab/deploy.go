package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// AlreadyDeployedError refuses a second deploy of a lab name.
type AlreadyDeployedError struct {
	Name string
	File string
}

func (e *AlreadyDeployedError) Error() string {
	from := ""
	if e.File != "" {
		from = " from " + e.File
	}
	return fmt.Sprintf("lab %q is already deployed%s; destroy it first (erlab destroy --name %s) or rename this lab", e.Name, from, e.Name)
}

// deployment is one deploy in progress: the topology, and a runtime node per
// topology node. It is what features' steps see (feature.Deployment).
type deployment struct {
	t     *topo.Topology
	opts  *Options
	dir   string
	nodes map[string]*nodes.Node
	// only, when set, is the nodes a start of stopped nodes deploys
	// again: the plan keeps their steps, and their links' steps bring
	// back the ends parked at stop. stopped is the lab's other nodes that
	// are stopped, whose links stay down.
	only, stopped map[string]bool

	// fresh is what the base sysctls are in a namespace just made, read
	// once in the first: every namespace erlab makes starts alike, and a
	// sysctl write costs a /proc lookup in the new namespace, the largest
	// part of a big lab's deploy. Only what differs is written.
	freshOnce sync.Once
	fresh     map[string]string
}

var _ feature.Deployment = (*deployment)(nil)

func (d *deployment) Lab() string                  { return d.t.Name }
func (d *deployment) Topology() *topo.Topology     { return d.t }
func (d *deployment) Node(name string) *nodes.Node { return d.nodes[name] }
func (d *deployment) Dir() string                  { return d.dir }
func (d *deployment) Log() *slog.Logger            { return d.opts.log().With("lab", d.t.Name) }
func (d *deployment) Retained() bool               { return d.opts.Retain }

// dry says whether the deploy only records what it would do (Options.Ops
// is not the real kernel): then nothing is probed, checked or rolled back.
func (o *Options) dry() bool { _, real := o.ops().(kernel.Real); return !real }

// Deploy builds the lab described by t on this host (see Lab.Deploy).
func Deploy(ctx context.Context, t *topo.Topology, opts Options) error {
	return FromTopology(t, opts).Deploy(ctx)
}

// Deploy builds the lab on this host. It checks the kernel first and
// touches nothing when a feature is missing; a deploy that fails half-way
// removes what it made (unless Options.Retain).
func (l *Lab) Deploy(ctx context.Context) (err error) {
	defer l.forget() // it writes the state
	t, err := l.needTopology("deploy")
	if err != nil {
		return err
	}
	opts := &l.opts
	log := l.Log()
	if !opts.dry() {
		if names, _ := kernel.NetNSList(labNetNSPrefix(t.Name)); len(names) > 0 {
			file := ""
			if s, err := opts.readState(t.Name); err == nil {
				file = s.File
			}
			return &AlreadyDeployedError{Name: t.Name, File: file}
		}
		if _, err := os.Stat(opts.labDir(t.Name)); err == nil {
			return &AlreadyDeployedError{Name: t.Name}
		}
	}
	st := opts.status()
	if !opts.dry() {
		st.Start("Checking kernel features")
		if err := CheckKernel(t, *opts); err != nil {
			st.End(false)
			return err
		}
		st.End(true)
	}

	// The nodes' steps share a few netlink handles (see kernel.Handles),
	// all closed when the plan has run, before any rollback.
	ops := opts.ops()
	var handles *kernel.Handles
	if r, ok := ops.(kernel.Real); ok && r.Handles == nil {
		handles = &kernel.Handles{Max: 2 * opts.workers()}
		r.Handles, ops = handles, r
	}
	d := &deployment{t: t, opts: opts, dir: opts.labDir(t.Name), nodes: map[string]*nodes.Node{}}
	for _, n := range t.Nodes {
		d.nodes[n.Name] = &nodes.Node{Lab: t.Name, Spec: n, NetNS: NetNSName(t.Name, n.Name), Dir: filepath.Join(d.dir, "nodes", n.Name),
			Log: log.With("node", n.Name), Ops: ops}
	}
	p, err := d.plan()
	if err != nil {
		return err
	}
	// The state goes down first, so that destroy finds the lab by its
	// directory even if this process dies before making any namespace.
	state, err := opts.stateFromTopology(t, "deploying")
	if err != nil {
		return err
	}
	if err := opts.writeState(state); err != nil {
		return err
	}
	defer func() {
		if err == nil || opts.Retain || opts.dry() {
			return
		}
		log.Info("deploy failed; removing what it made", "err", err)
		st.Start("Removing the half-built lab")
		_, derr := l.destroy(context.WithoutCancel(ctx), false)
		st.End(derr == nil)
		if derr != nil {
			err = errors.Join(err, fmt.Errorf("remove half-built lab: %w", derr))
		}
	}()

	started := time.Now()
	err = p.Run(ctx, opts.workers(), st)
	if handles != nil {
		handles.Close()
	}
	if err != nil {
		return err
	}
	state.Status = "deployed"
	if err := opts.writeState(state); err != nil {
		return err
	}
	log.Info("lab deployed", "nodes", len(t.Nodes), "links", len(t.Links), "elapsed", time.Since(started))
	return nil
}

// plan lays out the deploy: the engine's steps for each node and link,
// each kind's, and each feature's, tied by what each waits for.
func (d *deployment) plan() (*feature.Plan, error) {
	var p feature.Plan
	kinds := d.opts.kinds()
	nsGroup := fmt.Sprintf("Creating namespaces (%d)", len(d.t.Nodes))
	if d.only != nil {
		nsGroup = fmt.Sprintf("Creating namespaces (%d)", len(d.only))
	}
	linkGroup := fmt.Sprintf("Creating links (%d)", len(d.t.Links)+len(d.t.HostLinks))
	const (
		devGroup    = "Creating node devices"
		wireGroup   = "Wiring bridges"
		confGroup   = "Configuring interfaces, addresses and routes"
		upGroup     = "Waiting for links to come up"
		execGroup   = "Running exec commands"
		startsGroup = "Starting node processes"
	)
	linksOf := map[string][]string{}
	if d.only != nil {
		linkGroup = "Bringing back parked links"
	}
	for i, l := range d.t.Links {
		step := feature.Step{ID: feature.LinkStep(i), Group: linkGroup,
			After: []string{feature.NamespaceStep(l.A.Node), feature.NamespaceStep(l.B.Node)},
			Run:   func(context.Context) error { return d.makeLink(l, i) }}
		if d.only != nil {
			if !d.only[l.A.Node] && !d.only[l.B.Node] {
				continue
			}
			step.Run = func(context.Context) error { return d.unpark(l) }
		}
		p.Add(step)
		for _, ep := range l.Ends() {
			linksOf[ep.Node] = append(linksOf[ep.Node], feature.LinkStep(i))
		}
	}
	// A host link's far end goes with its node's namespace: it is made
	// again when the node starts.
	for _, hl := range d.t.HostLinks {
		name := hl.End.Node
		if d.only != nil && !d.only[name] {
			continue
		}
		id := fmt.Sprintf("hostlink/%d", hl.Index)
		p.Add(feature.Step{ID: id, Group: linkGroup, Node: name, After: []string{feature.NamespaceStep(name)},
			Run: func(context.Context) error { return d.makeHostLink(hl) }})
		linksOf[name] = append(linksOf[name], id)
	}
	for _, spec := range d.t.Nodes {
		name := spec.Name
		if d.only != nil && !d.only[name] {
			continue
		}
		rn := d.nodes[name]
		kind, _ := kinds.Get(spec.Kind)
		p.Add(feature.Step{ID: feature.NamespaceStep(name), Group: nsGroup, Node: name,
			Run: func(ctx context.Context) error { return d.makeNamespace(ctx, rn, kind) }})
		dev := feature.Step{ID: feature.DevicesStep(name), Node: name, After: []string{feature.NamespaceStep(name)}}
		if c, ok := kind.(nodes.Creator); ok {
			dev.Group, dev.Run = devGroup, func(ctx context.Context) error { return c.Create(ctx, rn) }
		}
		wired := feature.Step{ID: feature.WiredStep(name), Node: name, After: append([]string{feature.DevicesStep(name)}, linksOf[name]...)}
		if w, ok := kind.(nodes.Wirer); ok {
			wired.Group, wired.Run = wireGroup, func(ctx context.Context) error { return w.Wire(ctx, rn) }
		}
		p.Add(dev, wired,
			feature.Step{ID: feature.InterfacesStep(name), Group: confGroup, Node: name, After: []string{feature.WiredStep(name)},
				Run: func(ctx context.Context) error { return d.configureInterfaces(ctx, rn) }},
			feature.Step{ID: feature.RoutesStep(name), Group: confGroup, Node: name, After: []string{feature.InterfacesStep(name)},
				Run: func(ctx context.Context) error { return d.addRoutes(rn) }},
		)
		// Up once this node's and the far ends' interfaces are: carrier
		// needs both ends of a veth up.
		up := feature.Step{ID: feature.UpStep(name), Group: upGroup, Node: name, After: []string{feature.RoutesStep(name)},
			Run: func(ctx context.Context) error { return d.waitUp(ctx, rn) }}
		for _, l := range d.t.LinksOf(name) {
			for _, ep := range l.Ends() {
				if ep.Node == name {
					up.After = append(up.After, feature.InterfacesStep(l.Other(ep).Node))
				}
			}
		}
		up.After = slices.Compact(slices.Sorted(slices.Values(up.After)))
		p.Add(up)
		exec := feature.Step{ID: feature.ExecStep(name), Node: name, After: []string{feature.UpStep(name)}}
		if len(spec.Exec) > 0 {
			exec.Group, exec.Run = execGroup, func(ctx context.Context) error { return d.runExec(ctx, rn) }
		}
		p.Add(exec)
		if s, ok := kind.(nodes.Starter); ok {
			p.Add(feature.Step{ID: "start/" + name, Group: startsGroup, Node: name, After: []string{feature.ExecStep(name)},
				Run: func(ctx context.Context) error { return s.Start(ctx, rn) }})
		}
	}
	var featureSteps []feature.Step
	for _, h := range hooks[feature.StepsHook](d.opts) {
		for _, s := range h.Steps(d) {
			if d.only == nil || d.only[s.Node] {
				featureSteps = append(featureSteps, s)
			}
		}
	}
	p.Add(featureSteps...)
	// A node's exec commands run once everything else of the node is in
	// place (what a feature runs after them says so: After its ExecStep).
	barrier := map[string][]string{}
	for _, s := range featureSteps {
		if s.Node != "" && !slices.Contains(s.After, feature.ExecStep(s.Node)) {
			barrier[s.Node] = append(barrier[s.Node], s.ID)
		}
	}
	// In the nodes' order, so that the plan is the same every time (its
	// golden files are; a map's order is not).
	for _, node := range slices.Sorted(maps.Keys(barrier)) {
		p.Add(feature.Step{ID: "ready/" + node, Node: node, After: barrier[node], Before: []string{feature.ExecStep(node)}})
	}
	if d.only != nil {
		p.Prune()
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return &p, nil
}
