// Package drill is erlab's failover drills: scenario files that run
// probe flows through a deployed lab while steps pull, blackhole, impair
// and restore links, measure each flow's outage, and check what the drill
// expects of it. A drill lives in the topology file, under a top-level
// drills: map, so that it is run again, in CI, and compared across runs.
//
// The package is a feature on the seam: its key and checks go through
// topo's hooks, and it runs against feature.Lab and what the other
// features export (netem's impairments, BGP's sessions); the engine names
// none of it.
package drill

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/netem"
	"github.com/erlab-dev/erlab/lab/probe"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Name is the feature's name, and its key at the top of a topology file.
const Name = "drills"

// Feature is the drills feature.
type Feature struct{}

// Name implements feature.Feature.
func (Feature) Name() string { return Name }

// Keys implements topo.KeysHook.
func (Feature) Keys() []topo.Key {
	return []topo.Key{{Scope: topo.ScopeFile, Name: Name, Spec: topo.Map[Spec](nil)}}
}

// Spec is a drill as written.
type Spec struct {
	Pos         topo.Pos
	Description string       `yaml:"description"`
	Flows       []FlowSpec   `yaml:"flows"`
	Steps       []StepSpec   `yaml:"steps"`
	Expect      []ExpectSpec `yaml:"expect"`
}

// FlowSpec is a probe flow as written: from a node to a node, NODE:IFACE
// or address (as erlab probe takes them), at rate packets per second;
// both adds the flow back.
type FlowSpec struct {
	Pos  topo.Pos
	From string `yaml:"from"`
	To   string `yaml:"to"`
	Rate *int   `yaml:"rate"`
	Both bool   `yaml:"both"`
}

// StepSpec is a step as written: after a pause, do an action, or wait
// for a condition (with a timeout); a step with only after lets time
// pass.
type StepSpec struct {
	Pos     topo.Pos
	After   string      `yaml:"after"`
	Wait    string      `yaml:"wait"`
	Timeout string      `yaml:"timeout"`
	Do      *ActionSpec `yaml:"do"`
}

// ActionSpec is one action as written; exactly one key is set.
type ActionSpec struct {
	Pos         topo.Pos
	LinkDown    string                     `yaml:"link-down"`
	LinkUp      string                     `yaml:"link-up"`
	Blackhole   string                     `yaml:"blackhole"`
	Restore     string                     `yaml:"restore"`
	Impair      topo.Map[netem.ParamsSpec] `yaml:"impair"`
	Clear       string                     `yaml:"clear"`
	Exec        *ExecSpec                  `yaml:"exec"`
	BGPReset    string                     `yaml:"bgp-reset"`
	BGPShutdown string                     `yaml:"bgp-shutdown"`
	BGPEnable   string                     `yaml:"bgp-enable"`
	Kill        string                     `yaml:"kill"`
}

// ExecSpec runs a command in a node through /bin/sh; a non-zero exit
// fails the drill.
type ExecSpec struct {
	Pos  topo.Pos
	Node string `yaml:"node"`
	Cmd  string `yaml:"cmd"`
}

// ExpectSpec is what a drill expects of one flow, as written.
type ExpectSpec struct {
	Pos       topo.Pos
	Flow      string `yaml:"flow"`
	MaxOutage string `yaml:"max-outage"`
	MaxLoss   string `yaml:"max-loss"`
	Lossless  bool   `yaml:"lossless"`
	Path      string `yaml:"path"`
	During    *int   `yaml:"during"`
}

// Drill is a resolved drill.
type Drill struct {
	Name        string
	Description string
	Flows       []Flow
	Steps       []Step
	Expect      []Expect
}

// Flow is one one-way stream of a drill. Label is FROM->TO as the drill
// names it in its expectations.
type Flow struct {
	Label string
	From  string
	To    string
	Rate  int
}

// The actions.
const (
	LinkDown  = "link-down"
	LinkUp    = "link-up"
	Blackhole = "blackhole"
	Restore   = "restore"
	Impair    = "impair"
	Clear     = "clear"
	Exec      = "exec"
	// BGP sessions of a router (NODE, or NODE:NEIGHBOUR-ADDRESS): a hard
	// reset; an administrative shutdown with its notification, which
	// holds them down; and their return.
	BGPReset    = "bgp-reset"
	BGPShutdown = "bgp-shutdown"
	BGPEnable   = "bgp-enable"
	// Kill kills a router's speaker (SIGKILL, as a crash): its supervisor
	// starts it again.
	Kill = "kill"
)

