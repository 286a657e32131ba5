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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/netem"
	"github.com/erlab-dev/erlab/lab/probe"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Name is the feature's name, and its key at the top of a topology file.
const Name = "drills"

// Feature is the drills feature. It knows the other features' drill
// actions (feature.ActionHook) and encryption targets
// (feature.EncryptionHook), from New.
type Feature struct {
	actions map[string]feature.ActionHook // by key, as a step's do: names it
	enc     []feature.EncryptionHook
}

// New returns the drills feature, with the actions and encryption checks
// of fs (the features registered before it).
func New(fs []feature.Feature) Feature {
	f := Feature{actions: map[string]feature.ActionHook{}}
	for _, x := range fs {
		if h, ok := x.(feature.ActionHook); ok {
			if kh, ok := x.(topo.KeysHook); ok {
				for _, k := range kh.Keys() {
					if k.Scope == topo.ScopeAction {
						f.actions[k.Name] = h
					}
				}
			}
		}
		if h, ok := x.(feature.EncryptionHook); ok {
			f.enc = append(f.enc, h)
		}
	}
	return f
}

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
	// wait: established, of one router's sessions (NODE) or one
	// (NODE:NEIGHBOUR-ADDRESS).
	Session string `yaml:"session"`
	// wait: route, in one node's kernel: a route to exactly Prefix, out of
	// Dev when given.
	Node   string `yaml:"node"`
	Prefix string `yaml:"prefix"`
	Dev    string `yaml:"dev"`
	// Gone waits for the route to be withdrawn instead.
	Gone bool `yaml:"gone"`
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
	AgentStop   string                     `yaml:"agent-stop"`
	AgentStart  string                     `yaml:"agent-start"`
	Stop        string                     `yaml:"stop"`
	Start       string                     `yaml:"start"`
	Crash       string                     `yaml:"crash"`
	// The other features' actions (a key rotation, a rekey), which
	// they declare, resolve and run (feature.ActionHook).
	Specs topo.Specs `yaml:"-" scope:"action"`
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
	MinOutage string `yaml:"min-outage"`
	MaxLoss   string `yaml:"max-loss"`
	Lossless  bool   `yaml:"lossless"`
	Path      string `yaml:"path"`
	During    *int   `yaml:"during"`
	// Point checks, of no flow, made when step At ends (the last step
	// when At is not given): verify encryption of a link end or tunnel,
	// and a BGP session's state.
	Encrypted *bool `yaml:"encrypted"`
	// NothingInClear: verify encryption's marked flow left no frame in
	// clear on the wire, whether or not it got across (a link that is
	// down must fail closed).
	NothingInClear bool   `yaml:"nothing-in-clear"`
	Link           string `yaml:"link"`
	Tunnel         string `yaml:"tunnel"`
	Session        string `yaml:"session"`
	State          string `yaml:"state"`
	At             *int   `yaml:"at"`
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
	// AgentStop stops a router's speaker the orderly way (Cease to every
	// peer, its routes out of the kernel) and holds it down; AgentStart
	// starts it again.
	AgentStop  = "agent-stop"
	AgentStart = "agent-start"
	// Stop stops a node of any kind as erlab stop does (its processes
	// end, its links are parked, the far ends lose carrier); Crash fails
	// it as erlab stop --kill does (a power loss: links dark first, then
	// every process killed); Start starts it again as erlab start does.
	Stop  = "stop"
	Start = "start"
	Crash = "crash"
)

// Step is a resolved step.
type Step struct {
	Line    int
	After   time.Duration
	Wait    string // WaitConverged, WaitEstablished, WaitRoute, or ""
	Timeout time.Duration
	Action  *Action
	Session Session   // WaitEstablished
	Route   RouteWait // WaitRoute
}

// The conditions a step waits for.
const (
	// WaitConverged waits until the routing has converged: every BGP
	// session of every router Established, every best path installed,
	// and nothing of it changed for a second.
	WaitConverged = "converged"
	// WaitEstablished waits until a router's sessions (or one) are
	// Established.
	WaitEstablished = "established"
	// WaitRoute waits until a node's kernel has a route to a prefix (out
	// of an interface, when given).
	WaitRoute = "route"
)

