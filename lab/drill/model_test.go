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
			`expects nothing: give max-outage, min-outage, max-loss, lossless: true or path`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, do: {macsec-rotate: a:eth1}}], expect: [{flow: a->b, lossless: true}]}`,
			`step 1: macsec-rotate: lab d has no MACsec link end (NODE:IFACE) with static keys "a:eth1"; it has none`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, do: {ipsec-rekey: a:vpn}}], expect: [{flow: a->b, lossless: true}]}`,
			`step 1: ipsec-rekey: lab d has no tunnel "vpn"`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, do: {ike-kill: a}}], expect: [{flow: a->b, lossless: true}]}`,
			`step 1: ike-kill: lab d has no node running charon (an end of an IKE tunnel) "a"; it has none`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, do: {agent-stop: a}}], expect: [{flow: a->b, lossless: true}]}`,
			`step 1: agent-stop: node a runs no BGP`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s}], expect: [{encrypted: true, link: a:eth2}]}`,
			`expect: encrypted: lab d has no link end (NODE:IFACE) or tunnel for verify encryption "a:eth2" (did you mean "a:eth1"?); it has: a:eth1, b:eth1`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s}], expect: [{encrypted: true}]}`,
			`expect: encrypted: and nothing-in-clear: give link: NODE:IFACE or tunnel: NAME`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s}], expect: [{flow: a->b, encrypted: true, link: a:eth1}]}`,
			`not of a flow: give them an expectation of their own`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s}], expect: [{flow: a->b, min-outage: 0s}]}`,
			`min-outage: "0s" is not a duration`},
		{`{flows: [{from: a, to: b}], steps: [{wait: route, node: a, prefix: 10.0.0.1/8}], expect: [{flow: a->b, lossless: true}]}`,
			`wait: route: prefix: "10.0.0.1/8" is not a prefix`},
		{`{flows: [{from: a, to: b}], steps: [{wait: route, node: a, prefix: 10.0.0.0/8, dev: eth9}], expect: [{flow: a->b, lossless: true}]}`,
			`wait: route: dev: node a has no interface "eth9" (it has: eth1)`},
		{`{flows: [{from: a, to: b}], steps: [{wait: established}], expect: [{flow: a->b, lossless: true}]}`,
			`wait: established: give session: NODE`},
		{`{flows: [{from: a, to: b}], steps: [{wait: soon}], expect: [{flow: a->b, lossless: true}]}`,
			`wait: soon: no such condition; there are converged`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, session: a}], expect: [{flow: a->b, lossless: true}]}`,
			`session:, node:, prefix:, dev: and gone: are what a wait waits for`},
		{`{flows: [{from: a, to: b, rate: 0}], steps: [{after: 1s}], expect: [{flow: a->b, lossless: true}]}`,
			`rate 0 pps`},
		{`{flows: [{from: a, to: 10.9.0.2}], steps: [{after: 1s, do: {stop: b}}], expect: [{flow: a->10.9.0.2, lossless: true}]}`,
			`step 1: stop: flow a->10.9.0.2 starts or ends at b, and a stopped node's namespace goes with the flow's sockets`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, do: {crash: a}}], expect: [{flow: a->b, lossless: true}]}`,
			`step 1: crash: flow a->b starts or ends at a`},
		{`{flows: [{from: a, to: b}], steps: [{after: 1s, do: {start: c}}], expect: [{flow: a->b, lossless: true}]}`,
			`step 1: start: lab d has no node "c"`},
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
		{`{mka-mismatch: r1:eth1}`, `mka-mismatch: lab r has no MKA link end (NODE:IFACE) "r1:eth1"; it has none`},
		{`{bgp-shutdown: r1:10.0.0.9}`, `bgp-shutdown: 10.0.0.9 is no neighbour of r1 (its neighbours: 10.0.0.2)`},
		{`{kill: h}`, `kill: node h runs no BGP (it has no bgp: block)`},
		{`{kill: r1:10.0.0.2}`, `kill takes a router's name; it acts on its speaker`},
		{`{bgp-reset: r9}`, `no node "r9"`},
	} {
		_, err := labtest.ParseFile(t, twoRouters+"drills:\n  x: {flows: [{from: r1, to: r2}], steps: [{do: "+c.do+"}], expect: [{flow: r1->r2, lossless: true}]}\n", nil)
		if got := strings.Join(labtest.Problems(err), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.do, got, c.want)
		}
	}
}

func TestDrillWaitsAndPointChecks(t *testing.T) {
	top, err := labtest.ParseFile(t, twoRouters+`drills:
  ok:
    flows: [{from: r1, to: r2}]
    steps:
      - {wait: established, session: r1:10.0.0.2, timeout: 5s}
      - {after: 1s, do: {bgp-shutdown: r1}}
      - {wait: route, node: h, prefix: 10.0.1.0/30, dev: eth1, gone: true}
    expect:
      - {flow: r1->r2, min-outage: 100ms}
      - {session: r1:10.0.0.2, state: down, at: 2}
      - {session: r2, state: established, at: 1}
      - {session: r2, state: idle}
`, nil)
	if err != nil {
		t.Fatal(labtest.Problems(err))
	}
	d := drill.Of(top)[0]
	st := d.Steps
	if st[0].Wait != drill.WaitEstablished || st[0].Session.String() != "r1:10.0.0.2" || st[0].Timeout != 5*time.Second ||
		st[2].Wait != drill.WaitRoute || st[2].Route.String() != "h: 10.0.1.0/30 dev eth1 gone" {
		t.Errorf("steps: %+v", st)
	}
	e := d.Expect
	if len(e) != 4 || *e[0].MinOutage != 100*time.Millisecond || e[0].Point() ||
		!e[1].Point() || e[1].At != 2 || e[1].State != drill.StateDown || e[1].Session.String() != "r1:10.0.0.2" ||
		e[2].At != 1 || e[3].At != 3 {
		t.Errorf("expectations: %+v", e)
	}
	for _, c := range []struct{ expect, want string }{
		{`{session: r1, state: up}`, `state: "up": give one of established, down`},
		{`{session: r1:10.0.0.9, state: idle}`, `10.0.0.9 is no neighbour of r1`},
		{`{session: r1, state: idle, at: 4}`, `at: 4: the drill's steps are 1 to 1`},
		{`{state: idle}`, `checks encrypted: or nothing-in-clear: (of link: or tunnel:), or state: (of session:); give one`},
	} {
		_, err := labtest.ParseFile(t, twoRouters+"drills:\n  x: {flows: [{from: r1, to: r2}], steps: [{after: 1s}], expect: ["+c.expect+"]}\n", nil)
		if got := strings.Join(labtest.Problems(err), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.expect, got, c.want)
		}
	}
}
