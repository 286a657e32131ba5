// Package netem is the link impairment feature, the first feature written
// on the engine's seam: a link's impair: (both directions, or per end) or
// an interface's puts delay, jitter, loss, corruption, duplication,
// reordering and a rate limit on the interface's egress — netem, or tbf
// for a rate alone (which the host kernel has where it lacks netem).
// erlab link impair changes them on a live lab; inspect reads them back
// from the kernel's qdiscs.
package netem

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/erlab-dev/erlab/lab/topo"
)

// Name is the feature's name.
const Name = "netem"

// ParamsSpec is an impairment as written: durations (20ms), percentages
// (0.5%) and a rate with tc's units (100mbit; bit, kbit, mbit, gbit, or bps,
// kbps, mbps, gbps for bytes per second).
type ParamsSpec struct {
	Pos       topo.Pos
	Delay     string `yaml:"delay"`
	Jitter    string `yaml:"jitter"`
	Loss      string `yaml:"loss"`
	Corrupt   string `yaml:"corrupt"`
	Duplicate string `yaml:"duplicate"`
	Reorder   string `yaml:"reorder"`
	Rate      string `yaml:"rate"`
}

func (s *ParamsSpec) empty() bool { return *s == ParamsSpec{Pos: s.Pos} }

// LinkSpec is a link's impair: as written: the same both ways, or a: and
// b:, one per end (each end's egress), when the two directions differ.
type LinkSpec struct {
	Pos       topo.Pos
	Delay     string      `yaml:"delay"`
	Jitter    string      `yaml:"jitter"`
	Loss      string      `yaml:"loss"`
	Corrupt   string      `yaml:"corrupt"`
	Duplicate string      `yaml:"duplicate"`
	Reorder   string      `yaml:"reorder"`
	Rate      string      `yaml:"rate"`
	A         *ParamsSpec `yaml:"a"`
	B         *ParamsSpec `yaml:"b"`
}

// both is the part of a link's impair: that is the same both ways.
func (s *LinkSpec) both() ParamsSpec {
	return ParamsSpec{Pos: s.Pos, Delay: s.Delay, Jitter: s.Jitter, Loss: s.Loss, Corrupt: s.Corrupt, Duplicate: s.Duplicate, Reorder: s.Reorder, Rate: s.Rate}
}

// Params is a validated impairment of one interface's egress.
type Params struct {
	Delay     time.Duration `json:"delay_ns,omitempty"`
	Jitter    time.Duration `json:"jitter_ns,omitempty"`
	Loss      float64       `json:"loss_pct,omitempty"`
	Corrupt   float64       `json:"corrupt_pct,omitempty"`
	Duplicate float64       `json:"duplicate_pct,omitempty"`
	Reorder   float64       `json:"reorder_pct,omitempty"`
	Rate      uint64        `json:"rate_bps,omitempty"` // bits per second
}

// RateOnly says the impairment is a rate limit alone: tbf does it.
func (p Params) RateOnly() bool { return p.Rate > 0 && p == Params{Rate: p.Rate} }

// Zero says there is no impairment.
func (p Params) Zero() bool { return p == Params{} }

func (p Params) String() string {
	var b []string
	if p.Delay > 0 {
		b = append(b, "delay "+p.Delay.String())
	}
	if p.Jitter > 0 {
		b = append(b, "jitter "+p.Jitter.String())
	}
	for _, x := range []struct {
		name string
		v    float64
	}{{"loss", p.Loss}, {"corrupt", p.Corrupt}, {"duplicate", p.Duplicate}, {"reorder", p.Reorder}} {
		if x.v > 0 {
			b = append(b, fmt.Sprintf("%s %s%%", x.name, strconv.FormatFloat(x.v, 'f', -1, 64)))
		}
	}
	if p.Rate > 0 {
		b = append(b, "rate "+FormatRate(p.Rate))
	}
	if len(b) == 0 {
		return "none"
	}
	return strings.Join(b, " ")
}

