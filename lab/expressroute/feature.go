package expressroute

import "github.com/erlab-dev/erlab/lab/topo"

// Name is the feature's name, and its key at the top of a topology file.
const Name = "expressroute"

// Feature is the ExpressRoute model.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// ExpandKey implements topo.ExpandHook.
func (Feature) ExpandKey() string { return Name }

// Expand implements topo.ExpandHook: the declaration is checked whole, and
// expanded only when it holds, so that one mistake is not reported again as
// the expansion's.
func (Feature) Expand(x *topo.Expansion) {
	var spec Spec
	r := &counting{Reporter: x.Reporter()}
	before := r.errs
	x.Decode(&spec)
	if r.errs > before {
		return
	}
	m, ok := resolve(&spec, r)
	if !ok {
		return
	}
	m.expand(x)
	x.Keep(m)
}

// modelOf is the declaration a topology was expanded from, nil when it has
// none (a plain topology, erlab expand's among them).
func modelOf(t *topo.Topology) *model {
	if t == nil {
		return nil
	}
	m, _ := t.Ext[Name].(*model)
	return m
}

// counting counts the errors reported through it.
type counting struct {
	topo.Reporter
	errs int
}

func (c *counting) Errorf(pos topo.Pos, format string, args ...any) {
	c.errs++
	c.Reporter.Errorf(pos, format, args...)
}
