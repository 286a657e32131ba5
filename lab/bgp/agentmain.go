package bgp

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/erlab-dev/erlab/lab/supervise"
)

// HelperName is the agent, as ERLAB_HELPER names it.
const HelperName = "bgp-agent"

// Helpers implements feature.HelperHook: the erlab binary (or a test
// binary that deploys routers) is re-executed, by its supervisor, as the
// agent's speaker, or, after a speaker died, as the one-shot that flushes
// its routes.
func (Feature) Helpers() map[string]func() int { return map[string]func() int{HelperName: runAgent} }

func runAgent() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := readConfig(os.Getenv(ConfigEnv))
	if err != nil {
		log.Error("agent: read config", "err", err)
		return 2
	}
	log = log.With("node", cfg.Node)
	restarts := supervise.Restarts()
	st := Status{PID: supervise.SupervisorPID(), SpeakerPID: os.Getpid(), Started: time.Now().UTC(), Restarts: restarts, LastExit: supervise.LastExit()}
	if why := supervise.Crashed(); why != "" {
		// The speaker died: its routes must not outlive it.
		st.SpeakerPID, st.LastExit, st.LastExitAt = 0, why, time.Now().UTC()
		writeStatus(cfg.Dir, st)
		n := flushRoutes(log)
		log.Error("speaker died; its routes are flushed and it restarts", "exit", why, "routes", n, "restarts", restarts)
		return 0
	}
	writeStatus(cfg.Dir, st)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err = runSpeaker(ctx, cfg, log); err != nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	// Stopped (by its supervisor, on request or at destroy): no speaker.
	st.SpeakerPID, st.LastExit, st.LastExitAt = 0, "stopped", time.Now().UTC()
	writeStatus(cfg.Dir, st)
	return 0
}
