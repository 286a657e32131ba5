package agent

import (
	"context"
	"log/slog"
	"net"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/topo"
)

// watchCarrier is fast external failover: when the interface of a directly
// connected eBGP neighbour loses carrier, the session is reset at once
// instead of waiting for the hold timer (up to 180 s on ExpressRoute).
func watchCarrier(ctx context.Context, s *server.BgpServer, b topo.BGP, log *slog.Logger) {
	byIface := map[string][]topo.Neighbor{}
	for _, n := range b.Neighbors {
		if n.Interface != "" && n.Multihop == 0 && n.RemoteAS != b.ASN {
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
			log.Info("carrier lost: resetting session", "interface", name, "neighbor", n.Address)
			if err := s.ResetPeer(ctx, &api.ResetPeerRequest{Address: n.Address.String(), Communication: "erlab: carrier lost on " + name}); err != nil {
				log.Warn("reset neighbour", "neighbor", n.Address, "err", err)
			}
		}
	}
}
