package bgp

import (
	"context"
	"log/slog"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// resyncDelay is how long after a session comes up its table is sent again.
// The gap it must cover is GoBGP's own, of microseconds (see
// resyncOnEstablish); a quarter of a second is far above it and far below
// anything a drill measures.
const resyncDelay = 250 * time.Millisecond

// resyncOnEstablish sends a neighbour the whole table again, once, shortly
// after each time its session comes up.
//
// GoBGP 4.8 handles the messages of different sessions concurrently, and
// marks a session Established only after it has sent the new neighbour its
// table (fsm.go: the state-change callback runs, then fsm.state.Store; the
// same order is behind osrg/gobgp#3466). A route that another session
// brings in between the two is in the table sent to nobody: it arrived too
// late for the initial dump, and its update skipped the neighbour, not yet
// Established. Nothing sends it later, so the neighbour never learns it
// while its sender counts it as advertised. In the microVM this left an
// ExpressRoute gateway without the customer's prefix from one MSEE for as
// long as the lab ran. A soft reset out after the state is stored sends what
// the first dump missed; to a neighbour that has it all, it repeats a few
// updates.
func resyncOnEstablish(ctx context.Context, s *server.BgpServer, log *slog.Logger) error {
	return s.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE || ev.Peer.State.SessionState != bgp.BGP_FSM_ESTABLISHED {
				return
			}
			addr := ev.Peer.State.NeighborAddress.String()
			time.AfterFunc(resyncDelay, func() {
				if ctx.Err() != nil {
					return
				}
				err := s.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr, Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT})
				if err != nil && ctx.Err() == nil {
					log.Warn("resend the table to a new session", "neighbor", addr, "err", err)
				}
			})
		},
	}, server.WatchPeer())
}
