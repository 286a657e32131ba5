package bgp

import (
	"context"
	"log/slog"
	"net"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// watchCarrier is fast external failover: when the interface of a directly
// connected eBGP neighbour loses carrier, the session is reset at once
// instead of waiting for the hold timer (up to 180 s on ExpressRoute).
//
// A directly connected iBGP neighbour's session goes too. FRR keeps such a
// session until its hold timer, but its nexthop tracking drops the routes
// through the neighbour at once, as the connected route under them goes
// with the carrier; GoBGP tracks no next hop, so without this a router
// whose iBGP peer crashed would send traffic into the dark interface for
// the whole hold time.
func watchCarrier(ctx context.Context, s *server.BgpServer, b Config, log *slog.Logger) {
	byIface := map[string][]Neighbor{}
	for _, n := range b.Neighbors {
		if n.Interface != "" && n.Multihop == 0 {
			byIface[n.Interface] = append(byIface[n.Interface], n)
		}
	}
	if len(byIface) == 0 {
		return
	}
	updates := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { log.Warn("link watch", "err", err) },
	}); err != nil {
		log.Error("link watch: fast external failover is off", "err", err)
		return
	}
	up := map[string]bool{}
	for u := range updates {
		name := u.Attrs().Name
		nbrs, ok := byIface[name]
		if !ok {
			continue
		}
		carrier := u.IfInfomsg.Flags&unix.IFF_LOWER_UP != 0 && u.Attrs().Flags&net.FlagUp != 0
		was, known := up[name]
		up[name] = carrier
		if carrier || (known && !was) {
			continue
		}
		for _, n := range nbrs {
			// Only an established session: GoBGP queues a reset and reads it
			// in Established alone, so a reset of a session already down
			// would tear down the next one as soon as it came up.
			if !established(ctx, s, n.Address.String()) {
				continue
			}
			log.Info("carrier lost: resetting session", "interface", name, "neighbor", n.Address)
			if err := s.ResetPeer(ctx, &api.ResetPeerRequest{Address: n.Address.String(), Communication: "erlab: carrier lost on " + name}); err != nil {
				log.Warn("reset neighbour", "neighbor", n.Address, "err", err)
			}
		}
	}
}

// established says whether the session with a neighbour is Established.
func established(ctx context.Context, s *server.BgpServer, addr string) bool {
	up := false
	s.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(p *api.Peer) {
		up = p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
	})
	return up
}