// FormatRate writes a rate in bits per second as tc does: 100mbit.
func FormatRate(bps uint64) string {
	for _, u := range []struct {
		name string
		n    uint64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if bps >= u.n && bps%u.n == 0 {
			return fmt.Sprintf("%d%s", bps/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dbit", bps)
}

// Of returns an interface's impairment, nil when it has none.
func Of(i *topo.Interface) *Params { p, _ := i.Ext[Name].(*Params); return p }

// Feature is the link impairment feature.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// Keys implements topo.KeysHook: impair: on a link, and on an interface.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeLink, Name: "impair", Spec: (*LinkSpec)(nil)},
		{Scope: topo.ScopeInterface, Name: "impair", Spec: (*ParamsSpec)(nil)},
	}
}

// CheckNode implements topo.NodeHook: each of the node's link ends gets its
// link's impairment (its end's, with a: and b:), and any interface its own,
// which wins.
func (Feature) CheckNode(t *topo.Topology, n *topo.Node, r topo.Reporter) {
	for _, l := range t.LinksOf(n.Name) {
		spec, _, ok := topo.SpecOf[*LinkSpec](l.Specs, "impair")
		if !ok || spec == nil {
			continue
		}
		where := fmt.Sprintf("links[%d]: impair", l.Index)
		perEnd := spec.A != nil || spec.B != nil
		both := spec.both()
		if perEnd && !both.empty() {
			if l.A.Node == n.Name { // said once, by the first end's node
				r.Errorf(spec.Pos, "%s: give the impairment of both directions (delay:, loss:, ...) or one per end (a:, b:), not both", where)
			}
			continue
		}
		for k, ep := range l.Ends() {
			if ep.Node != n.Name {
				continue
			}
			ps, w := &both, where
			if perEnd {
				ps, w = []*ParamsSpec{spec.A, spec.B}[k], where+": "+[]string{"a", "b"}[k]
				if ps == nil {
					continue
				}
			}
			// Both ends read the same spec; the first end reports. An
			// interface's own impair: (CheckInterface, earlier) wins.
			p, ok := Parse(*ps, w, r, k == 0 || perEnd)
			if i := n.Interface(ep.Iface); ok && !p.Zero() && Of(i) == nil {
				i.Ext[Name] = &p
			}
		}
	}
}

// CheckInterface implements topo.InterfaceHook: an interface's own
// impair:, which wins over its link's.
func (Feature) CheckInterface(n *topo.Node, i *topo.Interface, r topo.Reporter) {
	spec, _, ok := topo.SpecOf[*ParamsSpec](i.Specs, "impair")
	if !ok || spec == nil {
		return
	}
	if i.Type == topo.TypeLoopback {
		r.Errorf(spec.Pos, "node %q: interface %q: impair: the loopback carries no link", n.Name, i.Name)
		return
	}
	if p, ok := Parse(*spec, fmt.Sprintf("node %q: interface %q: impair", n.Name, i.Name), r, true); ok && !p.Zero() {
		i.Ext[Name] = &p
	}
}

// Parse validates an impairment. report says whether to report its
// problems (a link's impairment is read twice, once per end).
func Parse(s ParamsSpec, where string, r topo.Reporter, report bool) (Params, bool) {
	var p Params
	ok := true
	fail := func(format string, args ...any) {
		ok = false
		if report {
			r.Errorf(s.Pos, "%s: "+format, append([]any{where}, args...)...)
		}
	}
	for _, d := range []struct {
		name, text string
		dst        *time.Duration
	}{{"delay", s.Delay, &p.Delay}, {"jitter", s.Jitter, &p.Jitter}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v < 0 || v > time.Minute {
			fail("%s %q: a duration from 0 to 1m, such as 20ms", d.name, d.text)
			continue
		}
		*d.dst = v
	}
	for _, x := range []struct {
		name, text string
		dst        *float64
	}{{"loss", s.Loss, &p.Loss}, {"corrupt", s.Corrupt, &p.Corrupt}, {"duplicate", s.Duplicate, &p.Duplicate}, {"reorder", s.Reorder, &p.Reorder}} {
		if x.text == "" {
			continue
		}
		v, err := ParsePercent(x.text)
		if err != nil {
			fail("%s %q: %v", x.name, x.text, err)
			continue
		}
		*x.dst = v
	}
	if s.Rate != "" {
		v, err := ParseRate(s.Rate)
		if err != nil {
			fail("rate %q: %v", s.Rate, err)
		} else {
			p.Rate = v
		}
	}
	if p.Jitter > 0 && p.Delay == 0 {
		fail("jitter %s needs a delay: netem varies the delay by it", p.Jitter)
	}
	if p.Reorder > 0 && p.Delay == 0 {
		fail("reorder %s%% needs a delay: netem reorders by sending some packets at once and delaying the rest", strconv.FormatFloat(p.Reorder, 'f', -1, 64))
	}
	return p, ok
}

// ParsePercent reads a percentage: 0.5%, or 0.5; from 0 to 100.
func ParsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || v < 0 || v > 100 || math.IsNaN(v) {
		return 0, fmt.Errorf("a percentage from 0 to 100, such as 0.5%%")
	}
	return v, nil
}

// ParseRate reads a rate as tc writes it and returns bits per second:
// 100mbit, 1gbit, 64kbit, 500bit; kbps, mbps, gbps, bps are bytes per
// second, as in tc(8).
func ParseRate(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mul    float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8}, {"bit", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v <= 0 || v*u.mul < 8 || v*u.mul > 1e12 {
				break
			}
			return uint64(v * u.mul), nil
		}
	}
	return 0, fmt.Errorf("a rate such as 100mbit, 1gbit or 64kbit (bit, kbit, mbit, gbit; bps, kbps, mbps, gbps for bytes per second)")
}
