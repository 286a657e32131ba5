package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/erlab-dev/erlab/lab/agent"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/nodes"
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
	BFD      string        `json:"bfd,omitempty"` // up, down, init, admin-down; "" when off
}

// RouteInfo is a path with whether the kernel has it.
type RouteInfo struct {
	agent.PathInfo
	Installed bool `json:"installed"`
}

// bgpClient connects to a router's agent: GoBGP's gRPC API inside the
// node's namespace.
//
// It first makes sure the node runs an agent at all, then that the agent
// answers within AgentTimeout: a call to an agent that cannot answer (its
// node's lo set down, the speaker restarting) must say so, not hang.
func bgpClient(ctx context.Context, labName, node string) (api.GoBgpServiceClient, func(), error) {
	var o Options
	n, err := o.deployedNode(labName, node)
	if err != nil {
		return nil, nil, err
	}
	if _, err := agent.ReadStatus(filepath.Join(o.labDir(labName), "nodes", node)); err != nil {
		var routers []string
		if st, err := o.readState(labName); err == nil {
			for _, sn := range st.Nodes {
				if _, err := agent.ReadStatus(filepath.Join(o.labDir(labName), "nodes", sn.Name)); err == nil {
					routers = append(routers, sn.Name)
				}
			}
		}
		which := "no node of the lab runs one"
		if len(routers) > 0 {
			which = "the nodes that do: " + strings.Join(routers, ", ")
		}
		return nil, nil, fmt.Errorf("node %s runs no BGP agent (only a router node with a bgp: block does); %s", node, which)
	}
	conn, err := grpc.NewClient("passthrough:///"+agent.GRPCAddress,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return nodes.DialNS(ctx, n.NetNS, addr)
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
			return nil, nil, agentUnreachable(n, fmt.Sprintf("no connection within %s", AgentTimeout))
		}
	}
	return api.NewGoBgpServiceClient(conn), func() { conn.Close() }, nil
}

// AgentTimeout bounds how long a command waits for a router's agent to
// accept a connection, and AgentCallTimeout how long it waits for an answer.
const (
	AgentTimeout     = 5 * time.Second
	AgentCallTimeout = 30 * time.Second
)

// agentUnreachable says why a node's agent does not answer, as far as the
// node shows it.
func agentUnreachable(n *NodeState, what string) error {
	hint := "its supervisor restarts a speaker that died: see erlab inspect (AGENT) and the agent's log"
	if h, err := kernel.RouteHandle(n.NetNS); err == nil {
		if lo, err := h.LinkByName("lo"); err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
			hint = "the node's loopback is down, and the API listens on it: erlab exec NODE -- ip link set lo up"
		}
		h.Close()
	}
	return fmt.Errorf("node %s: its BGP agent does not answer on %s inside the node (%s); %s", n.Name, agent.GRPCAddress, what, hint)
}

// BGPNeighbors lists a router's BGP sessions.
func BGPNeighbors(ctx context.Context, labName, node string) ([]NeighborInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, AgentCallTimeout)
	defer cancel()
	client, done, err := bgpClient(ctx, labName, node)
	if err != nil {
		return nil, err
	}
	defer done()
	stream, err := client.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: false})
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
		}
		if up := p.GetTimers().GetState().GetUptime(); up != nil && ni.State == "established" {
			ni.Uptime = time.Since(up.AsTime()).Round(time.Second)
		}
		for _, as := range p.GetAfiSafis() {
			ni.Received += as.GetState().GetReceived()
			ni.Accepted += as.GetState().GetAccepted()
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

func sessionState(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_IDLE:
		return "idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "opensent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "established"
	}
	return "unknown"
}

// bfdState names GoBGP's BFD session state (1 up, 2 down, 3 admin-down, 4 init).
func bfdState(s api.BfdSessionState) string {
	switch int32(s) {
	case 1:
		return "up"
	case 2:
		return "down"
	case 3:
		return "admin-down"
	case 4:
		return "init"
	}
	return "unknown"
}

// BGPRoutes lists a router's RIB: every path (all) or the best and
// multipath ones, each with whether the kernel has it.
func BGPRoutes(ctx context.Context, labName, node string, all bool) ([]RouteInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, AgentCallTimeout)
	defer cancel()
	client, done, err := bgpClient(ctx, labName, node)
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
	kernelRoutes, err := bgpKernelRoutes(NetNSName(labName, node))
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
			var paths []agent.PathInfo
			for _, p := range r.GetDestination().GetPaths() {
				paths = append(paths, agent.DescribePath(r.GetDestination().GetPrefix(), p))
			}
			agent.MarkMultipath(paths, multipath)
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
		routes, err := h.RouteListFiltered(fam, &netlink.Route{Protocol: agent.RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
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