// Session is a router's BGP sessions: all of them, or the one with Peer.
type Session struct {
	Node string
	Peer netip.Addr
}

func (s Session) String() string {
	if s.Peer.IsValid() {
		return s.Node + ":" + s.Peer.String()
	}
	return s.Node
}

// RouteWait is a route a step waits for.
type RouteWait struct {
	Node   string
	Prefix netip.Prefix
	Dev    string
	Gone   bool // until there is no such route
}

func (r RouteWait) String() string {
	s := r.Node + ": " + r.Prefix.String()
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Gone {
		s += " gone"
	}
	return s
}

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
	// Another feature's action: its key, as written, and what its
	// CheckAction resolved.
	Hook    feature.ActionHook
	Written string
	Value   any
}

func (a *Action) String() string {
	switch a.Kind {
	case Exec:
		return fmt.Sprintf("exec %s: %s", a.Node, a.Cmd)
	case Impair:
		return fmt.Sprintf("impair %s", a.At)
	case Kill:
		return "kill " + a.Node + "'s speaker"
	case AgentStop, AgentStart, Stop, Start, Crash:
		return a.Kind + " " + a.Node
	}
	if a.Hook != nil {
		return a.Kind + " " + a.Written
	}
	switch a.Kind {
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
	// MinOutage is an outage the drill must cause (a key mismatch must
	// take the link down).
	MinOutage *time.Duration
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
	// A point check (Flow is empty): Encrypted, the verdict verify
	// encryption must give Target; or State, what Session must be. At is
	// the step (1-based) at whose end it is made.
	Encrypted      *bool
	NothingInClear bool
	Target         string
	Session        *Session
	State          string
	At             int
}

// Point says that the expectation is checked at a step's end, of no flow.
func (e Expect) Point() bool { return e.Encrypted != nil || e.NothingInClear || e.Session != nil }

// Of returns a topology's drills, in file order.
func Of(t *topo.Topology) []*Drill { d, _ := t.Ext[Name].([]*Drill); return d }

// DefaultRate is a flow's rate when it names none, in packets per second.
const DefaultRate = 1000

var drillName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// CheckTopology implements topo.TopologyHook: the drills, once the nodes
// and their interfaces are resolved, so that every name a drill uses is
// checked against them.
func (f Feature) CheckTopology(t *topo.Topology, r topo.Reporter) {
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
		if d := f.resolve(t, e.Key, e.Value, where, r); d != nil {
			out = append(out, d)
		}
	}
	t.Ext[Name] = out
}

func (fe Feature) resolve(t *topo.Topology, name string, s Spec, where string, r topo.Reporter) *Drill {
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
		if st, ok := fe.resolveStep(t, s, fmt.Sprintf("%s: step %d", where, i+1), r); ok {
			d.Steps = append(d.Steps, st)
			// A stopped node's namespace goes, and with it the sockets
			// of a flow that starts or ends there.
			if a := st.Action; a != nil && (a.Kind == Stop || a.Kind == Crash) {
				for _, fl := range d.Flows {
					if _, owner, _ := probe.Target(t, fl.To); fl.From == a.Node || owner == a.Node {
						r.Errorf(s.Pos, "%s: step %d: %s: flow %s starts or ends at %s, and a stopped node's namespace goes with the flow's sockets: stop a node the flows cross", where, i+1, a.Kind, fl.Label, a.Node)
						break
					}
				}
			}
		}
	}
	for _, e := range s.Expect {
		if e.Flow != "" && written[e.Flow] && !labels[e.Flow] {
			continue
		}
		if ex, ok := fe.resolveExpect(t, e, d, where, r); ok {
			d.Expect = append(d.Expect, ex)
		}
	}
	if len(s.Expect) == 0 {
		r.Errorf(s.Pos, "%s: no expectations: a drill that checks nothing cannot fail, so it cannot pass either (expect: [{flow: FROM->TO, max-outage: 1s}])", where)
	}
	return d
}

