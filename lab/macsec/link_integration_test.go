package macsec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/probe"
	"github.com/erlab-dev/erlab/lab/vlan"
)

// TestIntegrationMACsecLink declares MACsec once on a link, as a user does,
// with ExpressRoute Direct's GCM-AES-XPN-256 and a Dot1Q C-tag above the
// MACsec device, keys from a file (mode 0600) and an environment variable:
// erlab configures both ends, traffic crosses the VLAN, only MACsec frames
// are on the wire, inspect shows the SecY and its counters, and the keys
// appear nowhere in the lab's files.
func TestIntegrationMACsecLink(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, macsec.KernelMACsec, vlan.KernelDot1Q)
	dir := t.TempDir()
	keyA := strings.Repeat("a1", 32)
	keyB := strings.Repeat("b2", 32)
	if err := os.WriteFile(filepath.Join(dir, "a.key"), []byte(keyA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ERLAB_TEST_MACSEC_KEY_B", keyB)
	file := filepath.Join(dir, "lab.yml")
	os.WriteFile(file, []byte(`name: msl
topology:
  nodes:
    ce:
      interfaces:
        macsec0.100: {addresses: [192.168.100.129/30]}
        eth2: {addresses: [10.9.9.1/30]}
    msee:
      interfaces:
        macsec0.100: {addresses: [192.168.100.130/30]}
        eth2: {addresses: [10.9.9.2/30]}
  links:
    - endpoints: ["ce:eth2", "msee:eth2"]
    - endpoints: ["ce:eth1", "msee:eth1"]
      macsec:
        cipher: GCM-AES-XPN-256
        window: 64
        keys: {a: {file: a.key}, b: {env: ERLAB_TEST_MACSEC_KEY_B}}
`), 0o644)
	top := labtest.Load(t, file)
	l := labtest.Deploy(t, top)
	labtest.Exec(t, l, "ce", "ping", "-c3", "-i", "0.2", "-W2", "192.168.100.130")

	info := labtest.Inspect(t, l)
	devs, _ := info.Features[macsec.Name].([]*macsec.Info)
	for _, m := range devs {
		if m.Cipher != "GCM-AES-XPN-256" || !m.Encrypt || m.OutPktsEncrypted < 3 || m.InPktsOK < 3 || m.InPktsNotValid != 0 || len(m.PeerSCIs) != 1 || m.KeyID == "" {
			t.Errorf("%s:%s MACsec: %+v", m.Node, m.Device, m)
		}
	}
	if len(devs) != 2 {
		t.Errorf("inspect shows %d MACsec devices, want 2", len(devs))
	}
	cap := labtest.Capture(t, l, "msee", "eth1", 4, "", func() {
		labtest.TryExec(l, "msee", "ping", "-c2", "-i", "0.2", "192.168.100.129")
	})
	if strings.Count(cap, "0x88e5") < 4 {
		t.Errorf("frames on the wire that are not MACsec:\n%s", cap)
	}
	// Two static key rotations under a 1000 pps probe stream lose nothing.
	done := make(chan probe.Report, 1)
	// A replay window of 64: a veth takes packets in on both CPUs'
	// backlogs of the emulated machine, so two may pass each other, and
	// with the window at 0 the receiver drops the late one — a loss of the
	// machine's scheduling, not of the rotation (CI runs saw it).
	go func() {
		rep, err := probe.Between(context.Background(), top, "ce", "192.168.100.130", probe.Config{Rate: 1000, Duration: 2 * time.Second, Port: 7009})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	for _, at := range []time.Duration{500 * time.Millisecond, 700 * time.Millisecond} {
		time.Sleep(at)
		rot, err := macsec.Rotate(context.Background(), l, "ce", "eth1")
		if err != nil {
			out, _, _ := labtest.TryExec(l, "ce", "ip", "macsec", "show")
			t.Fatalf("%v\n%s", err, out)
		}
		t.Logf("rotation: %+v", rot)
	}
	if rep := <-done; rep.Lost != 0 || rep.Received != rep.Sent {
		// The receiver's counters say where a loss went (late: replay
		// protection; not valid: a key mismatch; not using SA: no SA).
		out, _, _ := labtest.TryExec(l, "msee", "ip", "-s", "macsec", "show")
		t.Errorf("probe during two key rotations: %s\nmsee:\n%s", rep, out)
	} else {
		t.Logf("probe during two key rotations: %s", rep)
	}
	// ip macsec show, an independent reader: only AN 2 is left, each way.
	out := labtest.Exec(t, l, "ce", "ip", "macsec", "show", "macsec0")
	ans := regexp.MustCompile(`(?m)^\s+(\d): PN`).FindAllStringSubmatch(out, -1)
	if !strings.Contains(out, "on SA 2") || !strings.Contains(out, "window 64") || len(ans) != 2 || ans[0][1] != "2" || ans[1][1] != "2" {
		t.Errorf("after two rotations ce should send on AN 2, with AN 2 alone each way, replay window 64:\n%s", out)
	}

	// verify encryption: the MACsec link passes; the plaintext link, named
	// explicitly, fails — the check can fail.
	res, err := l.VerifyEncryption(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		switch r.Declared {
		case "macsec GCM-AES-XPN-256":
			if !r.Pass || r.MACsecFrames < r.Sent || r.MarkerHits != 0 || r.EncryptedOut < uint64(r.Sent) || r.ValidatedIn < uint64(r.Sent) {
				t.Errorf("MACsec link: %+v", r)
			}
			// tshark, an independent reader, decodes the capture as MACsec.
			if _, err := exec.LookPath("tshark"); err == nil {
				out, _ := exec.Command("tshark", "-r", r.Capture, "-Y", "macsec", "-T", "fields", "-e", "frame.number").Output()
				if n := len(strings.Fields(string(out))); n < r.Sent {
					t.Errorf("tshark reads %d MACsec frames in %s, want at least %d", n, r.Capture, r.Sent)
				}
			}
		case "plaintext":
			if !r.Pass || !strings.Contains(r.Reason, "declared plaintext") {
				t.Errorf("plaintext link, not asked for: %+v", r)
			}
		}
	}
	neg, err := l.VerifyEncryption(context.Background(), []string{"ce:eth2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(neg) != 1 || neg[0].Pass || neg[0].MarkerHits < neg[0].Sent {
		t.Errorf("a plaintext link passed the encryption check: %+v", neg)
	}

	// The keys are nowhere in the lab's files, nor in inspect's JSON.
	blob, _ := json.Marshal(info)
	for _, k := range []string{keyA, keyB} {
		if bytes.Contains(blob, []byte(k)) {
			t.Error("inspect shows a key")
		}
	}
	filepath.WalkDir(l.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(keyA)) || bytes.Contains(b, []byte(keyB)) {
				t.Errorf("%s holds a key", p)
			}
		}
		return nil
	})
}
