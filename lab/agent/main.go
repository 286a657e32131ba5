package agent

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Supervisor is the shell loop that runs an agent's speaker ($1 is the
// erlab binary): it restarts the speaker when it dies, after having the
// binary flush the dead speaker's routes. A shell costs a fraction of a
// second Go process in memory, and every router has one.
const Supervisor = `n=0 last=
while :; do
  ` + restartsEnv + `=$n ` + lastExitEnv + `="$last" "$1"
  rc=$?
  [ $rc = 0 ] && exit 0
  n=$((n + 1)) last="exit status $rc"
  [ $rc -gt 128 ] && last="killed by signal $((rc - 128))"
  ` + flushEnv + `="$last" ` + restartsEnv + `=$n "$1"
  sleep 1
done`

// MaybeRun turns the calling binary into an agent's speaker (or, after a
// speaker died, into the one-shot that flushes its routes) when the
// environment says so, and never returns then. erlab's main and the test binaries that
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
	log = log.With("node", cfg.Node)
	restarts, _ := strconv.Atoi(os.Getenv(restartsEnv))
	st := Status{PID: os.Getppid(), SpeakerPID: os.Getpid(), Started: time.Now().UTC(), Restarts: restarts, LastExit: os.Getenv(lastExitEnv)}
	if why := os.Getenv(flushEnv); why != "" {
		// The speaker died: its routes must not outlive it.
		st.SpeakerPID, st.LastExit, st.LastExitAt = 0, why, time.Now().UTC()
		writeStatus(cfg.Dir, st)
		n := flushRoutes(log)
		log.Error("speaker died; its routes are flushed and it restarts", "exit", why, "routes", n, "restarts", restarts)
		os.Exit(0)
	}
	writeStatus(cfg.Dir, st)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err = runSpeaker(ctx, cfg, log); err != nil {
		log.Error("agent stopped", "err", err)
		os.Exit(1)
	}
	os.Exit(0)
}
