package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/netem"
	"github.com/erlab-dev/erlab/lab/probe"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Lab is what a drill runs against: a deployed lab (lab.Lab is one).
type Lab interface {
	feature.Lab
	// LinkSet sets a link end down or up, as erlab link does.
	LinkSet(ctx context.Context, node, iface string, up bool) error
	// VerifyEncryption is verify encryption of the targets named.
	VerifyEncryption(ctx context.Context, only []string) ([]feature.EncryptionCheck, error)
	// StopNode and StartNode stop a node (kill: as a crash) and start it
	// again, as erlab stop and start do.
	StopNode(ctx context.Context, node string, kill bool) error
	StartNode(ctx context.Context, node string) error
}

// TimelineBucket is the resolution of a flow's timeline (and of the SVG).
const TimelineBucket = 50 * time.Millisecond

// FirstPort is the UDP port of a drill's first flow; the others follow.
const FirstPort = 7800

// StepResult is what one step did, and when, from the start of the run.
type StepResult struct {
	Step int           `json:"step"`
	Line int           `json:"line"`
	What string        `json:"what"`
	At   time.Duration `json:"at_ns"`
	Took time.Duration `json:"took_ns"`
}

// FlowResult is one flow's measurement; FirstLoss and LastLoss count
// from the start of the run, as StepResult.At does.
type FlowResult struct {
	Flow     string `json:"flow"`
	From     string `json:"from"`
	To       string `json:"to"`
	Receiver string `json:"receiver"`
	probe.Report
	OutageMS float64 `json:"outage_ms"`
	// Offset is when the stream started, from the start of the run: its
	// timeline begins there.
	Offset time.Duration `json:"offset_ns"`
}

// Check is one expectation and what was measured against it.
type Check struct {
	Flow string `json:"flow"` // empty for a check at a step's end
	// At is the step at whose end a check of no flow was made.
	At       int    `json:"at_step,omitempty"`
	Line     int    `json:"line"`
	What     string `json:"what"`     // "max-outage 1s"
	Measured string `json:"measured"` // "outage 512ms"
	Pass     bool   `json:"pass"`
}

// RunResult is one run of a drill.
type RunResult struct {
	Pass  bool         `json:"pass"`
	Error string       `json:"error,omitempty"`
	Steps []StepResult `json:"steps"`
	Flows []FlowResult `json:"flows"`
	Check []Check      `json:"expectations"`
}

