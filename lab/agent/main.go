package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// MaybeRun turns the calling binary into an agent when the environment
// says so, and never returns then. erlab's main and the test binaries that
// deploy routers call it first, so that whichever binary deploys a lab can
// also be its agent.
func MaybeRun() {
	path := os.Getenv(ConfigEnv)
	if path == "" {
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := readConfig(path)
	if err != nil {
		log.Error("agent: read config", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if os.Getenv(workerEnv) != "" {
		err = runSpeaker(ctx, cfg, log.With("node", cfg.Node))
	} else {
		err = supervise(ctx, cfg, log.With("node", cfg.Node, "role", "supervisor"))
	}
	if err != nil {
		log.Error("agent stopped", "err", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Restart backoff bounds for a speaker that keeps dying.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// supervise runs the speaker as a child, restarts it when it dies, and
// removes its kernel routes whenever it is gone, so that a crash leaves
// nothing stale behind.
func supervise(ctx context.Context, cfg Config, log *slog.Logger) error {
	// Pdeathsig fires when the forking thread ends, not the process: keep
	// this goroutine on one thread for the supervisor's whole life.
	runtime.LockOSThread()
	st := Status{PID: os.Getpid(), Started: time.Now().UTC()}
	backoff := minBackoff
	for {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), workerEnv+"=1")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		// The speaker dies with us, whatever kills us.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		started := time.Now()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start speaker: %w", err)
		}
		st.SpeakerPID = cmd.Process.Pid
		writeStatus(cfg.Dir, st)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-ctx.Done():
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			flushRoutes(log)
			return nil
		case err := <-done:
			// The speaker died on its own: its routes must not outlive it.
			n := flushRoutes(log)
			st.Restarts++
			st.LastExit, st.LastExitAt, st.SpeakerPID = exitReason(err), time.Now().UTC(), 0
			writeStatus(cfg.Dir, st)
			log.Error("speaker died; routes flushed; restarting", "exit", st.LastExit, "routes", n, "in", backoff)
			if time.Since(started) > 2*maxBackoff {
				backoff = minBackoff
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

func exitReason(err error) string {
	if err == nil {
		return "exited"
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
	}
	return err.Error()
}
