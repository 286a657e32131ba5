package probe

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAccount(t *testing.T) {
	a := newAccount(100) // 10 ms a packet
	for i, seq := range []uint64{0, 1, 2, 5, 3, 3, 9, 10, 11} {
		a.add(seq, time.Duration(i)*time.Millisecond)
	}
	got := a.report(12)
	want := Report{
		Rate: 100, Sent: 12, Received: 8, Lost: 4, Reordered: 1, Duplicated: 1,
		FirstLoss: 40 * time.Millisecond, LastLoss: 80 * time.Millisecond,
		Outage: 40 * time.Millisecond, LongestGap: 30 * time.Millisecond, MaxDelay: 8 * time.Millisecond,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	got.timeline(a, 40*time.Millisecond) // 4 packets a bucket at 100 pps
	if diff := cmp.Diff([]int{4, 4, 4}, got.TimelineSent); diff != "" {
		t.Errorf("timeline sent (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{4, 1, 3}, got.TimelineReceived); diff != "" {
		t.Errorf("timeline received (-want +got):\n%s", diff)
	}
	if none := newAccount(10).report(0); none.FirstLoss != -1 || none.Lost != 0 {
		t.Errorf("empty stream: %+v", none)
	}
}

// TestRunLoopback streams over loopback: nothing lost, everything counted,
// and packets of another run on the same port are not counted.
func TestRunLoopback(t *testing.T) {
	recv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	send, err := net.Dial("udp", recv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := net.Dial("udp", recv.LocalAddr().String())
	defer stranger.Close()
	stranger.Write(append([]byte("ERPB\x00\x00\x00\x01"), make([]byte, 16)...))
	rep, err := Run(context.Background(), Config{Rate: 500, Duration: 400 * time.Millisecond, Grace: 100 * time.Millisecond}, Conns{Send: send, Recv: recv})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 200 || rep.Received != 200 || rep.Lost != 0 || rep.Duplicated != 0 || rep.FirstLoss != -1 {
		t.Errorf("report: %+v", rep)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []Config{{Rate: -1}, {Size: 8}, {Duration: -time.Second}} {
		if err := c.defaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestDurationIsWhatWasSent: a stream stopped early reports how long it
// ran, not how long it was asked to run (a rotation's probe is asked for
// ten minutes and stopped after seconds).
func TestDurationIsWhatWasSent(t *testing.T) {
	recv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	send, err := net.Dial("udp", recv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rep, err := Run(ctx, Config{Rate: 100, Duration: 10 * time.Minute}, Conns{Send: send, Recv: recv})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Duration < 250*time.Millisecond || rep.Duration > 2*time.Second || rep.Sent > 200 {
		t.Errorf("stopped after ~300 ms: duration %s, sent %d", rep.Duration, rep.Sent)
	}
}

// TestCheckRefusesWhatUsersGive: a rate of 0 is refused, not replaced by
// the default (a user's --rate 0 once sent 1000 pps).
func TestCheckRefusesWhatUsersGive(t *testing.T) {
	for _, c := range []Config{{Rate: 0, Size: 64, Duration: time.Second}, {Rate: 1_000_000, Size: 64, Duration: time.Second}, {Rate: 10, Size: 64}} {
		if err := c.Check(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Config{Rate: 10, Size: 64, Duration: time.Second}).Check(); err != nil {
		t.Error(err)
	}
}
