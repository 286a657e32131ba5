package bgp

// In-process GoBGP speakers, configured by the agent's own configure, that
// peer over lo: the unit tests' stand-in for routers in namespaces. No root
// is needed and nothing leaves lo: each speaker listens on and dials from
// an address of its own in 127/8 (lo answers the whole of it), on a port
// above 1024, and serves its gRPC API on a unix socket.

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Bounds of the tests' waits. A session comes up 1.5-2 s after its peer is
// added (GoBGP's first dial waits 0.75-1 times its minimum connect retry of
// 2 s); 10 s leaves room for a failed first dial and the retry 3.75-5 s
// later (connectRetry) on a loaded machine. An update crosses lo and a RIB in milliseconds; 5 s only has to
// absorb a slow race-detector build.
const (
	sessionWait = 10 * time.Second
	routeWait   = 5 * time.Second
)

// testSpeaker is one in-process speaker: a router with the config cfg,
// whose address on lo is its router ID.
type testSpeaker struct {
	cfg    Config
	s      *server.BgpServer
	client api.GoBgpServiceClient
}

// neighbor is a neighbour of the speaker at address a in AS asn; passive
// ones wait for the other end to connect, which spares a test the
// collision of two ends dialling at once.
func neighbor(a string, asn uint32, passive bool) Neighbor {
	return Neighbor{Address: netip.MustParseAddr(a), RemoteAS: asn, HoldTime: DefaultHoldTime, Keepalive: DefaultKeepalive, Passive: passive}
}

// startSpeakers starts a speaker for each config, has it originate its
// networks, waits until every session among them is established, and
// stops them all when the test ends, failed or not.
//
// GoBGP keeps its multipath and route-selection options in package
// variables that every StartBgp overwrites, so the speakers of one process
// share them: all the configs of a test must agree on Multipath, and tests
// that start speakers must not run in parallel.
func startSpeakers(t *testing.T, cfgs ...Config) []*testSpeaker {
	t.Helper()
	ports := map[netip.Addr]uint32{}
	for _, c := range cfgs {
		if c.Multipath != cfgs[0].Multipath {
			t.Fatalf("speaker %s: multipath %v, but speaker %s's is %v: GoBGP shares the setting across a process", c.RouterID, c.Multipath, cfgs[0].RouterID, cfgs[0].Multipath)
		}
		ports[c.RouterID] = freePort(t, c.RouterID)
	}
	// A unix socket's path must fit in 108 bytes: t.TempDir's, named after
	// the test, may not.
	dir, err := os.MkdirTemp("", "erlab-bgp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var out []*testSpeaker
	for _, c := range cfgs {
		sock := "unix://" + filepath.Join(dir, c.RouterID.String()+".sock")
		s := server.NewBgpServer(server.GrpcListenAddress(sock))
		go s.Serve()
		t.Cleanup(s.Stop)
		rebind := func(g *api.Global, peers []*api.Peer) {
			g.ListenAddresses, g.ListenPort = []string{c.RouterID.String()}, int32(ports[c.RouterID])
			for _, p := range peers {
				port, ok := ports[netip.MustParseAddr(p.Conf.NeighborAddress)]
				if !ok {
					t.Fatalf("speaker %s: neighbour %s is none of the test's speakers", c.RouterID, p.Conf.NeighborAddress)
				}
				p.Transport.LocalAddress, p.Transport.RemotePort = c.RouterID.String(), port
			}
		}
		if err := configure(t.Context(), s, c, slog.New(slog.DiscardHandler), rebind); err != nil {
			t.Fatalf("speaker %s: %v", c.RouterID, err)
		}
		conn, err := grpc.NewClient(sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		sp := &testSpeaker{cfg: c, s: s, client: api.NewGoBgpServiceClient(conn)}
		// The speaker's networks, originated as runSpeaker does: before
		// any session is up.
		for _, p := range c.Networks {
			if _, err := sp.client.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Path: originPath(p, c.Tags[p])}); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, sp)
	}
	waitFor(t, sessionWait, "every session established", func() string {
		var down []string
		for _, sp := range out {
			for _, n := range sp.cfg.Neighbors {
				if !established(context.Background(), sp.s, n.Address.String()) {
					down = append(down, sp.cfg.RouterID.String()+"-"+n.Address.String())
				}
			}
		}
		if len(down) > 0 {
			return "down: " + strings.Join(down, ", ")
		}
		return ""
	})
	return out
}

// freePort returns a TCP port that is free on address a.
func freePort(t *testing.T, a netip.Addr) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		t.Fatalf("a port on %s (lo answers all of 127/8): %v", a, err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

// announce originates prefixes as the agent originates its networks.
func (sp *testSpeaker) announce(t *testing.T, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		if _, err := sp.client.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Path: originPath(netip.MustParsePrefix(p), nil)}); err != nil {
			t.Fatalf("speaker %s: announce %s: %v", sp.cfg.RouterID, p, err)
		}
	}
}

// withdraw withdraws prefixes the speaker announced.
func (sp *testSpeaker) withdraw(t *testing.T, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		if _, err := sp.client.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Path: originPath(netip.MustParsePrefix(p), nil)}); err != nil {
			t.Fatalf("speaker %s: withdraw %s: %v", sp.cfg.RouterID, p, err)
		}
	}
}

// paths reads a prefix's paths from the speaker's global RIB, as the agent
// reads them (ListPaths, over gRPC).
func (sp *testSpeaker) paths(t *testing.T, prefix string) []PathInfo {
	t.Helper()
	ps, err := ListPaths(context.Background(), sp.client, netip.MustParsePrefix(prefix))
	if err != nil {
		t.Fatalf("speaker %s: list paths of %s: %v", sp.cfg.RouterID, prefix, err)
	}
	return ps
}

// nextHops lists the next hops of paths, sorted.
func nextHops(paths []PathInfo) []string {
	var out []string
	for _, p := range paths {
		out = append(out, p.NextHop.String())
	}
	slices.Sort(out)
	return out
}

// waitFor polls cond every 20 ms until it returns "", and fails the test
// with cond's last answer (what is still wrong) when that takes longer than
// within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		wrong := cond()
		if wrong == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, within, wrong)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// diff is cond's answer from a comparison: "" when want and got are equal.
func diff(want, got any) string {
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
		return "(-want +got):\n" + d
	}
	return ""
}
