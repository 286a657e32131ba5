package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
)

// NeighborInfo is a BGP session as erlab bgp shows it.
type NeighborInfo struct {
	Address     string `json:"address"`
	RemoteAS    uint32 `json:"remote_as"`
	Description string `json:"description,omitempty"`
	State       string `json:"state"` // idle, connect, active, opensent, openconfirm, established
	// Down says why a session is held down: "admin" or "max-prefixes"
	// (the peer sent more than the limit, and the session was dropped).
	Down     string        `json:"down,omitempty"`
	Uptime   time.Duration `json:"uptime_ns,omitempty"`
	Received uint64        `json:"received"`
	Accepted uint64        `json:"accepted"`
	// Advertised is how many prefixes this end has sent the neighbour.
	Advertised uint64 `json:"advertised"`
	BFD        string `json:"bfd,omitempty"` // up, down, init, admin-down; "" when off
	// Passive says this end waits for the neighbour to connect.
	Passive bool `json:"passive,omitempty"`
}

// RouteInfo is a path with whether the kernel has it.
type RouteInfo struct {
	PathInfo
	Installed bool `json:"installed"`
}

// client connects to a node's agent: GoBGP's gRPC API inside the node's
// namespace.
//
// It first makes sure the node runs an agent at all, then that the agent
// answers within AgentTimeout: a call to an agent that cannot answer (its
// node's lo set down, the speaker restarting) must say so, not hang.
func client(ctx context.Context, l feature.Lab, node string) (api.GoBgpServiceClient, func(), error) {
	ns, err := l.NetNS(node)
	if err != nil {
		return nil, nil, err
	}
	if _, err := ReadStatus(l.NodeDir(node)); err != nil {
		var routers []string
		for _, n := range l.Nodes() {
			if _, err := ReadStatus(l.NodeDir(n)); err == nil {
				routers = append(routers, n)
			}
		}
		which := "no node of the lab runs one"
		if len(routers) > 0 {
			which = "the nodes that do: " + strings.Join(routers, ", ")
		}
		return nil, nil, fmt.Errorf("node %s runs no BGP agent (only a node with a bgp: block does); %s", node, which)
	}
	conn, err := grpc.NewClient("passthrough:///"+GRPCAddress,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialNS(ctx, ns, addr)
		}))
	if err != nil {
		return nil, nil, err
	}
	// Wait for the connection, with a bound, so that an agent that cannot
	// be reached is reported as such rather than as a timeout of the call.
	wctx, cancel := context.WithTimeout(ctx, AgentTimeout)
	defer cancel()
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(wctx, s) {
			conn.Close()
			return nil, nil, unreachable(node, ns, fmt.Sprintf("no connection within %s", AgentTimeout))
		}
	}
	return api.NewGoBgpServiceClient(conn), func() { conn.Close() }, nil
}

