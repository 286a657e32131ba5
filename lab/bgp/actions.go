package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/supervise"
)

// What a drill (or an operator) does to a live router's sessions: the
// operations of `gobgp neighbor ADDR reset|disable|enable`, through the
// agent's API, and the crash of the speaker itself.

// peers returns the neighbour addresses an action names on a node: the
// one given, or every one of the node's when addr is invalid.
func peers(l feature.Lab, node string, addr netip.Addr) ([]string, error) {
	if addr.IsValid() {
		return []string{addr.String()}, nil
	}
	nbs, err := Neighbors(context.Background(), l, node)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, nb := range nbs {
		out = append(out, nb.Address)
	}
	return out, nil
}

// Reset hard-resets a node's session with a neighbour, or all of its
// sessions: the connection is closed with a Cease notification, the
// routes learnt over it withdrawn, and the session starts again.
func Reset(ctx context.Context, l feature.Lab, node string, addr netip.Addr) error {
	return onPeers(ctx, l, node, addr, func(c api.GoBgpServiceClient, a string) error {
		_, err := c.ResetPeer(ctx, &api.ResetPeerRequest{Address: a, Communication: "erlab: reset"})
		return err
	})
}

// Shutdown administratively shuts sessions down (Cease, Administrative
// Shutdown, with msg as its RFC 8203 communication); they stay down until
// Enable.
func Shutdown(ctx context.Context, l feature.Lab, node string, addr netip.Addr, msg string) error {
	return onPeers(ctx, l, node, addr, func(c api.GoBgpServiceClient, a string) error {
		_, err := c.DisablePeer(ctx, &api.DisablePeerRequest{Address: a, Communication: msg})
		return err
	})
}

// Enable brings administratively shut sessions back.
func Enable(ctx context.Context, l feature.Lab, node string, addr netip.Addr) error {
	return onPeers(ctx, l, node, addr, func(c api.GoBgpServiceClient, a string) error {
		_, err := c.EnablePeer(ctx, &api.EnablePeerRequest{Address: a})
		return err
	})
}

func onPeers(ctx context.Context, l feature.Lab, node string, addr netip.Addr, fn func(api.GoBgpServiceClient, string) error) error {
	addrs, err := peers(l, node, addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, AgentCallTimeout)
	defer cancel()
	c, done, err := client(ctx, l, node)
	if err != nil {
		return err
	}
	defer done()
	for _, a := range addrs {
		if err := fn(c, a); err != nil {
			return fmt.Errorf("node %s: neighbour %s: %w", node, a, err)
		}
	}
	return nil
}

// KillSpeaker kills a node's GoBGP speaker with SIGKILL, as a crash
// would: its sessions die without a notification (the kernel resets the
// connections), and its supervisor starts it again a second later. It
// returns the PID it killed.
func KillSpeaker(l feature.Lab, node string) (int, error) {
	st, err := ReadStatus(l.NodeDir(node))
	if err != nil {
		return 0, fmt.Errorf("node %s runs no BGP agent: %w", node, err)
	}
	if st.SpeakerPID == 0 || !kernel.ProcessAlive(st.SpeakerPID) {
		return 0, fmt.Errorf("node %s: its speaker is not running (restarting?)", node)
	}
	// The PID must still be the node's speaker: inside the node's namespace.
	ns, err := l.NetNS(node)
	if err != nil {
		return 0, err
	}
	var mine, theirs syscall.Stat_t
	if err := syscall.Stat(kernel.NetNSPath(ns), &mine); err != nil {
		return 0, err
	}
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", st.SpeakerPID), &theirs); err != nil || theirs.Ino != mine.Ino {
		return 0, fmt.Errorf("node %s: process %d is no longer its speaker", node, st.SpeakerPID)
	}
	p, err := os.FindProcess(st.SpeakerPID)
	if err != nil {
		return 0, err
	}
	return st.SpeakerPID, p.Signal(syscall.SIGKILL)
}

// StopAgent stops a router's speaker the orderly way, as an operator
// stops a BGP daemon: its supervisor sends it SIGTERM, GoBGP closes every
// session with a Cease notification, the agent takes its routes out of
// the kernel, and the supervisor holds it down until StartAgent. It
// returns once the speaker is gone.
func StopAgent(ctx context.Context, l feature.Lab, node string) error {
	st, err := signalSupervisor(l, node, syscall.SIGUSR1)
	if err != nil {
		return err
	}
	return waitStatus(ctx, l, node, func(s Status) bool {
		return s.SpeakerPID == 0 && !kernel.ProcessAlive(st.SpeakerPID)
	}, "its speaker stopped")
}

// StartAgent starts a router's speaker that StopAgent stopped, and
// returns once it runs (its sessions then come up on their own).
func StartAgent(ctx context.Context, l feature.Lab, node string) error {
	if _, err := signalSupervisor(l, node, syscall.SIGUSR2); err != nil {
		return err
	}
	return waitStatus(ctx, l, node, func(s Status) bool {
		return s.SpeakerPID != 0 && kernel.ProcessAlive(s.SpeakerPID)
	}, "its speaker running again")
}

// signalSupervisor signals a router's agent supervisor, once it is sure
// the PID is still that supervisor.
func signalSupervisor(l feature.Lab, node string, sig syscall.Signal) (Status, error) {
	st, err := ReadStatus(l.NodeDir(node))
	if err != nil {
		return st, fmt.Errorf("node %s runs no BGP agent: %w", node, err)
	}
	if _, ok := supervise.Of(st.PID); !ok {
		return st, fmt.Errorf("node %s: its agent's supervisor (PID %d) is not running", node, st.PID)
	}
	p, err := os.FindProcess(st.PID)
	if err != nil {
		return st, err
	}
	return st, p.Signal(sig)
}

// waitStatus polls a router's agent status until cond holds (10 s at most).
func waitStatus(ctx context.Context, l feature.Lab, node string, cond func(Status) bool, what string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := ReadStatus(l.NodeDir(node)); err == nil && cond(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: not %s within 10 s", node, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
