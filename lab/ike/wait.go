package ike

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// RekeySA makes a node's charon rekey a connection's CHILD SA, or its IKE SA
// when ike is set (vici rekey child=NAME or ike=NAME, as swanctl --rekey
// --child NAME does). The new SA is installed before the old one is
// deleted, so no packet is lost. It returns once charon has queued the
// exchange.
func RekeySA(n Node, conn string, ike bool) error {
	if _, ok := n.conn(conn); !ok {
		return fmt.Errorf("%s: no connection %q", n.label(), conn)
	}
	what := "CHILD SA"
	if ike {
		what = "IKE SA"
	}
	ctx, cancel := context.WithTimeout(context.Background(), viciTimeout)
	defer cancel()
	c, err := dial(ctx, n)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.rekey(ctx, conn, ike); err != nil {
		return fmt.Errorf("%s: rekey the %s of %s: %w", n.label(), what, conn, err)
	}
	return nil
}

// Timing of WaitEstablished; variables so that tests can change them.
var (
	// pollInterval is how often WaitEstablished looks at the SAs and the
	// log without an event. The SA coming up, going down or being
	// rekeyed raises one (ike-updown, child-updown, ike-rekey,
	// child-rekey) and is seen at once; what goes wrong mostly raises
	// none: an IKE SA that fails before it is established (a refused
	// proposal, a failed authentication, a peer that does not answer) is
	// destroyed without ike-updown, and only the log says why.
	pollInterval = 500 * time.Millisecond
	// reinitiateAfter is how long an initiating end may have no IKE SA at
	// all before WaitEstablished initiates again: charon gives up for
	// good on an answer such as NO_PROPOSAL_CHOSEN, which a peer whose
	// charon is up but has not loaded its connections yet sends.
	reinitiateAfter = 2 * time.Second
)

// updown are the events after which WaitEstablished looks again at once.
var updown = []string{"ike-updown", "child-updown", "ike-rekey", "child-rekey"}

// logHint is a log line's marker and what it means.
type logHint struct{ marker, why string }

// authFailures are the log lines that mean the two ends do not agree on the
// pre-shared key.
var authFailures = []logHint{
	{"received AUTHENTICATION_FAILED notify error", "the peer rejected this end's authentication: the pre-shared keys differ (or the peer expects another identity)"},
	{"but MAC mismatched", "the peer's authentication did not verify with this end's pre-shared key: the pre-shared keys differ"},
	{"no shared key found for", "this end has no pre-shared key for the identities the peer uses"},
}

// timeoutHints are log lines that explain a connection that does not come
// up, and what they mean.
var timeoutHints = []logHint{
	{"NO_PROPOSAL_CHOSEN", "the two ends share no proposal (both need the same Algorithm), or the peer had not loaded the connection yet"},
	{"received proposals unacceptable", "the initiator's proposals match none of this end's (both need the same Algorithm)"},
	{"no IKE config found", "the peer's connection does not match this end's outer addresses"},
	{"giving up after", "the peer does not answer (not started, wrong address, or IKE blocked on the way)"},
	{"TS_UNACCEPTABLE", "the traffic selectors of the two ends do not match"},
}

