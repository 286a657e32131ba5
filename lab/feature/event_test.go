package feature

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPoll: the first read is the state (reported marked initial, or not
// at all), and the watch is ready after it; after it, only what changed,
// and what went away as gone.
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
		n, readyAt := 0, -1
		w := Watcher{
			Initial: initial,
			Emit:    func(e Event) { mu.Lock(); got = append(got, e); mu.Unlock() },
			Ready: func() {
				if readyAt >= 0 {
					t.Errorf("ready told twice")
				}
				readyAt = n
			},
		}
		Poll(ctx, time.Millisecond, "gone", w, func(context.Context) []Event {
			if n == len(reads) {
				cancel()
				return nil
			}
			n++
			return reads[n-1]
		})
		if readyAt != 1 {
			t.Errorf("initial %v: ready told after read %d; want after the first", initial, readyAt)
		}
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

// nodesLab is a Lab of two nodes, r2 stopped from the second read on.
type nodesLab struct {
	Lab
	reads *int
}

func (nodesLab) Nodes() []string            { return []string{"r1", "r2"} }
func (l nodesLab) Stopped(node string) bool { return node == "r2" && *l.reads > 1 }

// TestPollNodes: each running node is read; a node stopped gives nothing,
// so its objects are reported gone, and the others' are not.
func TestPollNodes(t *testing.T) {
	reads := 0
	ctx, cancel := context.WithCancel(context.Background())
	var got []Event
	var readNodes []string
	PollNodes(ctx, nodesLab{reads: &reads}, time.Millisecond, "gone", Watcher{Emit: func(e Event) { got = append(got, e) }}, func(_ context.Context, node string) []Event {
		readNodes = append(readNodes, node)
		if node == "r1" {
			reads++
			if reads == 3 {
				cancel()
			}
		}
		return []Event{{Node: node, Kind: "mka", Object: "macsec0", State: "secured"}}
	})
	if d := cmp.Diff([]string{"r1", "r2", "r1", "r1"}, readNodes); d != "" {
		t.Errorf("nodes read (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]Event{{Node: "r2", Kind: "mka", Object: "macsec0", State: "gone"}}, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}
