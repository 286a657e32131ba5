// Package probe measures what a failure costs: a constant-rate UDP stream
// with sequence numbers from one namespace to another, and an account of
// what arrived — lost, reordered, duplicated, when the losses began and
// ended, and the outage they add up to (lost ÷ rate).
package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Config is one probe stream.
type Config struct {
	Rate     int           // packets per second
	Duration time.Duration // how long to send
	Size     int           // UDP payload bytes, at least HeaderSize
	Port     int           // the receiver's UDP port
	// Grace is how long the receiver waits for stragglers after the last
	// packet is sent.
	Grace time.Duration
	// Bucket, when set, adds a timeline to the report: the packets sent
	// and received in each Bucket of send time.
	Bucket time.Duration
	// Stop, when closed, ends the stream before Duration, as if it had run
	// its course: the receiver still waits Grace for stragglers (a drill
	// stops its flows when its last step is over).
	Stop <-chan struct{}
}

// HeaderSize is the probe's own header: magic, run id, sequence number and
// send time.
const HeaderSize = 4 + 4 + 8 + 8

var magic = [4]byte{'E', 'R', 'P', 'B'}

// Check refuses a configuration no stream can have: what a user gave,
// before defaults fill in what was left unset.
func (c Config) Check() error {
	switch {
	case c.Rate < 1 || c.Rate > MaxRate:
		return fmt.Errorf("rate %d pps: between 1 and %d", c.Rate, MaxRate)
	case c.Size < HeaderSize || c.Size > 65507:
		return fmt.Errorf("size %d: between %d and 65507 bytes", c.Size, HeaderSize)
	case c.Duration <= 0:
		return fmt.Errorf("duration %s: more than zero", c.Duration)
	}
	return nil
}

// MaxRate is the fastest stream: at 100,000 pps a packet leaves every 10 µs,
// about what one goroutine's timer can pace.
const MaxRate = 100_000

func (c *Config) defaults() error {
	if c.Rate == 0 {
		c.Rate = 1000
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Size == 0 {
		c.Size = 64
	}
	if c.Port == 0 {
		c.Port = 7777
	}
	if c.Grace == 0 {
		c.Grace = 500 * time.Millisecond
	}
	return c.Check()
}

// Report is what a stream measured.
type Report struct {
	Rate int `json:"rate_pps"`
	// Started is when the first packet left: FirstLoss and LastLoss count
	// from it.
	Started time.Time `json:"started"`
	// Duration is how long the stream was sent for: the configured
	// duration, or less when it was stopped early.
	Duration   time.Duration `json:"duration_ns"`
	Sent       int           `json:"sent"`
	Received   int           `json:"received"` // distinct sequence numbers
	Lost       int           `json:"lost"`
	Reordered  int           `json:"reordered"`  // arrived after a later one
	Duplicated int           `json:"duplicated"` // extra copies
	// FirstLoss and LastLoss are the send times of the first and last lost
	// packets, from the start of the stream; -1 when nothing was lost.
	FirstLoss time.Duration `json:"first_loss_ns"`
	LastLoss  time.Duration `json:"last_loss_ns"`
	// Outage is the loss-derived outage: Lost ÷ Rate.
	Outage time.Duration `json:"outage_ns"`
	// LongestGap is the longest run of consecutive losses, as time.
	LongestGap time.Duration `json:"longest_gap_ns"`
	// MaxDelay is the longest one-way delay of a packet that arrived
	// (sender and receiver share this host's clock). A packet held back
	// while a neighbour was re-resolved arrives, but late.
	MaxDelay time.Duration `json:"max_delay_ns"`
	// Timeline (with Config.Bucket): packets sent and received in each
	// bucket of send time, from Started.
	Bucket           time.Duration `json:"bucket_ns,omitempty"`
	TimelineSent     []int         `json:"timeline_sent,omitempty"`
	TimelineReceived []int         `json:"timeline_received,omitempty"`
}

func (r Report) String() string {
	s := fmt.Sprintf("sent %d, received %d, lost %d (outage %s), reordered %d, duplicated %d, max delay %s",
		r.Sent, r.Received, r.Lost, r.Outage.Round(time.Millisecond), r.Reordered, r.Duplicated, r.MaxDelay.Round(time.Microsecond))
	if r.Lost > 0 {
		s += fmt.Sprintf("; losses from %s to %s, longest gap %s", r.FirstLoss.Round(time.Millisecond),
			r.LastLoss.Round(time.Millisecond), r.LongestGap.Round(time.Millisecond))
	}
	return s
}

// Conns are the two sockets of a stream: the sender's, connected to the
// receiver, and the receiver's, bound to its address. The caller opens them
// in the namespaces it wants (see lab.Probe); Run closes them.
type Conns struct {
	Send net.Conn
	Recv net.PacketConn
}

// Run sends the stream and accounts for it. It returns when the stream and
// the grace period are over, or ctx is done (the report then covers what
// was sent).
func Run(ctx context.Context, c Config, conns Conns) (Report, error) {
	if err := c.defaults(); err != nil {
		return Report{}, err
	}
	defer conns.Send.Close()
	runID := uint32(time.Now().UnixNano())
	acct := newAccount(c.Rate)
	recvDone := make(chan error, 1)
	go func() { recvDone <- receive(conns.Recv, runID, acct) }()

	start := time.Now()
	type sendResult struct {
		n   int
		err error
	}
	sendDone := make(chan sendResult, 1)
	go func() {
		// The stream leaves from one CPU, in order, as a wire keeps it: a
		// veth takes packets in on the sending CPU's backlog, so a sender
		// that moves between CPUs can have its packets pass each other,
		// and a receiver with a replay window of 0 (link encryption) drops the
		// late one. Locked and never unlocked: the pinned thread ends
		// with this goroutine.
		runtime.LockOSThread()
		pinOneCPU(c.Port)
		n, err := send(ctx, c, conns.Send, runID)
		sendDone <- sendResult{n, err}
	}()
	sr := <-sendDone
	sent, sendErr := sr.n, sr.err
	took := time.Since(start)
	// Wait for stragglers, then stop the receiver by closing its socket.
	select {
	case <-time.After(c.Grace):
	case <-ctx.Done():
	}
	conns.Recv.Close()
	if err := <-recvDone; err != nil && !errors.Is(err, net.ErrClosed) {
		return Report{}, err
	}
	rep := acct.report(sent)
	if c.Bucket > 0 {
		rep.timeline(acct, c.Bucket)
	}
	rep.Started = start
	rep.Duration = min(took, c.Duration)
	return rep, sendErr
}

// send paces packets on a fixed schedule — packet i leaves at start + i/rate —
// so that a late wake-up is caught up rather than stretching the stream.
// pinOneCPU keeps the calling thread on one of the CPUs it may run on,
// chosen by k, so that streams spread over the CPUs.
func pinOneCPU(k int) {
	var allowed, one unix.CPUSet
	if unix.SchedGetaffinity(0, &allowed) != nil || allowed.Count() == 0 {
		return
	}
	k %= allowed.Count()
	for cpu := 0; cpu < len(allowed)*64; cpu++ {
		if allowed.IsSet(cpu) {
			if k == 0 {
				one.Set(cpu)
				unix.SchedSetaffinity(0, &one)
				return
			}
			k--
		}
	}
}

func send(ctx context.Context, c Config, conn net.Conn, runID uint32) (int, error) {
	buf := make([]byte, c.Size)
	copy(buf, magic[:])
	binary.BigEndian.PutUint32(buf[4:], runID)
	total := int(c.Duration.Seconds() * float64(c.Rate))
	interval := time.Second / time.Duration(c.Rate)
	start := time.Now()
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				return i, nil
			case <-c.Stop:
				return i, nil
			case <-time.After(d):
			}
		}
		binary.BigEndian.PutUint64(buf[8:], uint64(i))
		binary.BigEndian.PutUint64(buf[16:], uint64(time.Now().UnixNano()))
		// A send that fails (no route while a link is down) is a lost
		// packet, not an error of the probe. Nor may a send block: while a
		// neighbour is unresolved the kernel holds packets against the
		// socket's buffer, and a blocked sender would then burst late and
		// lose the schedule that FirstLoss and LastLoss are read from.
		// The bound is generous: a write is normally immediate, and a
		// deadline as short as the interval expired by itself on a slow
		// (emulated) CPU between setting it and writing.
		conn.SetWriteDeadline(time.Now().Add(max(interval, 50*time.Millisecond)))
		conn.Write(buf)
	}
	return total, nil
}

