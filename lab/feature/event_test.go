package feature

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPoll: the first read is the state (reported marked initial, or not
// at all); after it, only what changed, and what went away as gone.
func TestPoll(t *testing.T) {
	reads := [][]Event{
		{{Node: "r1", Kind: "bgp", Object: "10.0.0.2", State: "established"}, {Node: "r1", Kind: "bfd", Object: "10.0.0.2", State: "up"}},
		{{Node: "r1", Kind: "bgp", Object: "10.0.0.2", State: "established"}, {Node: "r1", Kind: "bfd", Object: "10.0.0.2", State: "up"}},
		{{Node: "r1", Kind: "bgp", Object: "10.0.0.2", State: "idle"}},
		{{Node: "r1", Kind: "bgp", Object: "10.0.0.2", State: "idle", Detail: "held down"}},
	}
	for _, initial := range []bool{true, false} {
		var mu sync.Mutex
		var got []Event
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		Poll(ctx, time.Millisecond, initial, "gone", func(e Event) { mu.Lock(); got = append(got, e); mu.Unlock() }, func(context.Context) []Event {
			if n == len(reads) {
				cancel()
				return nil
			}
			n++
			return reads[n-1]
		})
		want := []Event{
			{Node: "r1", Kind: "bgp", Object: "10.0.0.2", State: "idle"},
			{Node: "r1", Kind: "bfd", Object: "10.0.0.2", State: "gone"},
			{Node: "r1", Kind: "bgp", Object: "10.0.0.2", State: "idle", Detail: "held down"},
		}
		if initial {
			want = append([]Event{
				{Node: "r1", Kind: "bgp", Object: "10.0.0.2", State: "established", Initial: true},
				{Node: "r1", Kind: "bfd", Object: "10.0.0.2", State: "up", Initial: true},
			}, want...)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("initial %v (-want +got):\n%s", initial, d)
		}
	}
}
