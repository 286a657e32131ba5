package lab

import (
	"context"
	"errors"
	"sync"
)

// step is one small piece of a deploy: make a namespace, a link, configure
// a node. Steps of one phase are independent and run concurrently.
type step struct {
	name string
	run  func(ctx context.Context) error
}

// phase is a titled list of steps, shown as one progress line.
type phase struct {
	title string
	steps []step
}

// runPhase runs a phase's steps on a bounded pool of workers. The first
// failure cancels the steps not yet started; every failure is returned.
func runPhase(ctx context.Context, p phase, workers int) error {
	if len(p.steps) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan step)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(workers, len(p.steps)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				if ctx.Err() != nil {
					continue
				}
				if err := s.run(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
	for _, s := range p.steps {
		work <- s
	}
	close(work)
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil { // the caller gave up
		return ctx.Err()
	}
	return errors.Join(errs...)
}
