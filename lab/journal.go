package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// journalFile is the lab's journal of what erlab did to it — a link
// pulled, an impairment set, a drill's steps and result — one Event per
// line, in the lab's state directory (mode 0600: nothing in it is secret,
// but nothing of a lab's is world-readable). erlab events follows it.
const journalFile = "events.jsonl"

// journalPoll is how often a follower looks for new lines.
const journalPoll = 100 * time.Millisecond

// Record appends an event to the lab's journal; a lab that is not deployed
// (no state directory) records nothing. A journal that cannot be written
// costs the event, never the action it records.
func (l *Lab) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if _, err := os.Stat(l.Dir()); err != nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	// One write of a whole line with O_APPEND: lines of processes
	// recording at once do not interleave.
	f, err := os.OpenFile(filepath.Join(l.Dir(), journalFile), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		l.Log().Debug("journal", "err", err)
		return
	}
	defer f.Close()
	f.Write(append(b, '\n'))
}

// tailJournal opens the journal at its end now and returns what follows
// it until ctx is done, emitting each event recorded from then on.
func (l *Lab) tailJournal(ctx context.Context, emit func(Event)) (func() error, error) {
	path := filepath.Join(l.Dir(), journalFile)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		defer f.Close()
		r := bufio.NewReader(f)
		var partial strings.Builder
		for {
			line, err := r.ReadString('\n')
			partial.WriteString(line)
			switch {
			case err == nil:
				var e Event
				if json.Unmarshal([]byte(partial.String()), &e) == nil {
					emit(e)
				}
				partial.Reset()
				continue
			case !errors.Is(err, io.EOF):
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(journalPoll):
			}
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return nil // the lab was destroyed
			}
		}
	}, nil
}