func (f Feature) resolveStep(t *topo.Topology, s StepSpec, where string, r topo.Reporter) (Step, bool) {
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
	if s.Wait == "" && (s.Session != "" || s.Node != "" || s.Prefix != "" || s.Dev != "" || s.Gone) {
		r.Errorf(s.Pos, "%s: session:, node:, prefix:, dev: and gone: are what a wait waits for: give wait: established or wait: route", where)
		return st, false
	}
	switch {
	case s.Wait != "" && s.Do != nil:
		r.Errorf(s.Pos, "%s: a step either waits or does: split wait and do into two steps", where)
		return st, false
	case s.Wait != "":
		if !f.resolveWait(t, s, &st, where, r) {
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
		a, aok := f.resolveAction(t, *s.Do, where, r)
		st.Action, ok = a, ok && aok
	case s.After == "":
		r.Errorf(s.Pos, "%s: empty: give after:, do: or wait:", where)
		return st, false
	}
	return st, ok
}

// resolveWait checks what a wait step waits for.
func (Feature) resolveWait(t *topo.Topology, s StepSpec, st *Step, where string, r topo.Reporter) bool {
	where += ": wait: " + s.Wait
	extra := func(keys ...string) bool {
		for _, k := range keys {
			if v := map[string]string{"session": s.Session, "node": s.Node, "prefix": s.Prefix, "dev": s.Dev, "gone": map[bool]string{true: "true"}[s.Gone]}[k]; v != "" {
				r.Errorf(s.Pos, "%s: %s: is not what this wait takes", where, k)
				return false
			}
		}
		return true
	}
	switch s.Wait {
	case WaitConverged:
		if !hasRouters(t) {
			r.Errorf(s.Pos, "%s: the lab has no BGP router, so there is nothing to converge", where)
			return false
		}
		return extra("session", "node", "prefix", "dev", "gone")
	case WaitEstablished:
		if s.Session == "" {
			r.Errorf(s.Pos, "%s: give session: NODE (all its sessions) or NODE:NEIGHBOUR-ADDRESS", where)
			return false
		}
		sess, ok := resolveSession(t, s.Session, where+": session", s.Pos, r)
		st.Session = sess
		return ok && extra("node", "prefix", "dev", "gone")
	case WaitRoute:
		n := t.Node(s.Node)
		switch {
		case s.Node == "" || s.Prefix == "":
			r.Errorf(s.Pos, "%s: give node: NODE and prefix: PREFIX (and dev: IFACE to wait for the route out of one interface)", where)
			return false
		case n == nil:
			r.Errorf(s.Pos, "%s: node: %v", where, unknownNode(t, s.Node))
			return false
		}
		p, err := netip.ParsePrefix(s.Prefix)
		if err != nil || p != p.Masked() {
			r.Errorf(s.Pos, "%s: prefix: %q is not a prefix (10.20.0.0/16)", where, s.Prefix)
			return false
		}
		if s.Dev != "" && n.Interface(s.Dev) == nil {
			r.Errorf(s.Pos, "%s: dev: node %s has no interface %q (it has: %s)", where, s.Node, s.Dev, strings.Join(ifaceNames(n), ", "))
			return false
		}
		st.Route = RouteWait{Node: s.Node, Prefix: p, Dev: s.Dev, Gone: s.Gone}
		return extra("session")
	}
	r.Errorf(s.Pos, "%s: no such condition; there are %s (every session Established and every route installed), %s (session: NODE[:ADDR]) and %s (node:, prefix:, dev:, gone:)", where, WaitConverged, WaitEstablished, WaitRoute)
	return false
}

// resolveSession resolves NODE or NODE:NEIGHBOUR-ADDRESS to a router's
// sessions.
func resolveSession(t *topo.Topology, at, where string, pos topo.Pos, r topo.Reporter) (Session, bool) {
	a, ok := routerAction(t, &Action{}, at, where, pos, r)
	if !ok {
		return Session{}, false
	}
	return Session{Node: a.Node, Peer: a.Peer}, true
}

func ifaceNames(n *topo.Node) []string {
	var names []string
	for _, i := range n.Interfaces {
		names = append(names, i.Name)
	}
	return names
}

func hasRouters(t *topo.Topology) bool {
	for _, n := range t.Nodes {
		if bgp.Of(n) != nil {
			return true
		}
	}
	return false
}

func (f Feature) resolveAction(t *topo.Topology, s ActionSpec, where string, r topo.Reporter) (*Action, bool) {
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
	for _, c := range []kv{{BGPReset, s.BGPReset}, {BGPShutdown, s.BGPShutdown}, {BGPEnable, s.BGPEnable}, {Kill, s.Kill}, {AgentStop, s.AgentStop}, {AgentStart, s.AgentStart},
		{Stop, s.Stop}, {Start, s.Start}, {Crash, s.Crash}} {
		if c.at != "" {
			set = append(set, c)
		}
	}
	for k := range s.Specs {
		set = append(set, kv{k, ""})
	}
	if len(set) != 1 {
		names := []string{LinkDown, LinkUp, Blackhole, Restore, Impair, Clear, Exec, BGPReset, BGPShutdown, BGPEnable, Kill, AgentStop, AgentStart, Stop, Start, Crash}
		own := len(names)
		for k := range f.actions {
			names = append(names, k)
		}
		slices.Sort(names[own:])
		r.Errorf(s.Pos, "%s: do: give exactly one action (%s), not %d", where, strings.Join(names, ", "), len(set))
		return nil, false
	}
	a := &Action{Kind: set[0].kind}
	where += ": " + a.Kind
	if spec, ok := s.Specs[a.Kind]; ok {
		h := f.actions[a.Kind]
		if h == nil {
			r.Errorf(spec.Key, "%s: no feature runs this action", where)
			return nil, false
		}
		v, ok := h.CheckAction(t, a.Kind, spec, where, r)
		if !ok {
			return nil, false
		}
		a.Hook, a.Value = h, v
		// What the step names: NODE:IFACE as written, or what the
		// feature makes of a map (it keys the step's undo too, so two
		// steps of one kind on different things are both put back).
		if str, isStr := spec.Value.(string); isStr {
			a.Written = str
		} else if st, ok := v.(fmt.Stringer); ok {
			a.Written = st.String()
		}
		return a, true
	}
	switch a.Kind {
	case Kill, BGPReset, BGPShutdown, BGPEnable, AgentStop, AgentStart:
		return routerAction(t, a, set[0].at, where, s.Pos, r)
	}
	switch a.Kind {
	case Stop, Start, Crash:
		if t.Node(set[0].at) == nil {
			r.Errorf(s.Pos, "%s: %v", where, unknownNode(t, set[0].at))
			return nil, false
		}
		a.Node = set[0].at
		return a, true
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
	if a.Kind == Kill || a.Kind == AgentStop || a.Kind == AgentStart {
		r.Errorf(pos, "%s: %q: %s takes a router's name; it acts on its speaker, and so on all its sessions", where, at, a.Kind)
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

func (f Feature) resolveExpect(t *topo.Topology, e ExpectSpec, d *Drill, where string, r topo.Reporter) (Expect, bool) {
	ex := Expect{Line: e.Pos.Line, Flow: e.Flow, Lossless: e.Lossless}
	if e.Encrypted != nil || e.NothingInClear || e.Session != "" || e.Link != "" || e.Tunnel != "" || e.State != "" || e.At != nil {
		return f.resolvePoint(t, e, d, where, r)
	}
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
	if e.MinOutage != "" {
		v, err := time.ParseDuration(e.MinOutage)
		if err != nil || v <= 0 {
			r.Errorf(e.Pos, "%s: min-outage: %q is not a duration (1s, 300ms)", where, e.MinOutage)
			ok = false
		}
		ex.MinOutage = &v
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
	if ex.MaxOutage == nil && ex.MinOutage == nil && ex.MaxLoss == nil && ex.MaxLossPct == nil && !ex.Lossless && e.Path == "" {
		r.Errorf(e.Pos, "%s: expects nothing: give max-outage, min-outage, max-loss, lossless: true or path", where)
		ok = false
	}
	return ex, ok
}

// The states a session expectation may name: GoBGP's, and down (any but
// Established).
var sessionStates = []string{"established", "down", "idle", "connect", "active", "opensent", "openconfirm"}

// StateDown is any session state but Established.
const StateDown = "down"

// resolvePoint resolves a check made at a step's end: encrypted: of a
// link end or tunnel, or state: of a session.
func (f Feature) resolvePoint(t *topo.Topology, e ExpectSpec, d *Drill, where string, r topo.Reporter) (Expect, bool) {
	ex := Expect{Line: e.Pos.Line, At: len(d.Steps)}
	if e.Flow != "" || e.MaxOutage != "" || e.MinOutage != "" || e.MaxLoss != "" || e.Lossless || e.Path != "" || e.During != nil {
		r.Errorf(e.Pos, "%s: expect: encrypted: and state: are checked of a link, tunnel or session at a step's end, not of a flow: give them an expectation of their own", where)
		return ex, false
	}
	if e.At != nil {
		if *e.At < 1 || *e.At > len(d.Steps) {
			r.Errorf(e.Pos, "%s: expect: at: %d: the drill's steps are 1 to %d", where, *e.At, len(d.Steps))
			return ex, false
		}
		ex.At = *e.At
	}
	switch {
	case (e.Encrypted != nil || e.NothingInClear) && (e.Session != "" || e.State != ""):
		r.Errorf(e.Pos, "%s: expect: encrypted: and session: are two expectations: split them", where)
		return ex, false
	case e.Encrypted != nil || e.NothingInClear:
		target := e.Link
		if (e.Link == "") == (e.Tunnel == "") {
			r.Errorf(e.Pos, "%s: expect: encrypted: and nothing-in-clear: give link: NODE:IFACE or tunnel: NAME, the one verify encryption checks", where)
			return ex, false
		}
		if e.Tunnel != "" {
			target = e.Tunnel
		}
		var known []string
		for _, h := range f.enc {
			known = append(known, h.EncryptionTargets(t)...)
		}
		if !slices.Contains(known, target) {
			r.Errorf(e.Pos, "%s: expect: encrypted: %v", where, &topo.UnknownError{Lab: t.Name, What: "link end (NODE:IFACE) or tunnel for verify encryption", Name: target, Known: known})
			return ex, false
		}
		ex.Encrypted, ex.NothingInClear, ex.Target = e.Encrypted, e.NothingInClear, target
		return ex, true
	case e.Session != "":
		if e.Link != "" || e.Tunnel != "" {
			r.Errorf(e.Pos, "%s: expect: link: and tunnel: go with encrypted:", where)
			return ex, false
		}
		sess, ok := resolveSession(t, e.Session, where+": expect: session", e.Pos, r)
		if !ok {
			return ex, false
		}
		if !slices.Contains(sessionStates, e.State) {
			r.Errorf(e.Pos, "%s: expect: session %s: state: %q: give one of %s", where, e.Session, e.State, strings.Join(sessionStates, ", "))
			return ex, false
		}
		ex.Session, ex.State = &sess, e.State
		return ex, true
	}
	r.Errorf(e.Pos, "%s: expect: at: checks encrypted: or nothing-in-clear: (of link: or tunnel:), or state: (of session:); give one", where)
	return ex, false
}

func unknownNode(t *topo.Topology, name string) error {
	names := make([]string, len(t.Nodes))
	for i, n := range t.Nodes {
		names[i] = n.Name
	}
	return &topo.UnknownError{Lab: t.Name, What: "node", Name: name, Known: names}
}