// Step is a resolved step.
type Step struct {
	Line    int
	After   time.Duration
	Wait    string // WaitConverged, or ""
	Timeout time.Duration
	Action  *Action
}

// WaitConverged waits until every BGP session of every router is
// Established.
const WaitConverged = "converged"

// DefaultWaitTimeout bounds a wait that names no timeout.
const DefaultWaitTimeout = time.Minute

// Action is a resolved action.
type Action struct {
	Kind   string
	At     topo.Endpoint // the interface it acts on (not for exec)
	Params netem.Params  // impair
	Node   string        // exec, kill and the bgp actions
	Cmd    string        // exec
	Peer   netip.Addr    // the bgp actions: one neighbour, or all when invalid
}

func (a *Action) String() string {
	switch a.Kind {
	case Exec:
		return fmt.Sprintf("exec %s: %s", a.Node, a.Cmd)
	case Impair:
		return fmt.Sprintf("impair %s", a.At)
	case Kill:
		return "kill " + a.Node + "'s speaker"
	case BGPReset, BGPShutdown, BGPEnable:
		if a.Peer.IsValid() {
			return a.Kind + " " + a.Node + ":" + a.Peer.String()
		}
		return a.Kind + " " + a.Node
	}
	return a.Kind + " " + a.At.String()
}

// Expect is a resolved expectation. A nil bound is not checked.
type Expect struct {
	Line      int
	Flow      string
	MaxOutage *time.Duration
	// MaxLoss is a count of packets, or (MaxLossPct) a share of those sent.
	MaxLoss    *int
	MaxLossPct *float64
	Lossless   bool
	// Path is the node (and interface, when given) the flow's packets
	// must be forwarded by: out of Path.Iface, or any when empty. During
	// is the step (1-based) whose effect the window covers, from its end
	// to the next step's end; 0 is the whole run.
	Path   *topo.Endpoint
	During int
}

// Of returns a topology's drills, in file order.
func Of(t *topo.Topology) []*Drill { d, _ := t.Ext[Name].([]*Drill); return d }

// DefaultRate is a flow's rate when it names none, in packets per second.
const DefaultRate = 1000

var drillName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// CheckTopology implements topo.TopologyHook: the drills, once the nodes
// and their interfaces are resolved, so that every name a drill uses is
// checked against them.
func (Feature) CheckTopology(t *topo.Topology, r topo.Reporter) {
	specs, _, ok := topo.SpecOf[topo.Map[Spec]](t.Specs, Name)
	if !ok {
		return
	}
	var out []*Drill
	for _, e := range specs {
		where := "drill " + strconv.Quote(e.Key)
		if !drillName.MatchString(e.Key) {
			r.Errorf(e.KeyPos, "%s: a drill's name is letters, digits and . _ - (it names the drill on the command line and in reports)", where)
		}
		if d := resolve(t, e.Key, e.Value, where, r); d != nil {
			out = append(out, d)
		}
	}
	t.Ext[Name] = out
}