// Run runs a drill once: its flows start, its steps run in order, the
// flows stop after the last, and its expectations are checked against what
// they measured. Whatever the drill pulled, blackholed or impaired is
// put back afterwards, so that a lab is left as the drill found it and a
// second run starts alike. An error is a drill that could not run (a
// step failed, a wait timed out); a failed expectation is Pass false.
func Run(ctx context.Context, l Lab, d *Drill, progress io.Writer) RunResult {
	t := l.Topology()
	var res RunResult
	var undo undoList
	start := time.Now()
	// A drill's leading waits (the lab ready: converged) run before its
	// flows start, so that what the flows measure is the drill's own.
	lead := 0
	for lead < len(d.Steps) && d.Steps[lead].Wait != "" && d.Steps[lead].After == 0 {
		lead++
	}
	// Checks of no flow (encrypted:, state:) are made at their step's end.
	points := map[int][]Expect{}
	for _, e := range d.Expect {
		if e.Point() {
			points[e.At-1] = append(points[e.At-1], e)
		}
	}
	var pointChecks []Check
	r := &runner{l: l, drill: d.Name, start: start, res: &res, undo: &undo, progress: progress}
	l.Record(feature.Event{Kind: EventKind, Object: d.Name, State: "started", Detail: d.Description})
	defer func() {
		state := map[bool]string{true: "pass", false: "fail"}[res.Pass]
		detail := res.Error
		if detail == "" {
			passed := 0
			for _, c := range res.Check {
				if c.Pass {
					passed++
				}
			}
			detail = fmt.Sprintf("%d of %d expectations met", passed, len(res.Check))
		}
		l.Record(feature.Event{Kind: EventKind, Object: d.Name, State: state, Detail: detail})
	}()
	checkAt := func(i int) {
		for _, e := range points[i] {
			began := time.Now()
			c := checkPoint(ctx, l, e)
			if progress != nil {
				fmt.Fprintf(progress, "  %7.3fs  check %s: %s (%s)\n", began.Sub(start).Seconds(), c.What, verdict(c.Pass), time.Since(began).Round(time.Millisecond))
			}
			l.Record(feature.Event{Kind: EventKind, Object: d.Name, State: "check", Detail: fmt.Sprintf("%s: %s", c.What, verdict(c.Pass))})
			pointChecks = append(pointChecks, c)
		}
	}
	if err := r.steps(ctx, d.Steps[:lead], 0, checkAt); err != nil {
		res.Error = err.Error()
		return res
	}
	pc, err := startPaths(l, d)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer pc.remove()
	stop := make(chan struct{})
	flows := make([]FlowResult, len(d.Flows))
	errs := make([]error, len(d.Flows))
	var wg sync.WaitGroup
	for i, f := range d.Flows {
		_, owner, _ := probe.Target(t, f.To)
		flows[i] = FlowResult{Flow: f.Label, From: f.From, To: f.To, Receiver: owner}
		wg.Add(1)
		go func() {
			defer wg.Done()
			flows[i].Report, errs[i] = probe.Between(ctx, t, f.From, f.To, probe.Config{Rate: f.Rate, Duration: 24 * time.Hour, Port: FirstPort + i, Stop: stop, Bucket: TimelineBucket})
		}()
	}
	pc.take(-1, start)
	stepErr := r.steps(ctx, d.Steps[lead:], lead, func(i int) { pc.take(i, start); checkAt(i) })
	close(stop)
	wg.Wait()
	pc.take(len(d.Steps), start)
	if err := undo.run(context.WithoutCancel(ctx), l); err != nil {
		stepErr = errors.Join(stepErr, fmt.Errorf("putting the lab back: %w", err))
	}
	for i := range flows {
		r := &flows[i]
		if !r.Started.IsZero() {
			off := r.Started.Sub(start)
			r.Offset = off
			if r.FirstLoss >= 0 {
				r.FirstLoss += off
				r.LastLoss += off
			}
		}
		r.OutageMS = float64(r.Outage.Microseconds()) / 1000
	}
	res.Flows = flows
	if err := errors.Join(append(errs, stepErr)...); err != nil {
		res.Error = err.Error()
	}
	res.Check = append(append(Evaluate(d, flows), pc.evaluate(d, flows)...), pointChecks...)
	res.Pass = res.Error == "" && len(res.Check) > 0
	for _, c := range res.Check {
		res.Pass = res.Pass && c.Pass
	}
	return res
}

// runner is one run of a drill, as its steps see it.
type runner struct {
	l        Lab
	drill    string
	start    time.Time
	res      *RunResult
	undo     *undoList
	progress io.Writer
}

// EventKind is the kind of the events a drill records in the lab's
// journal: started, each step, each check, and pass or fail.
const EventKind = "drill"

// steps runs steps (the drill's from index first on) in order, calling
// after with each one's index once it is done.
func (r *runner) steps(ctx context.Context, steps []Step, first int, after func(int)) error {
	l, start, res, undo, progress := r.l, r.start, r.res, r.undo, r.progress
	for k, s := range steps {
		i := first + k
		if s.After > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.After):
			}
		}
		what := fmt.Sprintf("after %s", s.After)
		began := time.Now()
		var err error
		switch {
		case s.Wait == WaitConverged:
			what = "wait " + s.Wait
			err = bgp.WaitConverged(ctx, l, s.Timeout)
		case s.Wait == WaitEstablished:
			what = "wait established " + s.Session.String()
			err = waitEstablished(ctx, l, s.Session, s.Timeout)
		case s.Wait == WaitRoute:
			what = "wait route " + s.Route.String()
			err = waitRoute(ctx, l, s.Route, s.Timeout)
		case s.Action != nil:
			what = s.Action.String()
			var did string
			if did, err = act(ctx, l, s.Action, undo); did != "" {
				what += ": " + did
			}
		}
		sr := StepResult{Step: i + 1, Line: s.Line, What: what, At: began.Sub(start), Took: time.Since(began)}
		res.Steps = append(res.Steps, sr)
		if progress != nil {
			fmt.Fprintf(progress, "  %7.3fs  step %d: %s (%s)\n", sr.At.Seconds(), sr.Step, what, sr.Took.Round(time.Millisecond))
		}
		step := fmt.Sprintf("step %d: %s", sr.Step, what)
		if err != nil {
			step += ": " + err.Error()
		}
		l.Record(feature.Event{Kind: EventKind, Object: r.drill, State: "step", Detail: step, Values: map[string]float64{"step": float64(sr.Step)}})
		if err != nil {
			return fmt.Errorf("step %d (line %d, %s): %w", i+1, s.Line, what, err)
		}
		if after != nil {
			after(i)
		}
	}
	return nil
}

