package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/nodes"
	"golang.org/x/sync/errgroup"
)

// StopGrace is how long processes in a lab's namespaces get to exit after
// SIGTERM before they are killed.
const StopGrace = 3 * time.Second

// DestroyReport says what Destroy removed.
type DestroyReport struct {
	Lab        string
	Namespaces int
	Processes  int
	// Other counts what node kinds kept outside the lab's namespaces
	// (containers, networks) and removed.
	Other    int
	StateDir bool
}

// Destroy removes everything of the named lab (see Lab.Destroy).
func Destroy(ctx context.Context, name string, opts Options) error {
	_, err := (&Lab{name: name, opts: opts}).Destroy(ctx)
	return err
}

// DestroyWithReport is Destroy, returning what was removed.
func DestroyWithReport(ctx context.Context, name string, opts Options) (DestroyReport, error) {
	return (&Lab{name: name, opts: opts}).Destroy(ctx)
}

// Destroy removes everything of the lab: what each node kind keeps
// elsewhere (its Sweeper), the processes left in its namespaces, the
// host's ends of its host links, the namespaces (and
// with them every link and device in them), and its state directory. It
// finds all of it by name, so it works for a lab whose deploy was killed
// half-way or whose state directory is gone, and it is idempotent:
// destroying nothing is not an error.
func (l *Lab) Destroy(ctx context.Context) (DestroyReport, error) { return l.destroy(ctx, true) }

// settleFor is how long destroy watches for what a killed deploy had asked
// a runtime for and the runtime makes after it died: dockerd finishes a
// container create whose client is gone.
const settleFor = time.Second

// destroy is Destroy; settle says whether a deploy may have died with
// requests in flight (not when its own rollback calls it).
func (l *Lab) destroy(ctx context.Context, settle bool) (DestroyReport, error) {
	defer l.forget() // it removes the state
	name, opts := l.name, l.opts
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
	// What the kinds keep first: a container removed (docker rm -f)
	// ends its processes at once, where a signal to its init would wait
	// out the grace (a shell or sleep as PID 1 ignores SIGTERM).
	var errs []error
	n, err := removeHostEnds(name, "")
	rep.Other += n
	if err != nil {
		errs = append(errs, err)
	}
	sweep := func() int {
		swept := 0
		for _, k := range opts.kinds().All() {
			if s, ok := k.(nodes.Sweeper); ok {
				n, err := s.Sweep(ctx, name, log)
				swept += n
				if err != nil {
					errs = append(errs, fmt.Errorf("remove the lab's %s nodes: %w", k.Name(), err))
				}
			}
		}
		rep.Other += swept
		return swept
	}
	sweep()
	// A lab with no state, or one still deploying, may be a deploy
	// killed half-way: sweep again until nothing new has come for
	// settleFor (at most ten times that).
	if st, err := opts.readState(name); settle && (err != nil || st.Status == "deploying") {
		quiet, until := time.Now(), time.Now().Add(10*settleFor)
		for time.Since(quiet) < settleFor && time.Now().Before(until) && ctx.Err() == nil {
			time.Sleep(settleFor / 5)
			if sweep() > 0 {
				quiet = time.Now()
			}
		}
	}
	all = slices.DeleteFunc(all, func(pid int) bool { return !kernel.ProcessAlive(pid) })
	if len(all) > 0 {
		log.Info("stopping processes", "count", len(all))
		stopProcesses(ctx, all)
	}
	// The namespaces on the deploy's workers: each unmount waits for the
	// kernel, not for this process.
	var (
		mu sync.Mutex
		g  errgroup.Group
	)
	g.SetLimit(opts.workers())
	for _, ns := range nss {
		g.Go(func() error {
			err := kernel.NetNSDel(ns)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				rep.Namespaces++
			}
			return nil
		})
	}
	g.Wait()
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
	if waitGone(ctx, pids, StopGrace) {
		return
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
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
		rep, err := (&Lab{name: n, opts: opts}).Destroy(ctx)
		reps = append(reps, rep)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return reps, errors.Join(errs...)
}
