package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// status draws kind-style progress on stderr: a spinner while a step runs
// on a terminal, then " ✓ step (0.12s)" or " ✗ step"; plain " • step"
// lines when stderr is not a terminal.
type status struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	msg   string
	start time.Time
	stop  chan struct{}
	done  chan struct{}
}

func newStatus(w io.Writer) *status {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &status{w: w, tty: tty}
}

func (s *status) Start(msg string) {
	s.End(true) // a step left open ends as done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msg, s.start = msg, time.Now()
	if !s.tty {
		fmt.Fprintf(s.w, " • %s\n", msg)
		return
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.spin(msg, s.stop, s.done)
}

func (s *status) spin(msg string, stop, done chan struct{}) {
	defer close(done)
	frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		fmt.Fprintf(s.w, "\r %c %s ", frames[i%len(frames)], msg)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (s *status) End(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.msg == "" {
		return
	}
	if s.stop != nil {
		close(s.stop)
		<-s.done
		s.stop = nil
		fmt.Fprint(s.w, "\r\033[K")
	}
	mark := "✓"
	if !ok {
		mark = "✗"
	}
	if s.tty || !ok {
		fmt.Fprintf(s.w, " %s %s (%s)\n", mark, s.msg, time.Since(s.start).Round(time.Millisecond))
	}
	s.msg = ""
}

// quietStatus shows nothing (-q).
type quietStatus struct{}

func (quietStatus) Start(string) {}
func (quietStatus) End(bool)     {}