func resolve(t *topo.Topology, name string, s Spec, where string, r topo.Reporter) *Drill {
	d := &Drill{Name: name, Description: s.Description}
	if len(s.Flows) == 0 {
		r.Errorf(s.Pos, "%s: no flows: a drill measures at least one (flows: [{from: NODE, to: NODE}])", where)
	}
	if len(s.Steps) == 0 {
		r.Errorf(s.Pos, "%s: no steps: a drill does at least one thing (steps: [{after: 2s, do: {link-down: NODE:IFACE}}])", where)
	}
	labels := map[string]bool{}
	written := map[string]bool{} // a flow with a problem: not reported again by its expectations
	for _, f := range s.Flows {
		written[f.From+"->"+f.To] = true
		fw := fmt.Sprintf("%s: flow %s->%s", where, f.From, f.To)
		if t.Node(f.From) == nil {
			r.Errorf(f.Pos, "%s: from: %v", fw, unknownNode(t, f.From))
			continue
		}
		if _, _, err := probe.Target(t, f.To); err != nil {
			r.Errorf(f.Pos, "%s: to: %v", fw, err)
			continue
		}
		rate := DefaultRate
		if f.Rate != nil {
			rate = *f.Rate
		}
		if err := (probe.Config{Rate: rate, Size: probe.HeaderSize, Duration: time.Second}).Check(); err != nil {
			r.Errorf(f.Pos, "%s: %v", fw, err)
			continue
		}
		flows := []Flow{{Label: f.From + "->" + f.To, From: f.From, To: f.To, Rate: rate}}
		if f.Both {
			back, err := (probe.Flow{From: f.From, To: f.To}).Reverse(t)
			if err != nil {
				r.Errorf(f.Pos, "%s: both: %v", fw, err)
				continue
			}
			flows = append(flows, Flow{Label: back.From + "->" + back.To, From: back.From, To: back.To, Rate: rate})
		}
		for _, fl := range flows {
			if labels[fl.Label] {
				r.Errorf(f.Pos, "%s: flow %s is given twice", where, fl.Label)
				continue
			}
			labels[fl.Label] = true
			d.Flows = append(d.Flows, fl)
		}
	}
	for i, s := range s.Steps {
		if st, ok := resolveStep(t, s, fmt.Sprintf("%s: step %d", where, i+1), r); ok {
			d.Steps = append(d.Steps, st)
		}
	}
	for _, e := range s.Expect {
		if written[e.Flow] && !labels[e.Flow] {
			continue
		}
		if ex, ok := resolveExpect(t, e, d, where, r); ok {
			d.Expect = append(d.Expect, ex)
		}
	}
	if len(s.Expect) == 0 {
		r.Errorf(s.Pos, "%s: no expectations: a drill that checks nothing cannot fail, so it cannot pass either (expect: [{flow: FROM->TO, max-outage: 1s}])", where)
	}
	return d
}

func resolveStep(t *topo.Topology, s StepSpec, where string, r topo.Reporter) (Step, bool) {
	st := Step{Line: s.Pos.Line}
	ok := true
	if s.After != "" {
		d, err := time.ParseDuration(s.After)
		if err != nil || d < 0 {
			r.Errorf(s.Pos, "%s: after: %q is not a duration (2s, 500ms)", where, s.After)
			ok = false
		}
		st.After = d
	}
	switch {
	case s.Wait != "" && s.Do != nil:
		r.Errorf(s.Pos, "%s: a step either waits or does: split wait and do into two steps", where)
		return st, false
	case s.Wait != "":
		if s.Wait != WaitConverged {
			r.Errorf(s.Pos, "%s: wait: %q is no condition; there is %q (every BGP session Established)", where, s.Wait, WaitConverged)
			return st, false
		}
		if !hasRouters(t) {
			r.Errorf(s.Pos, "%s: wait: converged: the lab has no BGP router, so there is nothing to converge", where)
			return st, false
		}
		st.Wait, st.Timeout = s.Wait, DefaultWaitTimeout
		if s.Timeout != "" {
			d, err := time.ParseDuration(s.Timeout)
			if err != nil || d <= 0 {
				r.Errorf(s.Pos, "%s: timeout: %q is not a duration (60s)", where, s.Timeout)
				return st, false
			}
			st.Timeout = d
		}
	case s.Timeout != "":
		r.Errorf(s.Pos, "%s: timeout: only a wait has one", where)
		return st, false
	case s.Do != nil:
		a, aok := resolveAction(t, *s.Do, where, r)
		st.Action, ok = a, ok && aok
	case s.After == "":
		r.Errorf(s.Pos, "%s: empty: give after:, do: or wait:", where)
		return st, false
	}
	return st, ok
}

func hasRouters(t *topo.Topology) bool {
	for _, n := range t.Nodes {
		if bgp.Of(n) != nil {
			return true
		}
	}
	return false
}

