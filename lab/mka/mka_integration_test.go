package mka_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/vlan"

	"github.com/erlab-dev/erlab/lab/mka"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// mkaInfo returns a node's MKA session, as inspect shows it.
func mkaInfo(t *testing.T, l *lab.Lab, node string) *mka.Info {
	t.Helper()
	m := mkaSession(t, l, node)
	if m == nil {
		t.Fatalf("inspect shows no MKA session on %s", node)
	}
	return m
}

// mkaSession is mkaInfo that may find none.
func mkaSession(t *testing.T, l *lab.Lab, node string) *mka.Info {
	t.Helper()
	info, err := l.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sessions, _ := info.Features[mka.Name].([]mka.Session)
	for _, s := range sessions {
		if s.Node == node {
			return &s.Info
		}
	}
	return nil
}

// MKA mode as ExpressRoute Direct keys its ports: a CAK/CKN per link,
// Debian's wpa_supplicant on each end, erlab keeping the device it makes
// configured through restarts and rotations.
func TestIntegrationMKA(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, macsec.KernelMACsec, vlan.KernelDot1Q)
	labtest.RequireTool(t, "wpa_supplicant")
	dir := t.TempDir()
	cak := strings.Repeat("5a", 16)
	os.WriteFile(filepath.Join(dir, "cak"), []byte(cak+"\n"), 0o600)
	file := filepath.Join(dir, "lab.yml")
	os.WriteFile(file, []byte(`name: mka
topology:
  nodes:
    ce:
      interfaces:
        macsec0.100: {addresses: [192.168.100.129/30], mtu: 1500}
      routes:
        - {dst: 10.20.0.0/16, via: 192.168.100.130}
    msee:
      interfaces:
        lo: {addresses: [10.20.0.1/32]}
        macsec0.100: {addresses: [192.168.100.130/30], mtu: 1500}
  links:
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec:
        mka: {cak: {file: cak}, ckn: {hex: "c0ffee01"}}
`), 0o644)
	top := labtest.Load(t, file)
	start := time.Now()
	l := labtest.Deploy(t, top)
	t.Logf("deployed and secured in %s", time.Since(start).Round(time.Millisecond))
	// A full-size packet crosses the VLAN above MACsec (MTU plan: 1504 on
	// the device wpa_supplicant made, 1536 on the port).
	labtest.Exec(t, l, "ce", "ping", "-c2", "-i", "0.2", "-W2", "-M", "do", "-s", "1472", "192.168.100.130")
	labtest.Exec(t, l, "ce", "ping", "-c1", "-W2", "10.20.0.1") // the keeper added the route

	for _, node := range []string{"ce", "msee"} {
		if m := mkaInfo(t, l, node); !m.Secured || m.LivePeers != 1 || m.CKN != "c0ffee01" {
			t.Errorf("%s MKA: %+v", node, m)
		}
	}
	if ks := mkaInfo(t, l, "ce").KeyServer; !ks {
		t.Errorf("the link's first end (lower MKA priority) is not the key server")
	}

	res, err := l.VerifyEncryption(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Pass || res[0].Declared != "macsec GCM-AES-128 (MKA)" || res[0].MarkerHits != 0 {
		t.Errorf("verify encryption: %+v", res)
	}

	// wpa_supplicant dies: its supervisor starts it again, it makes a new
	// device, and the keeper names and configures it as before.
	nodeDir := l.NodeDir("ce")
	var st struct {
		WPAPID int `json:"wpa_pid"`
	}
	b, err := os.ReadFile(filepath.Join(nodeDir, "mka-eth1.status.json"))
	if err != nil || json.Unmarshal(b, &st) != nil || st.WPAPID == 0 {
		t.Fatalf("keeper status: %s %v", b, err)
	}
	killed := time.Now()
	syscall.Kill(st.WPAPID, syscall.SIGKILL)
	labtest.Eventually(t, 60*time.Second, "wpa_supplicant back (one restart) and secured after a kill", func() bool {
		m := mkaSession(t, l, "ce")
		return m != nil && m.Restarts == 1 && m.Secured
	})
	labtest.WaitPing(t, l, "ce", "10.20.0.1", 30*time.Second)
	t.Logf("wpa_supplicant killed: secured again and traffic back after %s", time.Since(killed).Round(time.Millisecond))

	// Rotation, both ends: an outage, measured.
	rep, err := mka.Rotate(context.Background(), l, "msee", "eth1", mka.Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Probe == nil || rep.Probe.Sent == 0 || rep.Secured == 0 || len(rep.Sides) != 2 || !strings.HasPrefix(rep.Sides[0], "msee:") {
		t.Fatalf("rotation report: %+v", rep)
	}
	t.Logf("MKA rotation: secured again after %s; probe: %s", rep.Secured.Round(time.Millisecond), rep.Probe)
	if rep.Probe.Received == 0 {
		t.Errorf("no probe packet crossed before or after the rotation: %s", rep.Probe)
	}
	labtest.Exec(t, l, "ce", "ping", "-c1", "-W2", "10.20.0.1")

	// One side only, with another CAK: nothing passes, and inspect says
	// why, as erlab events does.
	evs := labtest.Watch(t, l, lab.WatchOptions{Initial: true})
	evs.Wait(t, 10*time.Second, "msee's MKA secured", 0, labtest.Is("msee", "mka", "macsec0", "secured"))
	from := evs.Len()
	newCAK := strings.Repeat("a7", 16)
	half, err := mka.Rotate(context.Background(), l, "ce", "eth1", mka.Rotation{CAK: mustHex(newCAK), OneSide: true})
	if err != nil {
		t.Fatal(err)
	}
	// The report says the link went down, and the probe saw it.
	if half.Completes || half.Down == 0 || half.Probe == nil || half.Probe.Lost == 0 || half.Probe.Duration > time.Minute {
		t.Errorf("one-side rotation report: %+v, probe %+v", half, half.Probe)
	}
	labtest.Eventually(t, 30*time.Second, "inspect reports the CAK mismatch", func() bool {
		m := mkaInfo(t, l, "msee")
		return !m.Secured && strings.Contains(m.Problem, "different CAKs")
	})
	t.Logf("CAK mismatch, as inspect shows it: %s", mkaInfo(t, l, "msee").Problem)
	if _, code, _ := labtest.TryExec(l, "ce", "ping", "-c2", "-W1", "192.168.100.130"); code == 0 {
		t.Errorf("traffic passes between ends holding different CAKs")
	}
	rest, err := mka.Rotate(context.Background(), l, "msee", "eth1", mka.Rotation{CAK: mustHex(newCAK), OneSide: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rest.Completes || rest.Secured == 0 {
		t.Errorf("the second half of a one-side rotation: %+v", rest)
	}
	labtest.WaitPing(t, l, "ce", "192.168.100.130", 60*time.Second)
	lost := evs.Wait(t, 5*time.Second, "events: msee's MKA not secured, different CAKs", from, func(e lab.Event) bool {
		return labtest.Is("msee", "mka", "macsec0", "not-secured")(e) && strings.Contains(e.Detail, "different CAKs")
	})
	evs.Wait(t, 5*time.Second, "events: msee's MKA secured again", from, func(e lab.Event) bool {
		return labtest.Is("msee", "mka", "macsec0", "secured")(e) && e.Time.After(lost.Time)
	})

	// The CAKs are only in wpa_supplicant's configurations, which only
	// root reads; not in inspect's JSON.
	info, _ := l.Inspect(context.Background())
	blob, _ := json.Marshal(info)
	for _, k := range []string{cak, newCAK} {
		if bytes.Contains(blob, []byte(k)) {
			t.Error("inspect shows a CAK")
		}
	}
	filepath.WalkDir(l.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte(cak)) && !bytes.Contains(b, []byte(newCAK)) {
			return nil
		}
		if fi, _ := d.Info(); !strings.HasSuffix(p, ".conf") || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s (mode %v) holds a CAK", p, fi.Mode().Perm())
		}
		return nil
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
