package web

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/probe"
)

// driver is what Debian's chromium does on the page, through Playwright:
// it finds every node; runs the lab's primary-carrier-loss drill from the
// drills panel and waits for its verdict and timeline; then, once the
// primary link carries the traffic again with its BGP session up, it
// clicks the link and its Pull action with the mouse, and waits until the
// page shows the link down, its session down and the traffic on the
// secondary link.
const driver = `export default async function (page) {
  const out = {};
  await page.waitForSelector('[data-node]');
  out.nodes = await page.$$eval('[data-node]', (els) => els.map((e) => e.dataset.node));
  const primary = '[data-a="ce1:eth1"]', secondary = '[data-a="ce2:eth1"]';
  const established = (sel) => page.waitForFunction((sel) => {
    const l = document.querySelector(sel);
    return l && l.dataset.bgp === 'established' && l.classList.contains('moving');
  }, sel, { timeout: 30000 });
  await established(primary);

  await page.getByLabel('drill', { exact: true }).selectOption('primary-carrier-loss');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.waitForFunction(() => {
    const st = document.getElementById('drill-status').dataset.state;
    const img = document.getElementById('timeline');
    return (st === 'pass' || st === 'fail') && !document.getElementById('drill-figure').hidden && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 60000 });
  out.drill = await page.evaluate(async () => ({
    state: document.getElementById('drill-status').dataset.state,
    status: document.getElementById('drill-status').textContent,
    timeline: document.getElementById('timeline').dataset.drill,
    width: document.getElementById('timeline').naturalWidth,
    server: await (await fetch('/api/drill')).json(),
  }));

  await established(primary);
  out.before = await page.$eval(primary, (l) => ({ state: l.dataset.state, bgp: l.dataset.bgp, pps: Number(l.dataset.pps) }));
  await page.click(primary + ' [data-role=bgp]');
  // From the click on Pull: how long until the page shows the link down,
  // its session down, the traffic on the secondary.
  const t0 = Date.now();
  await page.getByRole('button', { name: 'Pull (link down)' }).click();
  await page.waitForFunction((sel) => document.querySelector(sel).dataset.state === 'down', primary, { timeout: 15000, polling: 20 });
  out.downMs = Date.now() - t0;
  await page.waitForFunction((sel) => document.querySelector(sel).dataset.bgp === 'down', primary, { timeout: 15000, polling: 20 });
  out.bgpMs = Date.now() - t0;
  await page.waitForFunction((sel) => document.querySelector(sel).classList.contains('moving'), secondary, { timeout: 15000 });
  // Settled: msee1 too has moved the traffic back to the site onto the
  // secondary (BFD), and nothing crosses the primary's far side.
  await page.waitForFunction(() => Number(document.querySelector('[data-a="pe1:eth2"]').dataset.pps) < 10, null, { timeout: 15000 });
  await page.getByRole('button', { name: 'Close' }).click();
  out.after = await page.$eval(primary, (l) => ({ state: l.dataset.state, bgp: l.dataset.bgp, label: l.getAttribute('aria-label') }));
  out.secondary = await page.$eval(secondary, (l) => ({ state: l.dataset.state, pps: Number(l.dataset.pps) }));
  out.result = await page.$eval('#menu-result', (e) => e.textContent);
  out.log = await page.$$eval('#log li', (els) => els.map((e) => e.textContent).slice(0, 40));
  return out;
}`