func resolveAction(t *topo.Topology, s ActionSpec, where string, r topo.Reporter) (*Action, bool) {
	type kv struct{ kind, at string }
	var set []kv
	for _, c := range []kv{{LinkDown, s.LinkDown}, {LinkUp, s.LinkUp}, {Blackhole, s.Blackhole}, {Restore, s.Restore}, {Clear, s.Clear}} {
		if c.at != "" {
			set = append(set, c)
		}
	}
	// impair: {NODE:IFACE: {delay: ..., loss: ...}}: netem's own keys
	// under the interface they act on.
	for _, e := range s.Impair {
		set = append(set, kv{Impair, e.Key})
	}
	if s.Exec != nil {
		set = append(set, kv{Exec, ""})
	}
	for _, c := range []kv{{BGPReset, s.BGPReset}, {BGPShutdown, s.BGPShutdown}, {BGPEnable, s.BGPEnable}, {Kill, s.Kill}} {
		if c.at != "" {
			set = append(set, c)
		}
	}
	if len(set) != 1 {
		r.Errorf(s.Pos, "%s: do: give exactly one action (link-down, link-up, blackhole, restore, impair, clear, exec, bgp-reset, bgp-shutdown, bgp-enable or kill), not %d", where, len(set))
		return nil, false
	}
	a := &Action{Kind: set[0].kind}
	where += ": " + a.Kind
	switch a.Kind {
	case Kill, BGPReset, BGPShutdown, BGPEnable:
		return routerAction(t, a, set[0].at, where, s.Pos, r)
	}
	if a.Kind == Exec {
		if t.Node(s.Exec.Node) == nil {
			r.Errorf(s.Exec.Pos, "%s: node: %v", where, unknownNode(t, s.Exec.Node))
			return nil, false
		}
		if strings.TrimSpace(s.Exec.Cmd) == "" {
			r.Errorf(s.Exec.Pos, "%s: cmd: empty", where)
			return nil, false
		}
		a.Node, a.Cmd = s.Exec.Node, s.Exec.Cmd
		return a, true
	}
	ep, ok := linkEnd(t, set[0].at, where, s.Pos, r)
	if !ok {
		return nil, false
	}
	a.At = ep
	if a.Kind == Impair {
		params, ok := netem.Parse(s.Impair[0].Value, where, r, true)
		if !ok {
			return nil, false
		}
		a.Params = params
	}
	return a, true
}

// routerAction resolves the router (and neighbour) a BGP action names.
func routerAction(t *topo.Topology, a *Action, at, where string, pos topo.Pos, r topo.Reporter) (*Action, bool) {
	node, peer, hasPeer := strings.Cut(at, ":")
	n := t.Node(node)
	if n == nil {
		r.Errorf(pos, "%s: %v", where, unknownNode(t, node))
		return nil, false
	}
	c := bgp.Of(n)
	if c == nil {
		r.Errorf(pos, "%s: node %s runs no BGP (it has no bgp: block)", where, node)
		return nil, false
	}
	a.Node = node
	if !hasPeer {
		return a, true
	}
	if a.Kind == Kill {
		r.Errorf(pos, "%s: %q: kill takes a router's name; it kills its speaker, and so all its sessions", where, at)
		return nil, false
	}
	var addrs []string
	for _, nb := range c.Neighbors {
		addrs = append(addrs, nb.Address.String())
		if p, err := netip.ParseAddr(peer); err == nil && p == nb.Address {
			a.Peer = p
		}
	}
	if !a.Peer.IsValid() {
		r.Errorf(pos, "%s: %s is no neighbour of %s (its neighbours: %s)", where, peer, node, strings.Join(addrs, ", "))
		return nil, false
	}
	return a, true
}

// linkEnd resolves NODE:IFACE to a link's end: what link-down, blackhole
// and impair act on.
func linkEnd(t *topo.Topology, s, where string, pos topo.Pos, r topo.Reporter) (topo.Endpoint, bool) {
	node, iface, ok := strings.Cut(s, ":")
	if !ok || node == "" || iface == "" {
		r.Errorf(pos, "%s: %q: give NODE:IFACE, an end of a link", where, s)
		return topo.Endpoint{}, false
	}
	n := t.Node(node)
	if n == nil {
		r.Errorf(pos, "%s: %v", where, unknownNode(t, node))
		return topo.Endpoint{}, false
	}
	i := n.Interface(iface)
	if i == nil || i.Type != topo.TypeVeth {
		var ends []string
		for _, i := range n.Interfaces {
			if i.Type == topo.TypeVeth {
				ends = append(ends, i.Name)
			}
		}
		hint := ""
		if c := topo.Closest(iface, ends); c != "" {
			hint = fmt.Sprintf("; did you mean %s:%s?", node, c)
		}
		r.Errorf(pos, "%s: %s is no link end of node %s (its link ends: %s)%s", where, s, node, strings.Join(ends, ", "), hint)
		return topo.Endpoint{}, false
	}
	return topo.Endpoint{Node: node, Iface: iface}, true
}

