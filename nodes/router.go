package nodes

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/erlab-dev/erlab/lab/agent"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Router is a namespace that routes: forwarding is always on, and when the
// node has a bgp: block, deploy starts erlab's routing agent inside it — an
// embedded GoBGP speaker with BFD whose best paths go into the node's
// kernel, serving GoBGP's API on 127.0.0.1:50051 there for the gobgp CLI.
type Router struct{}

// Name implements Kind.
func (Router) Name() string { return "router" }

// Check implements Kind. A router forwards, whatever the defaults say.
func (Router) Check(n *topo.Node, r topo.Reporter) {
	refuseContainerFields(n, r)
	n.Forward = true
}

// AgentStartTimeout bounds how long deploy waits for an agent's API.
const AgentStartTimeout = 15 * time.Second

// Start starts the node's agent, if it speaks BGP, and waits for its API.
func (Router) Start(ctx context.Context, n *Node) error {
	if n.Spec.BGP == nil {
		return nil
	}
	cfgPath := filepath.Join(n.Dir, "agent.json")
	if err := agent.WriteConfig(cfgPath, agent.Config{Lab: n.Lab, Node: n.Spec.Name, BGP: *n.Spec.BGP, Dir: n.Dir}); err != nil {
		return fmt.Errorf("node %s: agent config: %w", n.Spec.Name, err)
	}
	logPath := filepath.Join(n.Dir, "agent.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// The agent is this very binary, re-executed inside the namespace under
	// a shell loop that restarts it.
	cmd := exec.Command("/bin/sh", "-c", agent.Supervisor, "erlab-agent", exe)
	cmd.Env = append(os.Environ(), agent.ConfigEnv+"="+cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives erlab deploy
	if err := kernel.Do(n.NetNS, cmd.Start); err != nil {
		return fmt.Errorf("node %s: start agent: %w", n.Spec.Name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap it if it dies while we run
	deadline := time.Now().Add(AgentStartTimeout)
	for {
		conn, err := DialNS(ctx, n.NetNS, agent.GRPCAddress)
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
			return fmt.Errorf("node %s: agent API not up after %s; see %s", n.Spec.Name, AgentStartTimeout, logPath)
		}
	}
}

// DialNS opens a TCP connection from inside a namespace.
func DialNS(ctx context.Context, ns, addr string) (net.Conn, error) {
	var conn net.Conn
	err := kernel.Do(ns, func() (err error) {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
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