func receive(conn net.PacketConn, runID uint32, acct *account) error {
	buf := make([]byte, 65536)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if n < HeaderSize || [4]byte(buf[:4]) != magic || binary.BigEndian.Uint32(buf[4:]) != runID {
			continue // not ours
		}
		sentAt := time.Unix(0, int64(binary.BigEndian.Uint64(buf[16:])))
		acct.add(binary.BigEndian.Uint64(buf[8:]), time.Since(sentAt))
	}
}

// account keeps what the receiver saw. Only the receiving goroutine writes
// it; report reads it after that goroutine has ended.
type account struct {
	rate    int
	seen    map[uint64]bool
	highest int64
	reorder int
	dup     int
	delay   time.Duration
}

func newAccount(rate int) *account { return &account{rate: rate, seen: map[uint64]bool{}, highest: -1} }

func (a *account) add(seq uint64, delay time.Duration) {
	a.delay = max(a.delay, delay)
	if a.seen[seq] {
		a.dup++
		return
	}
	a.seen[seq] = true
	if int64(seq) < a.highest {
		a.reorder++
		return
	}
	a.highest = int64(seq)
}

func (a *account) report(sent int) Report {
	interval := time.Second / time.Duration(a.rate)
	r := Report{Rate: a.rate, Sent: sent, Reordered: a.reorder, Duplicated: a.dup, FirstLoss: -1, LastLoss: -1, MaxDelay: a.delay}
	run := 0
	for i := range sent {
		if a.seen[uint64(i)] {
			r.Received++
			run = 0
			continue
		}
		r.Lost++
		if r.FirstLoss < 0 {
			r.FirstLoss = time.Duration(i) * interval
		}
		r.LastLoss = time.Duration(i) * interval
		run++
		r.LongestGap = max(r.LongestGap, time.Duration(run)*interval)
	}
	r.Outage = time.Duration(r.Lost) * interval
	return r
}

// timeline fills the report's timeline from what the receiver saw.
func (r *Report) timeline(a *account, bucket time.Duration) {
	interval := time.Second / time.Duration(a.rate)
	r.Bucket = bucket
	for i := range r.Sent {
		b := int(time.Duration(i) * interval / bucket)
		for len(r.TimelineSent) <= b {
			r.TimelineSent = append(r.TimelineSent, 0)
			r.TimelineReceived = append(r.TimelineReceived, 0)
		}
		r.TimelineSent[b]++
		if a.seen[uint64(i)] {
			r.TimelineReceived[b]++
		}
	}
}

// ListenAddr is the receiver's bind address for a destination address.
func ListenAddr(dst netip.Addr, port int) string {
	return netip.AddrPortFrom(dst, uint16(port)).String()
}
