package bgp

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
export ERLAB_HELPER=` + HelperName + `
while :; do
  ` + restartsEnv + `=$n ` + lastExitEnv + `="$last" "$1"
  rc=$?
  [ $rc = 0 ] && exit 0
  n=$((n + 1)) last="exit status $rc"
  [ $rc -gt 128 ] && last="killed by signal $((rc - 128))"
  ` + flushEnv + `="$last" ` + restartsEnv + `=$n "$1"
  sleep 1
done`

// HelperName is the agent, as ERLAB_HELPER names it.
const HelperName = "bgp-agent"

// Helpers implements feature.HelperHook: the erlab binary (or a test
// binary that deploys routers) is re-executed as the agent's speaker, or,
// after a speaker died, as the one-shot that flushes its routes.
func (Feature) Helpers() map[string]func() int { return map[string]func() int{HelperName: runAgent} }

func runAgent() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := readConfig(os.Getenv(ConfigEnv))
	if err != nil {
		log.Error("agent: read config", "err", err)
		return 2
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
		return 0
	}
	writeStatus(cfg.Dir, st)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err = runSpeaker(ctx, cfg, log); err != nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}
