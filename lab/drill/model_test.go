package drill_test

import (
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/drill"
	"github.com/erlab-dev/erlab/lab/labtest"
)

const twoNodes = `name: d
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.9.0.1/30]}
    b:
      interfaces:
        eth1: {addresses: [10.9.0.2/30]}
  links:
    - endpoints: [a:eth1, b:eth1]
`

func TestDrillResolves(t *testing.T) {
	top, err := labtest.ParseFile(t, twoNodes+`drills:
  pull:
    description: pull the link
    flows:
      - {from: a, to: b, rate: 500, both: true}
    steps:
      - {after: 1s, do: {link-down: a:eth1}}
      - {after: 500ms, do: {impair: {b:eth1: {delay: 20ms, loss: 1%}}}}
      - {do: {exec: {node: a, cmd: "true"}}}
      - {after: 2s}
    expect:
      - {flow: a->b, max-outage: 1s, max-loss: 2%}
      - {flow: b->a, lossless: true, max-loss: 10}
`, nil)
	if err != nil {
		t.Fatal(labtest.Problems(err))
	}
	ds := drill.Of(top)
	if len(ds) != 1 {
		t.Fatalf("%d drills, want 1", len(ds))
	}
	d := ds[0]
	if d.Name != "pull" || len(d.Flows) != 2 || d.Flows[1].Label != "b->a" || d.Flows[1].Rate != 500 {
		t.Errorf("flows %+v", d.Flows)
	}
	if len(d.Steps) != 4 || d.Steps[0].Action.Kind != drill.LinkDown || d.Steps[0].After != time.Second ||
		d.Steps[1].Action.Params.Delay != 20*time.Millisecond || d.Steps[2].Action.Node != "a" || d.Steps[3].Action != nil {
		t.Errorf("steps %+v", d.Steps)
	}
	if len(d.Expect) != 2 || *d.Expect[0].MaxOutage != time.Second || *d.Expect[0].MaxLossPct != 2 || *d.Expect[1].MaxLoss != 10 || !d.Expect[1].Lossless {
		t.Errorf("expectations %+v", d.Expect)
	}
}

func TestDrillProblemsAreLocated(t *testing.T) {
	for _, c := range []struct {
		drill string
		want  string
	}{
		{`{flows: [{from: c, to: b}], steps: [{after: 1s}], expect: [{flow: c->b, max-outage: 1s}]}`,
			`lab.yml:13:15: drill "x": flow c->b: from: `},
		{`{flows: [{from: a, to: b}], steps: [{do: {link-down: a:eth2}}], expect: [{flow: a->b, max-outage: 1s}]}`,
			`drill "x": step 1: link-down: a:eth2 is no link end of node a (its link ends: eth1); did you mean a:eth1?`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s}], expect: [{flow: a-b, max-outage: 1s}]}`,
			`expect a-b: no such flow (the drill's flows: a->b); did you mean a->b?`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s}]}`,
			`drill "x": no expectations: a drill that checks nothing cannot fail`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, do: {link-down: a:eth1, blackhole: a:eth1}}], expect: [{flow: a->b, lossless: true}]}`,
			`step 1: do: give exactly one action`},
		{`{flows: [{from: a, to: b}], steps: [{wait: converged}], expect: [{flow: a->b, lossless: true}]}`,
			`wait: converged: the lab has no BGP router`},
		{`{flows: [{from: a, to: b}], steps: [{after: soon}], expect: [{flow: a->b, lossless: true}]}`,
			`step 1: after: "soon" is not a duration`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, do: {pull: a:eth1}}], expect: [{flow: a->b, lossless: true}]}`,
			`pull`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s}], expect: [{flow: a->b}]}`,
			`expects nothing: give max-outage, max-loss, lossless: true or path`},
		{`{flows: [{from: a, to: b, rate: 0}], steps: [{after: 1s}], expect: [{flow: a->b, lossless: true}]}`,
			`rate 0 pps`},
	} {
		_, err := labtest.ParseFile(t, twoNodes+"drills:\n  x: "+c.drill+"\n", nil)
		got := strings.Join(labtest.Problems(err), "\n")
		if !strings.Contains(got, c.want) {
			t.Errorf("drill %s:\n got %s\nwant %s", c.drill, got, c.want)
		}
	}
}

const twoRouters = `name: r
topology:
  nodes:
    r1:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
      bgp: {asn: 65001, neighbors: [{address: 10.0.0.2, remote-as: 65002}]}
    r2:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
      bgp: {asn: 65002, neighbors: [{address: 10.0.0.1, remote-as: 65001}]}
    h:
      interfaces:
        eth1: {addresses: [10.0.1.2/30]}
    r3:
      interfaces:
        eth1: {addresses: [10.0.1.1/30]}
  links:
    - endpoints: [r1:eth1, r2:eth1]
    - endpoints: [h:eth1, r3:eth1]
`

func TestDrillRouterActions(t *testing.T) {
	top, err := labtest.ParseFile(t, twoRouters+`drills:
  ok:
    flows: [{from: r1, to: r2}]
    steps:
      - {wait: converged}
      - {do: {bgp-shutdown: r1:10.0.0.2}}
      - {do: {bgp-enable: r1:10.0.0.2}}
      - {do: {bgp-reset: r2}}
      - {do: {kill: r2}}
    expect: [{flow: r1->r2, max-outage: 1s}]
`, nil)
	if err != nil {
		t.Fatal(labtest.Problems(err))
	}
	st := drill.Of(top)[0].Steps
	if st[0].Wait != drill.WaitConverged || st[0].Timeout != drill.DefaultWaitTimeout || st[1].Action.Peer.String() != "10.0.0.2" ||
		st[3].Action.Peer.IsValid() || st[4].Action.Kind != drill.Kill || st[4].Action.Node != "r2" {
		t.Errorf("steps: %+v %+v %+v", st[1].Action, st[3].Action, st[4].Action)
	}
	for _, c := range []struct{ do, want string }{
		{`{bgp-shutdown: r1:10.0.0.9}`, `bgp-shutdown: 10.0.0.9 is no neighbour of r1 (its neighbours: 10.0.0.2)`},
		{`{kill: h}`, `kill: node h runs no BGP (it has no bgp: block)`},
		{`{kill: r1:10.0.0.2}`, `kill takes a router's name`},
		{`{bgp-reset: r9}`, `no node "r9"`},
	} {
		_, err := labtest.ParseFile(t, twoRouters+"drills:\n  x: {flows: [{from: r1, to: r2}], steps: [{do: "+c.do+"}], expect: [{flow: r1->r2, lossless: true}]}\n", nil)
		if got := strings.Join(labtest.Problems(err), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.do, got, c.want)
		}
	}
}
