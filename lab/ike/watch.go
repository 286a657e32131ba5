package ike

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
)

// WatchPoll is how often erlab events asks each charon for its SAs
// (strongSwan's vici pushes events, but only for what it initiates or
// responds to while listening; a poll also sees a charon gone).
const WatchPoll = time.Second

// Watch implements feature.WatchHook: each end's IKE SA and CHILD SA of
// each tunnel (ike, object the tunnel: "established, CHILD installed", or
// why not), and a charon that does not answer.
func (Feature) Watch(ctx context.Context, l feature.Lab, w feature.Watcher) error {
	feature.PollNodes(ctx, l, WatchPoll, "gone", w, func(_ context.Context, node string) []feature.Event {
		in, ok := conns(l, node)
		if !ok {
			return nil
		}
		infos, err := Status(in)
		if err != nil {
			return []feature.Event{{Node: node, Kind: "ike", Object: "charon", State: "unreachable", Detail: err.Error()}}
		}
		byName := map[string]ConnInfo{}
		for _, ci := range infos {
			byName[ci.Name] = ci
		}
		var out []feature.Event
		for _, c := range in.Conns {
			ci := byName[c.Name]
			state := strings.ToLower(ci.IKEState)
			if state == "" {
				state = "none"
			}
			detail := "no CHILD SA"
			if _, child := ci.Active(); child != nil {
				detail = fmt.Sprintf("CHILD %s, SPI %#x out, %#x in", strings.ToLower(child.State), child.SPIOut, child.SPIIn)
			}
			out = append(out, feature.Event{Node: node, Kind: "ike", Object: c.Name, State: state, Detail: detail})
		}
		return out
	})
	return nil
}
