package lab

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// A stopped node's link ends wait in the lab's parking namespace, so that
// its links survive the stop (containerlab parks them the same way): the
// far ends stay where they are and lose carrier, as the ports facing a
// powered-off box do. The parking namespace is named like a node's, with
// a name no node can have (node names start with a letter or digit), so
// destroy removes it with the lab.
const parkNode = "-parked"

func parkNetNS(lab string) string { return NetNSName(lab, parkNode) }

// parkedName is the name a parked end has in the parking namespace, where
// every stopped node's eth1 must get along; its alias says whose it is.
func parkedName(node, iface string) string {
	h := fnv.New32a()
	h.Write([]byte(node + ":" + iface))
	return fmt.Sprintf("pk%08x", h.Sum32())
}

func parkedAlias(node, iface string) string { return "erlab parked " + node + ":" + iface }

// NodeReport says what stop or start did to one node.
type NodeReport struct {
	Node string `json:"node"`
	// Did is stopped, killed, started, already stopped or already
	// running.
	Did       string `json:"did"`
	Processes int    `json:"processes,omitempty"` // ended by the stop
	Links     int    `json:"links"`               // link ends parked, or brought back
}

// StopNodes stops nodes of the deployed lab as a box is shut down,
// keeping its links: the processes in the node end (its kind's own stop,
// such as docker stop, then SIGTERM and SIGKILL after StopGrace to what
// is left), its link ends are parked (set down, so that the far ends lose
// carrier), and its namespace goes, with every address, route and device
// in it. A node already stopped is left as it is. StartNodes brings them
// back.
//
// With kill the node fails as at a power loss: its link ends are parked
// first (its processes frozen meanwhile), then every process is killed,
// so that no goodbye (a Cease, a TCP FIN, a withdrawal) reaches a
// neighbour.
func (l *Lab) StopNodes(ctx context.Context, names []string, kill bool) ([]NodeReport, error) {
	defer l.forget()
	st, err := l.nodeStates(names)
	if err != nil {
		return nil, err
	}
	if err := l.parkPlace(); err != nil {
		return nil, err
	}
	var reps []NodeReport
	for _, name := range names {
		n := st.node(name)
		if n.Stopped {
			reps = append(reps, NodeReport{Node: name, Did: "already stopped"})
			continue
		}
		rep, err := l.stopNode(ctx, st, n, kill, false)
		if err != nil {
			return reps, err
		}
		l.recordNodes([]string{name}, map[bool]string{true: "crash", false: "stop"}[kill])
		reps = append(reps, rep)
	}
	return reps, nil
}

// parkPlace makes the lab's parking namespace, if it is not there.
func (l *Lab) parkPlace() error {
	park := parkNetNS(l.name)
	if kernel.NetNSExists(park) {
		return nil
	}
	if err := kernel.NetNSAdd(park); err != nil {
		return fmt.Errorf("lab %s: make the namespace that keeps stopped nodes' links: %w", l.name, err)
	}
	return nil
}