// act does one action, and notes how to put it back.
func act(ctx context.Context, l Lab, a *Action, undo *undoList) (string, error) {
	if a.Hook != nil {
		did, back, err := a.Hook.Act(ctx, l, a.Kind, a.Value)
		if err != nil {
			return "", err
		}
		if back != nil {
			undo.note(topo.Endpoint{Node: a.Written}, a.Kind, func(ctx context.Context, _ Lab) error { return back(ctx) }, false)
		}
		return did, nil
	}
	return "", actBuiltin(ctx, l, a, undo)
}

// actBuiltin does one of the drill's own actions.
func actBuiltin(ctx context.Context, l Lab, a *Action, undo *undoList) error {
	switch a.Kind {
	case LinkDown, LinkUp:
		up := a.Kind == LinkUp
		if err := l.LinkSet(ctx, a.At.Node, a.At.Iface, up); err != nil {
			return err
		}
		undo.note(a.At, "link", func(ctx context.Context, l Lab) error { return l.LinkSet(ctx, a.At.Node, a.At.Iface, !up) }, up)
	case Blackhole, Restore:
		// Both ends of the link drop what they send: nothing crosses it
		// either way, and no carrier changes.
		ends, err := linkEnds(l, a.At)
		if err != nil {
			return err
		}
		apply := blackhole
		if a.Kind == Restore {
			apply = restore
		}
		for _, e := range ends {
			if err := apply(e.ns, e.iface); err != nil {
				return err
			}
		}
		undo.note(a.At, "blackhole", func(context.Context, Lab) error {
			var errs []error
			for _, e := range ends {
				errs = append(errs, restore(e.ns, e.iface))
			}
			return errors.Join(errs...)
		}, a.Kind == Restore)
	case Impair, Clear:
		p := a.Params
		if a.Kind == Clear {
			p = netem.Params{}
		}
		if err := netem.Impair(ctx, l, a.At.Node, a.At.Iface, p); err != nil {
			return err
		}
		// Back to what the topology gives the interface.
		var orig netem.Params
		if i := l.Topology().Node(a.At.Node).Interface(a.At.Iface); i != nil && netem.Of(i) != nil {
			orig = *netem.Of(i)
		}
		undo.note(a.At, "impair", func(ctx context.Context, l Lab) error { return netem.Impair(ctx, l, a.At.Node, a.At.Iface, orig) }, false)
	case Kill:
		if _, err := bgp.KillSpeaker(l, a.Node); err != nil {
			return err
		}
	case AgentStop, AgentStart:
		var err error
		if a.Kind == AgentStop {
			err = bgp.StopAgent(ctx, l, a.Node)
		} else {
			err = bgp.StartAgent(ctx, l, a.Node)
		}
		if err != nil {
			return err
		}
		undo.note(topo.Endpoint{Node: a.Node}, "agent", func(ctx context.Context, l Lab) error { return bgp.StartAgent(ctx, l, a.Node) }, a.Kind == AgentStart)
	case Stop, Crash:
		if err := l.StopNode(ctx, a.Node, a.Kind == Crash); err != nil {
			return err
		}
		undo.note(topo.Endpoint{Node: a.Node}, "node", func(ctx context.Context, l Lab) error { return l.StartNode(ctx, a.Node) }, false)
	case Start:
		if err := l.StartNode(ctx, a.Node); err != nil {
			return err
		}
		undo.note(topo.Endpoint{Node: a.Node}, "node", nil, true)
	case BGPReset:
		return bgp.Reset(ctx, l, a.Node, a.Peer)
	case BGPShutdown, BGPEnable:
		var err error
		if a.Kind == BGPShutdown {
			err = bgp.Shutdown(ctx, l, a.Node, a.Peer, "erlab drill: administrative shutdown")
		} else {
			err = bgp.Enable(ctx, l, a.Node, a.Peer)
		}
		if err != nil {
			return err
		}
		// Keyed by router (and neighbour) as a link end is by interface.
		at := topo.Endpoint{Node: a.Node, Iface: a.Peer.String()}
		undo.note(at, "bgp", func(ctx context.Context, l Lab) error { return bgp.Enable(ctx, l, a.Node, a.Peer) }, a.Kind == BGPEnable)
	case Exec:
		var out strings.Builder
		code, err := l.Exec(ctx, a.Node, []string{"/bin/sh", "-c", a.Cmd}, nil, &out, &out)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("exit status %d: %s", code, strings.TrimSpace(out.String()))
		}
	}
	return nil
}

