// Package capture is erlab's one way to capture what crosses an interface
// of a node: tcpdump, started inside the node's namespace, which returns
// once tcpdump says it is listening (never after a guessed sleep); the
// pcap it writes, read back with gopacket's pcapgo; and the marked flow
// that verify encryption sends through a link or tunnel while it captures.
// verify, erlab capture and the tests all use it.
package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/erlab-dev/erlab/lab/kernel"
)

// Options say what to capture and where it goes.
type Options struct {
	Iface string
	// File is the pcap file to write. Without it, the pcap goes to Out
	// (tcpdump -w -), or, without Out either, tcpdump's text to Text.
	File string
	Out  io.Writer
	Text io.Writer
	// Count stops the capture after so many frames (tcpdump -c).
	Count int
	// Direction is "in" or "out" to keep one direction only (tcpdump -Q).
	Direction string
	// Filter is a pcap filter expression, as words.
	Filter []string
	// LinkHeaders prints each frame's link-level header in tcpdump's text
	// (-e): its VLAN tags and EtherTypes.
	LinkHeaders bool
}

// StartTimeout bounds how long Start waits for tcpdump to listen: under
// the microVM's emulated CPU it takes a second or two.
const StartTimeout = 20 * time.Second

// Capture is a running tcpdump.
type Capture struct {
	opts   Options
	cmd    *exec.Cmd
	stderr bytes.Buffer
	mu     sync.Mutex
	done   chan struct{}
	err    error
}

// Start runs tcpdump on an interface inside the named namespace and
// returns once it is listening. tcpdump's own options: -n (no names), -U
// and --immediate-mode (each packet written as it arrives: without them
// packets reach tcpdump a ring block at a time, and those still in the
// ring when it stops are lost), -s 0 (whole frames), -Z root (it would
// otherwise write the file as user tcpdump, who may not enter the
// directory).
func Start(ctx context.Context, ns string, o Options) (*Capture, error) {
	args := []string{"-i", o.Iface, "-n", "-U", "--immediate-mode", "-s", "0", "-Z", "root"}
	if o.Count > 0 {
		args = append(args, "-c", strconv.Itoa(o.Count))
	}
	if o.Direction != "" {
		args = append(args, "-Q", o.Direction)
	}
	if o.LinkHeaders {
		args = append(args, "-e")
	}
	c := &Capture{opts: o, done: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, "tcpdump")
	switch {
	case o.File != "":
		args = append(args, "-w", o.File)
	case o.Out != nil:
		args = append(args, "-w", "-")
		c.cmd.Stdout = o.Out
	default:
		args = append(args, "-l")
		c.cmd.Stdout = o.Text
	}
	c.cmd.Args = append(append(c.cmd.Args, args...), o.Filter...)
	c.cmd.Cancel = func() error { return c.cmd.Process.Signal(os.Interrupt) } // tcpdump flushes and exits
	errPipe, err := c.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := kernel.Do(ns, c.cmd.Start); err != nil {
		return nil, fmt.Errorf("tcpdump on %s: %w", o.Iface, err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errPipe)
		once := sync.Once{}
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if strings.Contains(sc.Text(), "listening on") {
				once.Do(func() { close(listening) })
			}
		}
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	select {
	case <-listening:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("tcpdump on %s ended before listening: %s", o.Iface, strings.TrimSpace(c.Stderr()))
	case <-time.After(StartTimeout):
		c.cmd.Process.Kill()
		<-c.done
		return nil, fmt.Errorf("tcpdump on %s not listening after %s", o.Iface, StartTimeout)
	}
}

// Stderr is what tcpdump printed on stderr so far.
func (c *Capture) Stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// Wait waits until tcpdump ends by itself (Count reached) or its context
// is done.
func (c *Capture) Wait() error {
	<-c.done
	// Interrupted (Stop, or its context), tcpdump says how many packets it
	// captured and exits; anything else is a failure of its own.
	if c.err != nil && !strings.Contains(c.Stderr(), "packets captured") {
		return fmt.Errorf("tcpdump on %s: %v: %s", c.opts.Iface, c.err, strings.TrimSpace(c.Stderr()))
	}
	return nil
}

// Stop ends the capture: tcpdump flushes what it has and exits.
func (c *Capture) Stop() error {
	select {
	case <-c.done:
	default:
		c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
	}
	return nil
}

// WaitFrames waits, up to timeout, until the capture file holds at least n
// frames that match (all frames when match is nil), and returns the file's
// frames then. It polls the file tcpdump writes packet by packet: the
// frames of a flow just sent reach it a moment later.
func (c *Capture) WaitFrames(ctx context.Context, n int, match func([]byte) bool, timeout time.Duration) ([][]byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		frames, err := ReadFile(c.opts.File)
		got := 0
		for _, f := range frames {
			if match == nil || match(f) {
				got++
			}
		}
		if err == nil && got >= n || time.Now().After(deadline) {
			return frames, err
		}
		select {
		case <-ctx.Done():
			return frames, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Settle waits, up to timeout, until the capture file has not grown for
// quiet: the last frames of what was just sent (replies, retransmissions)
// are in, and nothing more is coming. It polls the file's size.
func (c *Capture) Settle(ctx context.Context, quiet, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	size, since := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		if st, err := os.Stat(c.opts.File); err == nil && st.Size() != size {
			size, since = st.Size(), time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ReadFile reads the frames of a pcap file (tcpdump -w). A file cut short
// (tcpdump still writing) gives the frames that are whole.
func ReadFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil // not even a header yet
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var frames [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return frames, nil
			}
			return frames, fmt.Errorf("%s: %w", path, err)
		}
		frames = append(frames, data)
	}
}
