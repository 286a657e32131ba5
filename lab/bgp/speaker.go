package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Timers GoBGP is given beyond the topology's. After a reset GoBGP would
// stay Idle for 30 s and retry a connection every 120 s by default, which
// makes a failback take half a minute (measured, interop.md). With one end
// of a session passive (passiveRule), the other's first dial often comes
// before the passive end listens: the retry is what the session waits.
const (
	idleHoldAfterReset = 1 // seconds
	connectRetry       = 2 // seconds
)

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// runSpeaker runs GoBGP in this process (inside the node's namespace) until
// ctx is done, then withdraws what it installed.
func runSpeaker(ctx context.Context, cfg AgentConfig, log *slog.Logger) error {
	// Every router runs a speaker: collect garbage sooner than Go's default
	// (GOGC=100 lets the heap grow to twice what is live). Measured with 50
	// routers in one session: 30.6 MB PSS per agent at the default, 22 MB
	// at 25. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	fib, err := newFIB(log)
	if err != nil {
		return err
	}
	defer fib.close()
	if n := fib.flush(); n > 0 {
		log.Info("removed stale bgp routes", "count", n)
	}
	level := new(slog.LevelVar)
	level.Set(slog.LevelInfo)
	s := server.NewBgpServer(server.GrpcListenAddress(GRPCAddress), server.LoggerOption(log.With("component", "gobgp"), level))
	go s.Serve()
	defer s.Stop()

	if err := configure(ctx, s, cfg.BGP, log, nil); err != nil {
		return err
	}
	conn, err := grpc.NewClient(GRPCAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := api.NewGoBgpServiceClient(conn)
	for _, p := range cfg.BGP.Networks {
		if _, err := client.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Path: originPath(p, cfg.BGP.Tags[p])}); err != nil {
			return fmt.Errorf("originate %s: %w", p, err)
		}
	}
	go fib.run(ctx, client, cfg.BGP.Multipath)
	if err := s.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnBestPath: func(paths []*apiutil.Path, _ time.Time) {
			for _, p := range paths {
				if pre, ok := nlriPrefix(p); ok {
					fib.changed(pre)
				}
			}
		},
	}, server.WatchBestPath(true)); err != nil {
		return fmt.Errorf("watch best paths: %w", err)
	}
	go watchCarrier(ctx, s, cfg.BGP, log)
	log.Info("speaker up", "asn", cfg.BGP.ASN, "router_id", cfg.BGP.RouterID, "neighbors", len(cfg.BGP.Neighbors), "grpc", GRPCAddress)
	<-ctx.Done()
	log.Info("speaker stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s.StopBgp(stopCtx, &api.StopBgpRequest{})
	fib.flush()
	return nil
}

// configure starts BGP and adds policies and neighbours, each resent the
// table once its session is up (resyncOnEstablish). The agent passes a nil
// rebind. Unit tests, which run several speakers in one process and
// cannot bind port 179 without root, pass one that moves the speaker and
// its sessions to an address and port of lo of their own.
func configure(ctx context.Context, s *server.BgpServer, b Config, log *slog.Logger, rebind func(*api.Global, []*api.Peer)) error {
	g := &api.Global{Asn: b.ASN, RouterId: b.RouterID.String(), ListenPort: 179, UseMultiplePaths: b.Multipath}
	peers := make([]*api.Peer, len(b.Neighbors))
	for i, n := range b.Neighbors {
		peers[i] = peer(b, n)
	}
	if rebind != nil {
		rebind(g, peers)
	}
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		return fmt.Errorf("start bgp: %w", err)
	}
	if err := applyPolicies(ctx, s, b); err != nil {
		return err
	}
	if err := resyncOnEstablish(ctx, s, log); err != nil {
		return fmt.Errorf("watch sessions: %w", err)
	}
	for i, p := range peers {
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			return fmt.Errorf("add neighbour %s: %w", b.Neighbors[i].Address, err)
		}
	}
	return nil
}

func peer(b Config, n Neighbor) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.RemoteAS, Description: n.Description, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: uint64(n.HoldTime), KeepaliveInterval: uint64(n.Keepalive),
			ConnectRetry: connectRetry, IdleHoldTimeAfterReset: idleHoldAfterReset,
		}},
		Transport: &api.Transport{PassiveMode: n.Passive},
	}
	if n.RemovePrivateAS {
		p.Conf.RemovePrivate = api.RemovePrivate_REMOVE_PRIVATE_ALL
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.Multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	if n.BFD != nil {
		p.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(n.BFD.MinTx) * 1000, // microseconds
			RequiredMinimumReceive:   uint32(n.BFD.MinRx) * 1000,
			DetectionMultiplier:      uint32(n.BFD.Multiplier),
		}
	}
	// Both unicast families on a session unless it says one; the prefix
	// limit, as ExpressRoute applies it, drops the session when exceeded.
	fams := []*api.Family{familyV4, familyV6}
	switch {
	case n.IPv4Only:
		fams = fams[:1]
	case n.IPv6Only:
		fams = fams[1:]
	}
	for _, f := range fams {
		as := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if n.MaxPrefixes > 0 {
			as.PrefixLimits = &api.PrefixLimit{Family: f, MaxPrefixes: uint32(n.MaxPrefixes)}
		}
		if b.Multipath {
			as.UseMultiplePaths = &api.UseMultiplePaths{Config: &api.UseMultiplePathsConfig{Enabled: true}}
		}
		p.AfiSafis = append(p.AfiSafis, as)
	}
	return p
}

// originPath is a locally originated prefix: origin IGP, next hop self,
// with the communities given.
func originPath(p netip.Prefix, communities []string) *api.Path {
	nlri := &api.NLRI{Nlri: &api.NLRI_Prefix{Prefix: &api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())}}}
	attrs := []*api.Attribute{{Attr: &api.Attribute_Origin{Origin: &api.OriginAttribute{Origin: 0}}}}
	if len(communities) > 0 {
		var cs []uint32
		for _, c := range communities {
			cs = append(cs, communityValue(c))
		}
		attrs = append(attrs, &api.Attribute{Attr: &api.Attribute_Communities{Communities: &api.CommunitiesAttribute{Communities: cs}}})
	}
	if is6(p.Addr()) {
		mp := &api.Attribute{Attr: &api.Attribute_MpReach{MpReach: &api.MpReachNLRIAttribute{Family: familyV6, NextHops: []string{"::"}, Nlris: []*api.NLRI{nlri}}}}
		return &api.Path{Family: familyV6, Nlri: nlri, Pattrs: append(attrs, mp)}
	}
	nh := &api.Attribute{Attr: &api.Attribute_NextHop{NextHop: &api.NextHopAttribute{NextHop: "0.0.0.0"}}}
	return &api.Path{Family: familyV4, Nlri: nlri, Pattrs: append(attrs, nh)}
}

// communityValue is ASN:VALUE (checked when the file was read) as BGP
// carries it.
func communityValue(c string) uint32 {
	a, v, _ := strings.Cut(c, ":")
	hi, _ := strconv.ParseUint(a, 10, 16)
	lo, _ := strconv.ParseUint(v, 10, 16)
	return uint32(hi)<<16 | uint32(lo)
}