// dialNS opens a TCP connection from inside a namespace.
func dialNS(ctx context.Context, ns, addr string) (net.Conn, error) {
	var conn net.Conn
	err := kernel.Do(ns, func() (err error) {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}

// AgentTimeout bounds how long a command waits for a router's agent to
// accept a connection, and AgentCallTimeout how long it waits for an answer.
const (
	AgentTimeout     = 5 * time.Second
	AgentCallTimeout = 30 * time.Second
)

// agentUnreachable says why a node's agent does not answer, as far as the
// node shows it.
func unreachable(node, ns, what string) error {
	hint := "its supervisor restarts a speaker that died: see erlab inspect (AGENT) and the agent's log"
	if h, err := kernel.RouteHandle(ns); err == nil {
		if lo, err := h.LinkByName("lo"); err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
			hint = "the node's loopback is down, and the API listens on it: erlab exec NODE -- ip link set lo up"
		}
		h.Close()
	}
	return fmt.Errorf("node %s: its BGP agent does not answer on %s inside the node (%s); %s", node, GRPCAddress, what, hint)
}

// Neighbors lists a node's BGP sessions.
func Neighbors(ctx context.Context, l feature.Lab, node string) ([]NeighborInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, AgentCallTimeout)
	defer cancel()
	client, done, err := client(ctx, l, node)
	if err != nil {
		return nil, err
	}
	defer done()
	stream, err := client.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true})
	if err != nil {
		return nil, fmt.Errorf("node %s: agent: %w", node, err)
	}
	var out []NeighborInfo
	for {
		r, err := stream.Recv()
		if err != nil {
			if isStreamEnd(err) {
				break
			}
			return nil, fmt.Errorf("node %s: agent: %w", node, err)
		}
		p := r.GetPeer()
		ni := NeighborInfo{
			Address: p.GetConf().GetNeighborAddress(), RemoteAS: p.GetConf().GetPeerAsn(),
			Description: p.GetConf().GetDescription(), State: sessionState(p.GetState().GetSessionState()),
			Passive: p.GetTransport().GetPassiveMode(),
		}
		if up := p.GetTimers().GetState().GetUptime(); up != nil && ni.State == "established" {
			ni.Uptime = time.Since(up.AsTime()).Round(time.Second)
		}
		for _, as := range p.GetAfiSafis() {
			ni.Received += as.GetState().GetReceived()
			ni.Accepted += as.GetState().GetAccepted()
			ni.Advertised += as.GetState().GetAdvertised()
		}
		switch p.GetState().GetAdminState() {
		case api.PeerState_ADMIN_STATE_DOWN:
			ni.Down = "admin"
		case api.PeerState_ADMIN_STATE_PFX_CT:
			ni.Down = "max-prefixes"
		}
		if p.GetBfd().GetEnabled() {
			ni.BFD = bfdState(p.GetState().GetBfdState().GetSessionState())
		}
		out = append(out, ni)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// sessionState names a BGP session state as GoBGP's protobuf enum does,
// in lower case: SESSION_STATE_ESTABLISHED is "established".
func sessionState(s api.PeerState_SessionState) string {
	return enumName(s.String(), "SESSION_STATE_")
}

// bfdState names a BFD session state as GoBGP's protobuf enum does:
// BFD_SESSION_STATE_ADMIN_DOWN is "admin-down".
func bfdState(s api.BfdSessionState) string {
	return enumName(s.String(), "BFD_SESSION_STATE_")
}

func enumName(s, prefix string) string {
	name, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "unknown"
	}
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// Routes lists a node's RIB: every path (all) or the best and multipath
// ones, each with whether the kernel has it.
func Routes(ctx context.Context, l feature.Lab, node string, all bool) ([]RouteInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, AgentCallTimeout)
	defer cancel()
	client, done, err := client(ctx, l, node)
	if err != nil {
		return nil, err
	}
	defer done()
	multipath := false
	if g, err := client.GetBgp(ctx, &api.GetBgpRequest{}); err == nil {
		multipath = g.GetGlobal().GetUseMultiplePaths()
	} else {
		return nil, fmt.Errorf("node %s: agent: %w", node, err)
	}
	ns, err := l.NetNS(node)
	if err != nil {
		return nil, err
	}
	kernelRoutes, err := bgpKernelRoutes(ns)
	if err != nil {
		return nil, err
	}
	var out []RouteInfo
	for _, fam := range []*api.Family{{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, {Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}} {
		stream, err := client.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam, SortType: api.ListPathRequest_SORT_TYPE_PREFIX})
		if err != nil {
			return nil, err
		}
		for {
			r, err := stream.Recv()
			if err != nil {
				if isStreamEnd(err) {
					break
				}
				return nil, err
			}
			var paths []PathInfo
			for _, p := range r.GetDestination().GetPaths() {
				paths = append(paths, DescribePath(r.GetDestination().GetPrefix(), p))
			}
			MarkMultipath(paths, multipath)
			for _, p := range paths {
				if !all && !p.Multipath {
					continue
				}
				installed := p.Multipath && !p.Local && kernelRoutes[p.Prefix][p.NextHop]
				out = append(out, RouteInfo{PathInfo: p, Installed: installed})
			}
		}
	}
	return out, nil
}

// bgpKernelRoutes maps each prefix to the next hops of its proto-bgp kernel
// route in a namespace.
func bgpKernelRoutes(ns string) (map[netip.Prefix]map[netip.Addr]bool, error) {
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	out := map[netip.Prefix]map[netip.Addr]bool{}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := kernel.Dump(func() ([]netlink.Route, error) {
			return h.RouteListFiltered(fam, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
		})
		if err != nil {
			return nil, err
		}
		for _, r := range routes {
			if r.Dst == nil {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			a, _ := netip.AddrFromSlice(r.Dst.IP)
			p := netip.PrefixFrom(a.Unmap(), ones)
			nh := map[netip.Addr]bool{}
			if gw, ok := netip.AddrFromSlice(r.Gw); ok {
				nh[gw.Unmap()] = true
			}
			for _, m := range r.MultiPath {
				if gw, ok := netip.AddrFromSlice(m.Gw); ok {
					nh[gw.Unmap()] = true
				}
			}
			out[p] = nh
		}
	}
	return out, nil
}

func isStreamEnd(err error) bool { return errors.Is(err, io.EOF) }