// undoList remembers, per interface and kind of change, how to put the
// first change back; a later action that restores it by itself (link-up
// after link-down) clears the entry.
type undoList struct {
	order []string
	fns   map[string]func(context.Context, Lab) error
}

func (u *undoList) note(at topo.Endpoint, what string, fn func(context.Context, Lab) error, restores bool) {
	key := what + " " + at.String()
	if u.fns == nil {
		u.fns = map[string]func(context.Context, Lab) error{}
	}
	if restores {
		delete(u.fns, key)
		return
	}
	if _, ok := u.fns[key]; !ok {
		u.order = append(u.order, key)
		u.fns[key] = fn
	}
}

func (u *undoList) run(ctx context.Context, l Lab) error {
	var errs []error
	for i := len(u.order) - 1; i >= 0; i-- {
		if fn, ok := u.fns[u.order[i]]; ok {
			if err := fn(ctx, l); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", u.order[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// Evaluate checks each of the drill's expectations against what its
// flows measured.
func Evaluate(d *Drill, flows []FlowResult) []Check {
	var out []Check
	for _, e := range d.Expect {
		var f *FlowResult
		for i := range flows {
			if flows[i].Flow == e.Flow {
				f = &flows[i]
			}
		}
		if f == nil {
			continue
		}
		add := func(what, measured string, pass bool) {
			out = append(out, Check{Flow: e.Flow, Line: e.Line, What: what, Measured: measured, Pass: pass && f.Received > 0})
		}
		outage := fmt.Sprintf("outage %s (%d of %d lost)", f.Outage.Round(time.Millisecond), f.Lost, f.Sent)
		if f.Received == 0 {
			outage = fmt.Sprintf("nothing received (%d sent)", f.Sent)
		}
		if e.MaxOutage != nil {
			add("max-outage "+e.MaxOutage.String(), outage, f.Outage <= *e.MaxOutage)
		}
		if e.MinOutage != nil {
			add("min-outage "+e.MinOutage.String(), outage, f.Outage >= *e.MinOutage)
		}
		if e.MaxLoss != nil {
			add(fmt.Sprintf("max-loss %d", *e.MaxLoss), outage, f.Lost <= *e.MaxLoss)
		}
		if e.MaxLossPct != nil {
			pct := 0.0
			if f.Sent > 0 {
				pct = 100 * float64(f.Lost) / float64(f.Sent)
			}
			add(fmt.Sprintf("max-loss %g%%", *e.MaxLossPct), fmt.Sprintf("%.3g%% lost (%d of %d)", pct, f.Lost, f.Sent), pct <= *e.MaxLossPct)
		}
		if e.Lossless {
			add("lossless", outage, f.Lost == 0)
		}
	}
	return out
}

type nsIface struct{ ns, iface string }

// linkEnds returns both ends of the link an endpoint is on, each with
// its node's namespace.
func linkEnds(l Lab, at topo.Endpoint) ([]nsIface, error) {
	ends := []topo.Endpoint{at}
	if i := l.Topology().Node(at.Node).Interface(at.Iface); i != nil && i.Link != nil {
		ends = append(ends, i.Link.Other(at))
	}
	var out []nsIface
	for _, e := range ends {
		ns, err := l.NetNS(e.Node)
		if err != nil {
			return nil, err
		}
		out = append(out, nsIface{ns, e.Iface})
	}
	return out, nil
}