// WaitEstablished waits until a connection's CHILD SA is installed, under an
// established IKE SA. An initiating end that has no IKE SA for a while (its
// charon gave up, on an error the peer sent or on a failed authentication)
// is told to initiate again. It fails at once when, during the wait,
// charon logs a failed authentication for the connection, and after
// timeout (0: only ctx bounds the wait) with the state of the IKE SA and
// the connection's last log lines.
func WaitEstablished(ctx context.Context, n Node, conn string, timeout time.Duration) error {
	c, ok := n.conn(conn)
	if !ok {
		return fmt.Errorf("%s: no connection %q", n.label(), conn)
	}
	f := filesOf(n)
	label := fmt.Sprintf("%s: connection %s", n.label(), conn)
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	logFrom := fileSize(f.log)
	var last ConnInfo
	var lastErr error
	var missingSince, initiated time.Time
	start := time.Now()
	// Events of the connection, while charon's vici socket answers; the
	// watch is made again after a restart of charon closed it.
	var w *watcher
	defer func() { w.Close() }()
	for {
		if w == nil {
			// Before the look at the SAs: a change after the look
			// is an event.
			w, _ = watch(ctx, n, conn, updown...)
		}
		infos, err := Status(n)
		lastErr = err
		if err != nil {
			if _, ok := running(f); !ok {
				return fmt.Errorf("%s: charon is not running: Start it first", label)
			}
		}
		if err == nil {
			last = infos[indexOf(n, conn)]
			if last.Established() {
				return nil
			}
		}
		lines, size := logLines(f.log, logFrom, conn, "")
		if size < logFrom { // a new log: charon was started again
			logFrom = 0
		}
		for _, l := range lines {
			for _, af := range authFailures {
				if strings.Contains(l, af.marker) {
					return fmt.Errorf("%s: IKE authentication failed: %s; charon's log: %s", label, af.why, strings.TrimSpace(l))
				}
			}
		}
		if c.Initiator && err == nil && len(last.IKE) == 0 {
			if missingSince.IsZero() {
				missingSince = time.Now()
			}
			if time.Since(missingSince) >= reinitiateAfter && time.Since(initiated) >= reinitiateAfter {
				initiated = time.Now()
				// charon answers at once (timeout -1); the next looks
				// see the outcome. An error (charon just stopped) shows
				// in the next look too.
				initiate(ctx, n, conn)
				continue
			}
		} else {
			missingSince = time.Time{}
		}
		if !w.pause(ctx, pollInterval) {
			w.Close()
			w = nil
		}
		if ctx.Err() != nil {
			state := describe(last, c.Initiator)
			if lastErr != nil {
				state = lastErr.Error()
			}
			all, _ := logLines(f.log, 0, conn, c.Remote.String())
			for _, h := range slices.Concat(authFailures, timeoutHints) {
				if slices.ContainsFunc(all, func(l string) bool { return strings.Contains(l, h.marker) }) {
					state += "; charon's log says " + h.marker + ": " + h.why
					break
				}
			}
			if len(all) > 12 {
				all = all[len(all)-12:]
			}
			return fmt.Errorf("%s: not established after %s: %s; last log lines for it (%s):\n%s",
				label, time.Since(start).Round(time.Millisecond), state, f.log, strings.Join(all, "\n"))
		}
	}
}

// initiate makes a node's charon initiate a connection, without waiting for
// the outcome.
func initiate(ctx context.Context, n Node, conn string) error {
	ictx, cancel := context.WithTimeout(ctx, viciTimeout)
	defer cancel()
	c, err := dial(ictx, n)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.initiate(ictx, conn)
}

func indexOf(n Node, conn string) int {
	for i, c := range n.Conns {
		if c.Name == conn {
			return i
		}
	}
	return -1
}

// describe says where a connection stands, for WaitEstablished's errors.
func describe(ci ConnInfo, initiator bool) string {
	ike, child := ci.Active()
	if ike == nil {
		if initiator {
			return "no IKE SA (initiating end: its attempts failed or got no answer)"
		}
		return "no IKE SA (responding end: the initiator has not set one up)"
	}
	s := "IKE SA " + ike.State
	if len(ike.Tasks) > 0 {
		s += " (in progress: " + strings.Join(ike.Tasks, " ") + ")"
	}
	if child == nil {
		return s + ", no CHILD SA"
	}
	return s + ", CHILD SA " + child.State
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logLines returns the lines of charon's log from offset on that are about
// a connection, and the log's size. The filelog names the IKE SA's
// connection as <NAME|N> once charon knows it. Before that (IKE_SA_INIT on
// the responding end) a line has only <N>: with peer given, the lines of
// the IKE SAs whose lines mention the peer's address are returned too.
func logLines(path string, offset int64, conn, peer string) ([]string, int64) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, 0
	}
	if st.Size() < offset {
		return nil, st.Size()
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		return nil, st.Size()
	}
	b, _ := io.ReadAll(fh)
	lines := strings.Split(string(b), "\n")
	// The unnamed IKE SAs ("<3>") that talked to the peer.
	unnamed := func(l string) string {
		i := strings.Index(l, "> ")
		j := strings.LastIndex(l[:max(i, 0)], "<")
		if i < 0 || j < 0 || strings.ContainsAny(l[j+1:i], "|<") {
			return ""
		}
		return l[j : i+1]
	}
	peers := map[string]bool{}
	if peer != "" {
		for _, l := range lines {
			if id := unnamed(l); id != "" && strings.Contains(l, peer) {
				peers[id] = true
			}
		}
	}
	var out []string
	tag := "<" + conn + "|"
	for _, l := range lines {
		if strings.Contains(l, tag) || peers[unnamed(l)] {
			out = append(out, l)
		}
	}
	return out, st.Size()
}