// TestIntegrationServeInBrowser: erlab serve on er-bgp.yml, in Debian's
// chromium. The page draws every node; a drill started from it runs and
// its verdict and timeline appear; with traffic flowing, the primary
// link shows its BGP session up and the traffic on it; a click on the link
// and on Pull takes it down in the kernel (as inspect reads it) and on the
// page, where the session falls and the traffic moves to the secondary.
// The screenshot is kept (ERLAB_ARTIFACTS), and with -update copied to
// testdata/serve-er-bgp.png, which the README shows.
func TestIntegrationServeInBrowser(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireBrowser(t)
	top := labtest.Load(t, "../../topologies/er-bgp.yml")
	l := labtest.Deploy(t, top)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bgp.WaitConverged(ctx, l, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	srv, err := New(l, Options{Counters: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	// Traffic both ways between the site and the VNet while the page
	// watches.
	stop := make(chan struct{})
	flows := make(chan error, 2)
	for i, f := range [][2]string{{"onprem", "vnet"}, {"vnet", "onprem"}} {
		go func() {
			_, err := probe.Between(ctx, top, f[0], f[1], probe.Config{Rate: 200, Duration: 2 * time.Minute, Port: 7950 + i, Stop: stop})
			flows <- err
		}()
	}
	defer func() {
		close(stop)
		for range 2 {
			if err := <-flows; err != nil {
				t.Errorf("probe: %v", err)
			}
		}
	}()
	url := "http://" + ln.Addr().String() + "/?token=" + srv.Token()
	var got struct {
		Nodes  []string `json:"nodes"`
		Before struct {
			State, BGP string
			PPS        float64
		} `json:"before"`
		After struct {
			State, BGP, Label string
		} `json:"after"`
		Secondary struct {
			State string
			PPS   float64
		} `json:"secondary"`
		Drill struct {
			State, Status, Timeline string
			Width                   float64
			Server                  struct {
				Last string
				Pass bool
			}
		} `json:"drill"`
		Result string   `json:"result"`
		Log    []string `json:"log"`
		DownMS float64  `json:"downMs"`
		BGPMS  float64  `json:"bgpMs"`
	}
	labtest.Browser(t, url, "serve-er-bgp.png", driver, &got)
	var want []string
	for _, n := range top.Nodes {
		want = append(want, n.Name)
	}
	slices.Sort(want)
	slices.Sort(got.Nodes)
	if !slices.Equal(want, got.Nodes) {
		t.Errorf("the page drew nodes %v; the lab has %v", got.Nodes, want)
	}
	// The drill the page started ran here, its verdict on the page is the
	// server's, and its timeline was drawn.
	d := got.Drill
	if d.Server.Last != "primary-carrier-loss" || d.Timeline != "primary-carrier-loss" || d.Width < 100 {
		t.Errorf("the drill started from the page: %+v; want primary-carrier-loss run and its timeline shown", d)
	}
	if want := map[bool]string{true: "pass", false: "fail"}[d.Server.Pass]; d.State != want {
		t.Errorf("the page shows the drill %s (%q); the server's verdict is %s", d.State, d.Status, want)
	}
	t.Logf("the drill from the page: %s", d.Status)
	if got.Before.State != "up" || got.Before.BGP != "established" || got.Before.PPS < 100 {
		t.Errorf("before the pull the page showed the primary link %+v; want up, its session established, the 2 × 200 pps on it", got.Before)
	}
	if got.After.State != "down" || got.After.BGP != "down" || got.Result != "ce1:eth1 down" {
		t.Errorf("after the click the page showed the primary %+v and %q; want it down, its session down", got.After, got.Result)
	}
	if got.Secondary.State != "up" || got.Secondary.PPS < 100 {
		t.Errorf("after the pull the secondary link showed %+v; want the traffic on it", got.Secondary)
	}
	// The link's state is the kernel's notification, pushed at once; the
	// session's is read every 0.5 s (GoBGP has no notification of it).
	t.Logf("from the click on Pull: the page showed the link down in %.0f ms, its session down in %.0f ms", got.DownMS, got.BGPMS)
	if got.DownMS > 1000 || got.BGPMS > 3000 {
		t.Errorf("the page showed the pulled link down after %.0f ms and its session down after %.0f ms; want within 1 s and 3 s", got.DownMS, got.BGPMS)
	}
	// The kernel agrees: inspect reads ce1:eth1 down.
	if i := labtest.Iface(t, labtest.Inspect(t, l), "ce1", "eth1"); i.State != "down" {
		t.Errorf("inspect after the click: ce1:eth1 %s", i.State)
	}
	b, _ := json.MarshalIndent(got.Log, "", "  ")
	t.Logf("the page's events:\n%s", b)
	if labtest.Updating() {
		shot, err := os.ReadFile(labtest.Artifact(t, "serve-er-bgp.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "serve-er-bgp.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