func resolveExpect(t *topo.Topology, e ExpectSpec, d *Drill, where string, r topo.Reporter) (Expect, bool) {
	ex := Expect{Line: e.Pos.Line, Flow: e.Flow, Lossless: e.Lossless}
	var labels []string
	found := false
	for _, f := range d.Flows {
		labels = append(labels, f.Label)
		found = found || f.Label == e.Flow
	}
	where += ": expect " + e.Flow
	if !found {
		hint := ""
		if c := topo.Closest(e.Flow, labels); c != "" {
			hint = "; did you mean " + c + "?"
		}
		r.Errorf(e.Pos, "%s: no such flow (the drill's flows: %s)%s", where, strings.Join(labels, ", "), hint)
		return ex, false
	}
	ok := true
	if e.MaxOutage != "" {
		v, err := time.ParseDuration(e.MaxOutage)
		if err != nil || v < 0 {
			r.Errorf(e.Pos, "%s: max-outage: %q is not a duration (1s, 300ms)", where, e.MaxOutage)
			ok = false
		}
		ex.MaxOutage = &v
	}
	if e.MaxLoss != "" {
		if pct, isPct := strings.CutSuffix(e.MaxLoss, "%"); isPct {
			v, err := strconv.ParseFloat(pct, 64)
			if err != nil || v < 0 || v > 100 {
				r.Errorf(e.Pos, "%s: max-loss: %q is not a share (0.5%%)", where, e.MaxLoss)
				ok = false
			}
			ex.MaxLossPct = &v
		} else {
			v, err := strconv.Atoi(e.MaxLoss)
			if err != nil || v < 0 {
				r.Errorf(e.Pos, "%s: max-loss: %q is neither a packet count (10) nor a share (0.5%%)", where, e.MaxLoss)
				ok = false
			}
			ex.MaxLoss = &v
		}
	}
	if e.Path != "" {
		node, iface, _ := strings.Cut(e.Path, ":")
		n := t.Node(node)
		switch {
		case n == nil:
			r.Errorf(e.Pos, "%s: path: %v", where, unknownNode(t, node))
			ok = false
		case iface != "" && n.Interface(iface) == nil:
			var names []string
			for _, i := range n.Interfaces {
				names = append(names, i.Name)
			}
			r.Errorf(e.Pos, "%s: path: node %s has no interface %q (it has: %s)", where, node, iface, strings.Join(names, ", "))
			ok = false
		default:
			ex.Path = &topo.Endpoint{Node: node, Iface: iface}
		}
	}
	if e.During != nil {
		switch {
		case e.Path == "":
			r.Errorf(e.Pos, "%s: during: only a path is checked during a step", where)
			ok = false
		case *e.During < 1 || *e.During > len(d.Steps):
			r.Errorf(e.Pos, "%s: during: %d: the drill's steps are 1 to %d", where, *e.During, len(d.Steps))
			ok = false
		default:
			ex.During = *e.During
		}
	}
	if ex.MaxOutage == nil && ex.MaxLoss == nil && ex.MaxLossPct == nil && !ex.Lossless && e.Path == "" {
		r.Errorf(e.Pos, "%s: expects nothing: give max-outage, max-loss, lossless: true or path", where)
		ok = false
	}
	return ex, ok
}

func unknownNode(t *topo.Topology, name string) error {
	names := make([]string, len(t.Nodes))
	for i, n := range t.Nodes {
		names[i] = n.Name
	}
	return &topo.UnknownError{Lab: t.Name, What: "node", Name: name, Known: names}
}
