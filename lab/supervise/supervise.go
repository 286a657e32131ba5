// Package supervise is erlab's one process supervisor, in place of a shell
// loop per kind of service: the erlab binary, re-executed as the helper
// "supervise" inside a node's namespace, runs a service — the same binary
// as another helper (a routing agent, an MKA keeper), or a daemon such as
// strongSwan's charon — and starts it again
// a second after it exits with an error, until it exits cleanly or the
// supervisor is told to stop (SIGTERM, which it passes on). The service
// learns how many times it was restarted and why it last stopped from its
// environment (RestartsEnv, LastExitEnv); a service that must clean up
// after a crash (the agent flushes a dead speaker's routes) is run once
// with CrashedEnv set before it restarts.
//
// SIGUSR1 stops the service (SIGTERM, as for the supervisor's own stop)
// and holds it down; SIGUSR2 starts it again: a drill's agent-stop and
// agent-start.
package supervise

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HelperName is the supervisor, as ERLAB_HELPER names it.
const HelperName = "supervise"

// The environment of the supervisor and of its service.
const (
	specEnv     = "ERLAB_SUPERVISE"            // the supervisor's Spec, as JSON
	helperEnv   = "ERLAB_HELPER"               // the helper a binary is re-executed as
	RestartsEnv = "ERLAB_SUPERVISE_RESTARTS"   // how many times the service was restarted
	LastExitEnv = "ERLAB_SUPERVISE_LAST_EXIT"  // how it last stopped: "exit status 2", "killed by signal 9"
	CrashedEnv  = "ERLAB_SUPERVISE_CRASHED"    // set (to how it stopped) for the run after a crash
	Backoff     = time.Second                  // between a crash and the restart
	stopGrace   = 5 * time.Second              // for the service to go after SIGTERM
	pidEnv      = "ERLAB_SUPERVISE_SUPERVISOR" // the supervisor's PID, for the service's status
)

// Spec is a service to supervise: a helper of the erlab binary, or
// another program (strongSwan's charon).
type Spec struct {
	// Helper is the helper the service is (ERLAB_HELPER of the binary).
	Helper string `json:"helper,omitempty"`
	// Argv, instead, is a program to run.
	Argv []string `json:"argv,omitempty"`
	// Env is added to the service's environment (KEY=VALUE): never a key.
	Env []string `json:"env,omitempty"`
	// BaseEnv, when set, is the environment the supervisor (and so the
	// service) starts from instead of the caller's.
	BaseEnv []string `json:"-"`
	// PIDFile, when set, gets each run's PID (a daemon that writes none).
	PIDFile string `json:"pid_file,omitempty"`
	// AfterCrash runs the service once with CrashedEnv set after it
	// stops with an error, before it restarts.
	AfterCrash bool `json:"after_crash,omitempty"`
}

// Name is the service's, for process names and logs.
func (s Spec) Name() string {
	if s.Helper != "" {
		return s.Helper
	}
	if len(s.Argv) > 0 {
		return filepath.Base(s.Argv[0])
	}
	return ""
}

// Arg0 is the supervisor's process name (its argv[0]), by which a stop
// can tell it from another process that got its PID since.
func (s Spec) Arg0() string { return "erlab-supervise-" + s.Name() }

// Of reads the Spec of a running supervisor from its environment
// (/proc/PID/environ); false when pid is no supervisor.
func Of(pid int) (Spec, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return Spec{}, false
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, specEnv+"="); ok {
			var s Spec
			return s, json.Unmarshal([]byte(v), &s) == nil
		}
	}
	return Spec{}, false
}

// Command is the supervisor of spec as a command to start: the calling
// binary re-executed, its output to log. Start it inside the node's
// namespace (kernel.Do), in a session of its own so that it outlives the
// deploy.
func Command(spec Spec, log *os.File) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Args[0] = spec.Arg0()
	base := spec.BaseEnv
	if base == nil {
		base = os.Environ()
	}
	cmd.Env = append(slices.Clip(base), helperEnv+"="+HelperName, specEnv+"="+string(b))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, nil
}

// SupervisorPID is, in a supervised service, its supervisor's PID.
func SupervisorPID() int { pid, _ := strconv.Atoi(os.Getenv(pidEnv)); return pid }

