package supervise_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/supervise"
)

// The test binary is its own supervisor and services, as erlab's binary
// is: ERLAB_HELPER picks which.
func TestMain(m *testing.M) {
	switch os.Getenv("ERLAB_HELPER") {
	case supervise.HelperName:
		os.Exit(supervise.Run())
	case "flaky": // fails its first run, then succeeds
		dir := os.Getenv("TEST_DIR")
		f, _ := os.OpenFile(filepath.Join(dir, "runs"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		fmt.Fprintf(f, "restarts=%d last=%q crashed=%q supervisor=%v\n", supervise.Restarts(), supervise.LastExit(), supervise.Crashed(), supervise.SupervisorPID() == os.Getppid())
		f.Close()
		if supervise.Crashed() == "" && supervise.Restarts() == 0 {
			os.Exit(3)
		}
		os.Exit(0)
	case "sleeper":
		os.WriteFile(filepath.Join(os.Getenv("TEST_DIR"), "pid"), []byte(fmt.Sprint(os.Getpid())), 0o600)
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func start(t *testing.T, spec supervise.Spec) (chan error, int) {
	t.Helper()
	log, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd, err := supervise.Command(spec, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, cmd.Process.Pid
}

// A service that fails is run once after the crash to clean up, then
// restarted, and learns both times what happened before; one that exits
// cleanly ends the supervisor.
func TestRestartsAfterACrash(t *testing.T) {
	dir := t.TempDir()
	done, _ := start(t, supervise.Spec{Helper: "flaky", Env: []string{"TEST_DIR=" + dir}, AfterCrash: true})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("supervisor: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor did not end once its service exited cleanly")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "runs"))
	want := `restarts=0 last="" crashed="" supervisor=true
restarts=1 last="exit status 3" crashed="exit status 3" supervisor=true
restarts=1 last="exit status 3" crashed="" supervisor=true
`
	if string(b) != want {
		t.Errorf("runs:\n%s\nwant:\n%s", b, want)
	}
}

// SIGTERM stops the supervisor and its service, and nothing restarts.
func TestStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	done, pid := start(t, supervise.Spec{Helper: "sleeper", Env: []string{"TEST_DIR=" + dir}})
	var child int
	deadline := time.Now().Add(10 * time.Second)
	for child == 0 {
		if b, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
			fmt.Sscan(strings.TrimSpace(string(b)), &child)
		} else if time.Now().After(deadline) {
			t.Fatal("the service never started")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("supervisor after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor did not stop on SIGTERM")
	}
	if err := syscall.Kill(child, 0); err == nil {
		t.Errorf("the service (pid %d) outlived its supervisor", child)
	}
}

// SIGUSR1 stops the service and holds it down, the supervisor staying;
// SIGUSR2 starts it again, a new process.
func TestHoldsDownOnRequest(t *testing.T) {
	dir := t.TempDir()
	done, pid := start(t, supervise.Spec{Helper: "sleeper", Env: []string{"TEST_DIR=" + dir}})
	started := func(not int) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var child int
			if b, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
				fmt.Sscan(strings.TrimSpace(string(b)), &child)
			}
			if child != 0 && child != not && syscall.Kill(child, 0) == nil {
				return child
			}
			if time.Now().After(deadline) {
				t.Fatal("the service never started")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := started(0)
	syscall.Kill(pid, syscall.SIGUSR1)
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(first, 0) == nil || isZombie(first) {
		if time.Now().After(deadline) {
			t.Fatal("the service did not stop on SIGUSR1")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Held: nothing restarts it (a crash would be back after Backoff).
	time.Sleep(supervise.Backoff + 500*time.Millisecond)
	if b, _ := os.ReadFile(filepath.Join(dir, "pid")); strings.TrimSpace(string(b)) != fmt.Sprint(first) {
		t.Fatalf("the service was started again while held: pid %s", b)
	}
	select {
	case err := <-done:
		t.Fatalf("the supervisor ended with its service held: %v", err)
	default:
	}
	syscall.Kill(pid, syscall.SIGUSR2)
	started(first)
	syscall.Kill(pid, syscall.SIGTERM)
	<-done
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

// Another program as the service: its PID in the file each run, a new one
// after a crash, and the supervisor known by its process name and spec.
func TestProgramWithPIDFile(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	spec := supervise.Spec{Argv: []string{"/bin/sleep", "60"}, PIDFile: pidFile}
	done, super := start(t, spec)
	read := func(not int) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var pid int
			if b, err := os.ReadFile(pidFile); err == nil {
				fmt.Sscan(strings.TrimSpace(string(b)), &pid)
			}
			if pid != 0 && pid != not && syscall.Kill(pid, 0) == nil {
				return pid
			}
			if time.Now().After(deadline) {
				t.Fatalf("no daemon PID other than %d", not)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := read(0)
	if got, ok := supervise.Of(super); !ok || got.PIDFile != pidFile || got.Name() != "sleep" {
		t.Errorf("supervise.Of(%d): %+v %v", super, got, ok)
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", super)); !strings.HasPrefix(string(b), spec.Arg0()+"\x00") {
		t.Errorf("supervisor's command line %q, want it named %s", b, spec.Arg0())
	}
	syscall.Kill(first, syscall.SIGKILL)
	second := read(first)
	syscall.Kill(super, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor did not stop on SIGTERM")
	}
	if syscall.Kill(second, 0) == nil {
		t.Errorf("the daemon (pid %d) outlived its supervisor", second)
	}
}
