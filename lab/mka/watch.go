package mka

import (
	"context"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
)

// WatchPoll is how often erlab events asks each port's wpa_supplicant for
// its MKA status.
const WatchPoll = time.Second

// Watch implements feature.WatchHook: each MKA port's session (mka, object
// the MACsec device: secured, or not secured and why).
func (Feature) Watch(ctx context.Context, l feature.Lab, w feature.Watcher) error {
	feature.PollNodes(ctx, l, WatchPoll, "gone", w, func(_ context.Context, node string) []feature.Event {
		var s state
		if !l.State(Name, node, &s) {
			return nil
		}
		var out []feature.Event
		for _, e := range s.Ends {
			mi, err := mkaState(l.NodeDir(node), e.Port)
			if err != nil {
				mi = &Info{Problem: "no keeper: " + err.Error()}
			}
			st := "secured"
			if !mi.Secured {
				st = "not-secured"
			}
			out = append(out, feature.Event{Node: node, Kind: "mka", Object: e.Device, State: st, Detail: mi.summary()})
		}
		return out
	})
	return nil
}