// Restarts and LastExit are, in a supervised service, what its supervisor
// says of its earlier runs.
func Restarts() int    { n, _ := strconv.Atoi(os.Getenv(RestartsEnv)); return n }
func LastExit() string { return os.Getenv(LastExitEnv) }
func Crashed() string  { return os.Getenv(CrashedEnv) }
func Supervised() bool { return os.Getenv(pidEnv) != "" }
func (s Spec) valid() bool {
	return (s.Helper != "") != (len(s.Argv) > 0) && s.Helper != HelperName
}

// Run is the supervisor helper: it runs the service its environment names
// until the service exits cleanly or the supervisor gets SIGTERM or
// SIGINT, and returns the exit status.
func Run() int {
	// A supervisor runs beside every router and keeper and mostly waits:
	// one thread, and the garbage of the binary's package initialisation
	// (GoBGP's, gRPC's) handed back to the kernel at once.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(10)
	debug.FreeOSMemory()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var spec Spec
	if err := json.Unmarshal([]byte(os.Getenv(specEnv)), &spec); err != nil || !spec.valid() {
		log.Error("supervise: no service to run", "env", specEnv, "err", err)
		return 2
	}
	log = log.With("service", spec.Name())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	pause, resume := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(pause, syscall.SIGUSR1)
	signal.Notify(resume, syscall.SIGUSR2)
	// held waits, once the service is down on request, for SIGUSR2 (true)
	// or the supervisor's own stop (false).
	held := func() bool {
		log.Info("service stopped on request; held down until SIGUSR2")
		select {
		case <-resume: // one sent before the stop counts for nothing
		default:
		}
		select {
		case <-resume:
			log.Info("service started again on request")
			return true
		case <-stop:
			return false
		}
	}
	exe, err := os.Executable()
	if err != nil {
		log.Error("supervise", "err", err)
		return 2
	}
	env := func(extra ...string) []string {
		out := make([]string, 0, len(os.Environ())+len(spec.Env)+len(extra)+2)
		for _, e := range os.Environ() {
			if !hasKey(e, specEnv, helperEnv) {
				out = append(out, e)
			}
		}
		out = append(out, spec.Env...)
		if spec.Helper != "" {
			out = append(out, helperEnv+"="+spec.Helper)
		}
		out = append(out, pidEnv+"="+strconv.Itoa(os.Getpid()))
		return append(out, extra...)
	}
	command := func() *exec.Cmd {
		if len(spec.Argv) > 0 {
			return exec.Command(spec.Argv[0], spec.Argv[1:]...)
		}
		cmd := exec.Command(exe)
		cmd.Args[0] = "erlab-" + spec.Helper
		return cmd
	}
	restarts, last := 0, ""
	for {
		cmd := command()
		cmd.Env = env(RestartsEnv+"="+strconv.Itoa(restarts), LastExitEnv+"="+last)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			log.Error("supervise: start", "err", err)
			return 1
		}
		if spec.PIDFile != "" {
			if err := writePID(spec.PIDFile, cmd.Process.Pid); err != nil {
				log.Error("supervise: pid file", "err", err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		terminate := func(sig os.Signal) {
			cmd.Process.Signal(sig)
			select {
			case <-done:
			case <-time.After(stopGrace):
				cmd.Process.Kill()
				<-done
			}
		}
		var werr error
		select {
		case werr = <-done:
		case sig := <-stop:
			terminate(sig)
			return 0
		case <-pause:
			terminate(syscall.SIGTERM)
			if !held() {
				return 0
			}
			last = "stopped on request"
			continue
		}
		if werr == nil {
			return 0 // done
		}
		last = exitText(werr)
		restarts++
		log.Error("service stopped; restarting it", "exit", last, "restarts", restarts)
		if spec.AfterCrash {
			after := command()
			after.Env = env(RestartsEnv+"="+strconv.Itoa(restarts), LastExitEnv+"="+last, CrashedEnv+"="+last)
			after.Stdout, after.Stderr = os.Stdout, os.Stderr
			if err := after.Run(); err != nil {
				log.Error("service's clean-up after the crash", "err", err)
			}
		}
		select {
		case <-time.After(Backoff):
		case <-stop:
			return 0
		case <-pause:
			if !held() {
				return 0
			}
		}
	}
}

// writePID writes a PID file whole (a reader never sees half of one).
func writePID(path string, pid int) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// exitText says how a process stopped, as a shell would.
func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d", int(ws.Signal()))
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	return err.Error()
}

func hasKey(kv string, keys ...string) bool {
	for _, k := range keys {
		if len(kv) > len(k) && kv[:len(k)+1] == k+"=" {
			return true
		}
	}
	return false
}
