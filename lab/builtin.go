package lab

import (
	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/bridgevlan"
	"github.com/erlab-dev/erlab/lab/drill"
	"github.com/erlab-dev/erlab/lab/expressroute"
	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ike"
	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/mka"
	"github.com/erlab-dev/erlab/lab/netem"
	"github.com/erlab-dev/erlab/lab/vlan"
	"github.com/erlab-dev/erlab/nodes"
)

// The registration lines: the only place the engine names a feature or a
// kind. A feature is one folder plus one line here; a kind one file in
// nodes/ plus one line there (nodes.Builtin).

// BuiltinFeatures returns erlab's features, in the order their hooks run:
// a feature that builds on another comes after it (mka after macsec, ike
// after ipsec). Drills come last: they run the others' actions and checks.
func BuiltinFeatures() []feature.Feature {
	fs := []feature.Feature{
		expressroute.Feature{},
		vlan.Feature{},
		bridgevlan.Feature{},
		macsec.Feature{},
		mka.Feature{},
		ipsec.Feature{},
		ike.Feature{},
		bgp.Feature{},
		netem.Feature{},
	}
	return append(fs, drill.New(fs))
}

// BuiltinKinds returns erlab's node kinds.
func BuiltinKinds() *nodes.Registry { return nodes.Builtin() }
