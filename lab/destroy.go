package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/erlab-dev/erlab/lab/kernel"
)

// StopGrace is how long processes in a lab's namespaces get to exit after
// SIGTERM before they are killed.
const StopGrace = 3 * time.Second

// DestroyReport says what Destroy removed.
type DestroyReport struct {
	Lab        string
	Namespaces int
	Processes  int
	StateDir   bool
}

// Destroy removes everything of the named lab: the processes in its
// namespaces, the namespaces (and with them every link and device in them),
// and its state directory. It finds all of it by name, so it works for a lab
// whose deploy was killed half-way or whose state directory is gone, and it
// is idempotent: destroying nothing is not an error.
func Destroy(ctx context.Context, name string, opts Options) error {
	_, err := destroy(ctx, name, opts)
	return err
}

// DestroyWithReport is Destroy, returning what was removed.
func DestroyWithReport(ctx context.Context, name string, opts Options) (DestroyReport, error) {
	return destroy(ctx, name, opts)
}

func destroy(ctx context.Context, name string, opts Options) (DestroyReport, error) {
	rep := DestroyReport{Lab: name}
	log := opts.log().With("lab", name)
	nss, err := kernel.NetNSList(labNetNSPrefix(name))
	if err != nil {
		return rep, err
	}
	pids, err := kernel.PIDsIn(nss)
	if err != nil {
		return rep, err
	}
	var all []int
	for _, p := range pids {
		all = append(all, p...)
	}
	rep.Processes = len(all)
	if len(all) > 0 {
		log.Info("stopping processes", "count", len(all))
		stopProcesses(ctx, all)
	}
	var errs []error
	for _, ns := range nss {
		if err := kernel.NetNSDel(ns); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Namespaces++
	}
	dir := opts.labDir(name)
	if _, err := os.Stat(dir); err == nil {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
		} else {
			rep.StateDir = true
		}
	}
	log.Info("lab destroyed", "namespaces", rep.Namespaces, "processes", rep.Processes)
	return rep, errors.Join(errs...)
}

// stopProcesses sends SIGTERM, waits up to StopGrace for the processes to go,
// then kills what is left.
func stopProcesses(ctx context.Context, pids []int) {
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(StopGrace)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		alive := 0
		for _, pid := range pids {
			if processAlive(pid) {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processAlive reports whether pid still runs (a zombie no longer counts:
// it holds no namespace).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return b[i+2] != 'Z' && b[i+2] != 'X'
		}
	}
	return true
}

// DestroyAll destroys every lab that has anything on this host.
func DestroyAll(ctx context.Context, opts Options) ([]DestroyReport, error) {
	names, err := Deployed(opts)
	if err != nil {
		return nil, err
	}
	var reps []DestroyReport
	var errs []error
	for _, n := range names {
		rep, err := destroy(ctx, n, opts)
		reps = append(reps, rep)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return reps, errors.Join(errs...)
}
