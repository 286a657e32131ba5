package bgp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/supervise"
	"github.com/erlab-dev/erlab/nodes"
)

// AgentStartTimeout bounds how long deploy waits for an agent's API.
const AgentStartTimeout = 15 * time.Second

// Steps implements feature.StepsHook: each BGP node's agent starts once the
// node is in place and its exec commands ran, and deploy waits for its API.
func (Feature) Steps(d feature.Deployment) []feature.Step {
	var out []feature.Step
	for _, n := range d.Topology().Nodes {
		if Of(n) == nil {
			continue
		}
		node := n.Name
		out = append(out, feature.Step{ID: "bgp/agent/" + node, Group: "Starting node processes", Node: node,
			After: []string{feature.ExecStep(node)},
			Run:   func(ctx context.Context) error { return start(ctx, d.Node(node)) }})
	}
	return out
}

// start starts the node's agent — this very binary, re-executed inside the
// namespace under erlab's supervisor (lab/supervise), which restarts it
// and has it flush a dead speaker's routes — and waits until it serves its
// API.
func start(ctx context.Context, n *nodes.Node) error {
	if err := n.MakeDir(); err != nil {
		return err
	}
	cfgPath := filepath.Join(n.Dir, agentConfigFile)
	logPath := filepath.Join(n.Dir, "agent.log")
	return n.Exec("erlab bgp agent (GoBGP, API "+GRPCAddress+")", func() error {
		if err := WriteConfig(cfgPath, AgentConfig{Lab: n.Lab, Node: n.Spec.Name, BGP: *Of(n.Spec), Dir: n.Dir}); err != nil {
			return fmt.Errorf("node %s: agent config: %w", n.Spec.Name, err)
		}
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd, err := supervise.Command(supervise.Spec{Helper: HelperName, Env: []string{ConfigEnv + "=" + cfgPath}, AfterCrash: true}, logf)
		if err != nil {
			return err
		}
		if err := kernel.Do(n.NetNS, cmd.Start); err != nil {
			return fmt.Errorf("node %s: start agent: %w", n.Spec.Name, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }() // reap it if it dies while we run
		deadline := time.Now().Add(AgentStartTimeout)
		for {
			conn, err := dialNS(ctx, n.NetNS, GRPCAddress)
			if err == nil {
				conn.Close()
				n.Log.Info("agent up", "pid", cmd.Process.Pid)
				return nil
			}
			select {
			case err := <-exited:
				return fmt.Errorf("node %s: agent exited (%v); its log, %s:\n%s", n.Spec.Name, err, logPath, tail(logPath))
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s: agent API not up after %s; its log, %s:\n%s", n.Spec.Name, AgentStartTimeout, logPath, tail(logPath))
			}
		}
	})
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// AgentInfo is the state of a node's agent, as inspect shows it.
type AgentInfo struct {
	Node     string `json:"node"`
	PID      int    `json:"pid"`
	Alive    bool   `json:"alive"`    // the supervisor runs
	Speaking bool   `json:"speaking"` // the BGP speaker runs
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit,omitempty"`
	Log      string `json:"log"`
}

// Inspect implements feature.InspectHook: the AGENT table.
func (Feature) Inspect(_ context.Context, l feature.Lab) (*feature.Section, error) {
	sec := &feature.Section{Header: []string{"AGENT", "PID", "STATE", "RESTARTS", "LAST EXIT", "LOG"}}
	var infos []AgentInfo
	for _, node := range l.Nodes() {
		dir := l.NodeDir(node)
		st, err := ReadStatus(dir)
		if err != nil {
			continue
		}
		a := AgentInfo{Node: node, PID: st.PID, Alive: kernel.ProcessAlive(st.PID), Speaking: st.SpeakerPID != 0 && kernel.ProcessAlive(st.SpeakerPID),
			Restarts: st.Restarts, LastExit: st.LastExit, Log: filepath.Join(dir, "agent.log")}
		infos = append(infos, a)
		state := "running"
		switch {
		case l.Stopped(node):
			state = "node stopped"
		case !a.Alive:
			state = "DEAD"
		case !a.Speaking && st.LastExit == "stopped":
			state = "stopped" // held down by agent-stop until agent-start
		case !a.Speaking:
			state = "restarting"
		}
		last := "-"
		if a.LastExit != "" {
			last = a.LastExit
		}
		sec.Rows = append(sec.Rows, []string{node, fmt.Sprint(a.PID), state, fmt.Sprint(a.Restarts), last, a.Log})
	}
	if len(infos) == 0 {
		return nil, nil
	}
	sec.Data = infos
	return sec, nil
}