// stopNode stops one running node and records it stopped. A detached node
// (its runtime runs it elsewhere: see nodes.Runtime) is not stopped
// through its kind: only what erlab ran in its namespace ends, and its
// links are parked from there.
func (l *Lab) stopNode(ctx context.Context, st *State, n *NodeState, kill, detached bool) (NodeReport, error) {
	rep := NodeReport{Node: n.Name, Did: "stopped"}
	if !kernel.NetNSExists(n.NetNS) {
		return rep, fmt.Errorf("lab %s: node %s has no namespace (%s) and is not stopped: the lab is half-built; destroy it and deploy again", l.name, n.Name, n.NetNS)
	}
	log := l.Log().With("node", n.Name)
	pids, err := kernel.PIDsIn([]string{n.NetNS})
	if err != nil {
		return rep, err
	}
	rep.Processes = len(pids[n.NetNS])
	ends := st.endsOf(n.Name)
	park := func() error {
		if err := parkEnds(n, parkNetNS(l.name), ends); err != nil {
			return fmt.Errorf("lab %s: stop %s: %w", l.name, n.Name, err)
		}
		rep.Links = len(ends)
		return nil
	}
	// A kind may stop its nodes itself (a container, through its
	// runtime, so that it starts again as it was); the signals below
	// then end whatever else ran in the namespace.
	kind, _ := l.opts.kinds().Get(n.Kind)
	stopper, _ := kind.(nodes.Stopper)
	if detached {
		stopper = nil
	}
	rn := &nodes.Node{Lab: l.name, NetNS: n.NetNS, Log: log, Ops: l.opts.ops()}
	if kill {
		// As a power loss: the processes freeze, the ports go dark,
		// and then they die, so that nothing they would do on seeing
		// the first port go (withdraw routes through the others) nor
		// what their sockets send on the way out (a TCP FIN to every
		// BGP peer) tells a neighbour.
		rep.Did = "killed"
		for _, pid := range pids[n.NetNS] {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
		if err := park(); err != nil {
			return rep, err
		}
		if stopper != nil {
			if err := stopper.Stop(ctx, rn, true); err != nil {
				return rep, err
			}
		}
		for _, pid := range pids[n.NetNS] {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		waitGone(ctx, pids[n.NetNS], StopGrace)
	} else {
		// As a shutdown: the processes end first, and say so (a BGP
		// speaker sends its Cease).
		left := pids[n.NetNS]
		if stopper != nil {
			if err := stopper.Stop(ctx, rn, false); err != nil {
				return rep, err
			}
			// Signal only what outlived the kind's stop, not a PID
			// reused since.
			left = slices.DeleteFunc(slices.Clone(left), func(pid int) bool { return !kernel.ProcessAlive(pid) })
		}
		stopProcesses(ctx, left)
		if err := park(); err != nil {
			return rep, err
		}
	}
	if _, err := removeHostEnds(l.name, n.Name); err != nil {
		return rep, fmt.Errorf("lab %s: stop %s: %w", l.name, n.Name, err)
	}
	if err := kernel.NetNSDel(n.NetNS); err != nil {
		return rep, fmt.Errorf("lab %s: stop %s: %w", l.name, n.Name, err)
	}
	n.Stopped = true
	if err := l.opts.writeState(st); err != nil {
		return rep, err
	}
	log.Info("node "+rep.Did, "processes", rep.Processes, "links parked", rep.Links)
	return rep, nil
}

// parkEnds moves a node's link ends into the parking namespace, down,
// renamed and marked with whose they are.
func parkEnds(n *NodeState, park string, ends []string) error {
	fd, err := kernel.Open(park)
	if err != nil {
		return err
	}
	defer fd.Close()
	return kernel.WithHandle(kernel.Real{}, n.NetNS, func(h *netlink.Handle) error {
		for _, iface := range ends {
			link, err := h.LinkByName(iface)
			if err != nil {
				return fmt.Errorf("link end %s:%s: %w", n.Name, iface, err)
			}
			for _, step := range []struct {
				what string
				do   func() error
			}{
				{"set down", func() error { return h.LinkSetDown(link) }},
				{"rename", func() error { return h.LinkSetName(link, parkedName(n.Name, iface)) }},
				{"mark", func() error { return h.LinkSetAlias(link, parkedAlias(n.Name, iface)) }},
				{"park", func() error { return h.LinkSetNsFd(link, int(fd)) }},
			} {
				if err := step.do(); err != nil {
					return fmt.Errorf("park %s:%s: %s: %w", n.Name, iface, step.what, err)
				}
			}
		}
		return nil
	})
}

// unpark brings a link's parked ends back into their nodes' new
// namespaces under their own names, for the interfaces step to configure
// as at deploy.
func (d *deployment) unpark(l *topo.Link) error {
	park := parkNetNS(d.t.Name)
	for _, ep := range l.Ends() {
		if !d.only[ep.Node] {
			continue
		}
		n := d.nodes[ep.Node]
		fd, err := kernel.Open(n.NetNS)
		if err != nil {
			return err
		}
		err = n.Ops.Netlink(park, fmt.Sprintf("link set %s netns %s", parkedName(ep.Node, ep.Iface), n.NetNS), func(h *netlink.Handle) error {
			link, err := h.LinkByName(parkedName(ep.Node, ep.Iface))
			if err != nil || link.Attrs().Alias != parkedAlias(ep.Node, ep.Iface) {
				return fmt.Errorf("link end %s is not parked (in %s): the link is gone; destroy the lab and deploy it again", ep, park)
			}
			return h.LinkSetNsFd(link, int(fd))
		})
		fd.Close()
		if err != nil {
			return err
		}
		err = n.Netlink("link set "+parkedName(ep.Node, ep.Iface)+" name "+ep.Iface, func(h *netlink.Handle) error {
			link, err := h.LinkByName(parkedName(ep.Node, ep.Iface))
			if err != nil {
				return err
			}
			if err := h.LinkSetName(link, ep.Iface); err != nil {
				return fmt.Errorf("link end %s: rename: %w", ep, err)
			}
			return h.LinkSetAlias(link, "")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// StartNodes starts stopped nodes of the deployed lab again: each gets a
// new namespace, its parked link ends back, and everything the deploy
// gave it — addresses, devices, keys, impairments, routes, exec
// commands, its agents and daemons — from the topology, through the same
// steps (see deployment.plan). Then each feature puts right what the
// restart left wrong beyond the node (RestartHook). A node that fails to
// start is stopped again, never left half-built. A running node is left as
// it is.
func (l *Lab) StartNodes(ctx context.Context, names []string) ([]NodeReport, error) {
	return l.startNodes(ctx, names, l.opts.status())
}

func (l *Lab) startNodes(ctx context.Context, names []string, progress Status) ([]NodeReport, error) {
	defer l.forget()
	t, err := l.needTopology("start")
	if err != nil {
		return nil, err
	}
	st, err := l.nodeStates(names)
	if err != nil {
		return nil, err
	}
	var reps []NodeReport
	only, stopped := map[string]bool{}, map[string]bool{}
	for _, name := range names {
		n := st.node(name)
		did := "started"
		if !n.Stopped {
			// Detached (a container restarted behind erlab's back):
			// its links are taken from the namespace that holds
			// them and it starts as a stopped node would, in the
			// namespace it runs in now.
			rt, err := l.runtimeOf(ctx, *n)
			if err != nil {
				return nil, fmt.Errorf("lab %s: node %s: %w", l.name, name, err)
			}
			if rt != nil && rt.Detached {
				if err := l.parkPlace(); err != nil {
					return nil, err
				}
				if _, err := l.stopNode(ctx, st, n, false, true); err != nil {
					return nil, err
				}
				did = "reattached"
			}
		}
		if n.Stopped {
			only[name] = true
			reps = append(reps, NodeReport{Node: name, Did: did, Links: len(st.endsOf(name))})
		} else {
			reps = append(reps, NodeReport{Node: name, Did: "already running"})
		}
	}
	if len(only) == 0 {
		return reps, nil
	}
	for _, n := range st.Nodes {
		if n.Stopped && !only[n.Name] {
			stopped[n.Name] = true
		}
	}
	opts := &l.opts
	log := l.Log()
	d := &deployment{t: t, opts: opts, dir: opts.labDir(t.Name), nodes: map[string]*nodes.Node{}, only: only, stopped: stopped}
	for _, n := range t.Nodes {
		d.nodes[n.Name] = &nodes.Node{Lab: t.Name, Spec: n, NetNS: NetNSName(t.Name, n.Name), Dir: filepath.Join(d.dir, "nodes", n.Name),
			Log: log.With("node", n.Name), Ops: opts.ops()}
	}
	p, err := d.plan()
	if err == nil {
		err = p.Run(ctx, opts.workers(), progress)
	}
	if err == nil {
		for name := range only {
			st.node(name).Stopped = false
		}
		err = opts.writeState(st)
		l.forget()
	}
	if err == nil {
		for _, h := range hooks[feature.RestartHook](opts) {
			for _, name := range slices.Sorted(maps.Keys(only)) {
				if herr := h.NodeStarted(ctx, l, name); herr != nil {
					err = errors.Join(err, fmt.Errorf("lab %s: start %s: %w", l.name, name, herr))
				}
			}
		}
		l.recordNodes(slices.Sorted(maps.Keys(only)), "start")
		if err != nil {
			return reps, err // the node runs; what failed is named
		}
		l.dropEmptyPark()
		return reps, nil
	}
	// Back to stopped: whatever of the nodes came up is parked again.
	log.Info("start failed; stopping the nodes again", "err", err)
	ctx = context.WithoutCancel(ctx)
	for name := range only {
		n := st.node(name)
		if !kernel.NetNSExists(n.NetNS) {
			continue
		}
		n.Stopped = false
		if _, serr := l.stopNode(ctx, st, n, true, false); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop %s again: %w", name, serr))
		}
	}
	return nil, err
}

// StopNode stops one node (see StopNodes).
func (l *Lab) StopNode(ctx context.Context, node string, kill bool) error {
	_, err := l.StopNodes(ctx, []string{node}, kill)
	return err
}

// recordNodes notes nodes stopped, crashed or started in the journal.
func (l *Lab) recordNodes(names []string, what string) {
	for _, n := range names {
		l.Record(Event{Node: n, Kind: EventAction, Object: "node", State: what, Detail: "erlab " + what})
	}
}

// StartNode starts one stopped node (see StartNodes), showing no progress:
// a drill step's own line says it.
func (l *Lab) StartNode(ctx context.Context, node string) error {
	_, err := l.startNodes(ctx, []string{node}, noStatus{})
	return err
}

// RestartNodes stops the nodes (in order), then starts them all again.
func (l *Lab) RestartNodes(ctx context.Context, names []string) ([]NodeReport, error) {
	if _, err := l.needTopology("restart"); err != nil {
		return nil, err
	}
	if _, err := l.StopNodes(ctx, names, false); err != nil {
		return nil, err
	}
	return l.StartNodes(ctx, names)
}

// dropEmptyPark removes the parking namespace once it holds no link end.
func (l *Lab) dropEmptyPark() {
	park := parkNetNS(l.name)
	var left int
	kernel.WithHandle(kernel.Real{}, park, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		for _, lk := range links {
			if strings.HasPrefix(lk.Attrs().Alias, "erlab parked ") {
				left++
			}
		}
		if err != nil {
			left++
		}
		return err
	})
	if left == 0 {
		kernel.NetNSDel(park)
	}
}

// nodeStates reads the lab's state for a stop or start of names, every one
// a node of the lab.
func (l *Lab) nodeStates(names []string) (*State, error) {
	if len(names) == 0 {
		return nil, errors.New("name the nodes")
	}
	st, err := l.opts.readState(l.name)
	if err != nil {
		if _, err := l.needTopology("it"); err != nil {
			return nil, err
		}
		return nil, &NotDeployedError{Name: l.name}
	}
	var known []string
	for _, n := range st.Nodes {
		known = append(known, n.Name)
	}
	for _, name := range names {
		if st.node(name) == nil {
			return nil, &UnknownError{Lab: l.name, What: "node", Name: name, Known: known}
		}
	}
	return st, nil
}

// node is the named node of the state, nil when there is none.
func (s *State) node(name string) *NodeState {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

// endsOf lists a node's link ends (interface names), as the state records
// the links.
func (s *State) endsOf(node string) []string {
	var out []string
	for _, lk := range s.Links {
		for _, e := range []string{lk.A, lk.B} {
			if n, iface, _ := strings.Cut(e, ":"); n == node {
				out = append(out, iface)
			}
		}
	}
	return out
}

// Stopped implements feature.Lab.
func (l *Lab) Stopped(node string) bool {
	st, err := l.state()
	if err != nil {
		return false
	}
	n := st.node(node)
	return n != nil && n.Stopped
}

// waitGone waits up to grace for the processes to end, and says whether
// they did.
func waitGone(ctx context.Context, pids []int, grace time.Duration) bool {
	deadline := time.Now().Add(grace)
	for {
		if !slices.ContainsFunc(pids, kernel.ProcessAlive) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
