package bgp

import (
	"fmt"
	"net/netip"
	"testing"

	api "github.com/osrg/gobgp/v4/api"
)

// TestResendOnEstablish: once a session is up, each end sends the other
// its table a second time (resyncOnEstablish), so a route GoBGP left out
// of the first dump still arrives. b hears a's one prefix in two updates,
// the first dump's and the resend's; without the resend it hears one.
// Then a session that comes up again is sent its table twice again.
func TestResendOnEstablish(t *testing.T) {
	sp := startSpeakers(t,
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Networks: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/24")},
			Neighbors: []Neighbor{neighbor("127.0.0.2", 65002, false)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.2"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
	)
	a, b := sp[0], sp[1]
	updates := func() (uint64, error) {
		var n uint64
		err := b.s.ListPeer(t.Context(), &api.ListPeerRequest{Address: "127.0.0.1"}, func(p *api.Peer) {
			n = p.GetState().GetMessages().GetReceived().GetUpdate()
		})
		return n, err
	}
	resent := func(want uint64) func() string {
		return func() string {
			n, err := updates()
			if err != nil {
				return err.Error()
			}
			if n < want {
				return fmt.Sprintf("b has had %d updates from a since the session came up", n)
			}
			return diff([]string{"10.8.0.0/24"}, b.adjRIB(t, api.TableType_TABLE_TYPE_ADJ_IN, "127.0.0.1"))
		}
	}
	waitFor(t, routeWait, "a's table sent twice", resent(2))

	// The session again, reset by a: b's count goes on from where it was.
	before, err := updates()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.s.ResetPeer(t.Context(), &api.ResetPeerRequest{Address: "127.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sessionWait, "a's table sent twice again", resent(before+2))
}
