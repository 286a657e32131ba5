package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/erlab-dev/erlab/lab/feature"
)

// What changes on a running router beyond its sessions: the communities a
// neighbour's policy passes (an ExpressRoute route filter attached or
// detached), and prefixes announced and withdrawn by hand (a leak).

// SetCommunityMatch replaces the communities a neighbour's export policy
// (import when export is false) passes, on a running router whose policy
// matches communities (match-communities:), and has the routes sent to the
// neighbour (or taken from it) again through the new filter; an empty list
// passes nothing. The agent's configuration is rewritten too, so that a
// speaker its supervisor restarts keeps the filter.
func SetCommunityMatch(ctx context.Context, l feature.Lab, node string, addr netip.Addr, export bool, communities []string) error {
	path := filepath.Join(l.NodeDir(node), agentConfigFile)
	cfg, err := readConfig(path)
	if err != nil {
		return fmt.Errorf("node %s runs no BGP agent: %w", node, err)
	}
	i := slices.IndexFunc(cfg.BGP.Neighbors, func(n Neighbor) bool { return n.Address == addr })
	if i < 0 {
		return fmt.Errorf("node %s: %s is no neighbour of its", node, addr)
	}
	nb := &cfg.BGP.Neighbors[i]
	dir, pol, reset := "import", nb.Import, api.ResetPeerRequest_DIRECTION_IN
	if export {
		dir, pol, reset = "export", nb.Export, api.ResetPeerRequest_DIRECTION_OUT
	}
	if pol == nil || !pol.ByCommunity {
		return fmt.Errorf("node %s: neighbour %s: its %s policy matches no communities (give it match-communities:)", node, addr, dir)
	}
	for _, c := range communities {
		if !validCommunity(c) {
			return fmt.Errorf("community %q is not ASN:VALUE (each 0-65535)", c)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, AgentCallTimeout)
	defer cancel()
	c, done, err := client(ctx, l, node)
	if err != nil {
		return err
	}
	defer done()
	old := pol.MatchCommunities
	pol.MatchCommunities = slices.Clone(communities)
	if err := WriteConfig(path, cfg); err != nil {
		return err
	}
	if err := replaceCommunityMatch(ctx, c, fmt.Sprintf("%s-nbr%d", dir, i), addr, reset, old, communities); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	return nil
}

// replaceCommunityMatch swaps the entries of a policy's community set and
// runs the neighbour's routes through it again. GoBGP adds to a set and
// removes from it entry by entry; the set itself stays, as the policy
// that names it must.
func replaceCommunityMatch(ctx context.Context, c api.GoBgpServiceClient, policy string, addr netip.Addr, dir api.ResetPeerRequest_Direction, old, communities []string) error {
	set := func(list []string) *api.DefinedSet {
		return &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_COMMUNITY, Name: communitySetName(policy), List: list}
	}
	if len(old) > 0 {
		if _, err := c.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set(old)}); err != nil {
			return fmt.Errorf("clear the community filter toward %s: %w", addr, err)
		}
	}
	if len(communities) > 0 {
		if _, err := c.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set(communities)}); err != nil {
			return fmt.Errorf("set the community filter toward %s: %w", addr, err)
		}
	}
	if _, err := c.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: dir}); err != nil {
		return fmt.Errorf("send to %s again: %w", addr, err)
	}
	return nil
}

// Announce originates prefixes on a running router, beside its networks,
// until Withdraw (or the speaker's restart): what a customer's router does
// when it leaks routes it should not.
func Announce(ctx context.Context, l feature.Lab, node string, prefixes []netip.Prefix) error {
	return streamPaths(ctx, l, node, prefixes, false)
}

// Withdraw takes back what Announce originated.
func Withdraw(ctx context.Context, l feature.Lab, node string, prefixes []netip.Prefix) error {
	return streamPaths(ctx, l, node, prefixes, true)
}

// streamPaths sends paths to a speaker in batches over one stream: one
// call per prefix took seconds for thousands in the microVM.
func streamPaths(ctx context.Context, l feature.Lab, node string, prefixes []netip.Prefix, withdraw bool) error {
	ctx, cancel := context.WithTimeout(ctx, AgentCallTimeout*time.Duration(4+len(prefixes)/1000))
	defer cancel()
	c, done, err := client(ctx, l, node)
	if err != nil {
		return err
	}
	defer done()
	stream, err := c.AddPathStream(ctx)
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	const batch = 256
	for len(prefixes) > 0 {
		n := min(batch, len(prefixes))
		req := &api.AddPathStreamRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL}
		for _, p := range prefixes[:n] {
			path := originPath(p, nil)
			path.IsWithdraw = withdraw
			req.Paths = append(req.Paths, path)
		}
		if err := stream.Send(req); err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
		prefixes = prefixes[n:]
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	return nil
}
