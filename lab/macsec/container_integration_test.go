package macsec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/vlan"
)

// TestIntegrationMACsecContainers runs, in the kernel tier, MACsec on
// container nodes as on bare namespaces, unchanged: a Dot1Q VLAN over
// MACsec (static keys) between two containers, in the microVM's own Docker
// daemon. The ping crosses, only MACsec frames are on the wire (a capture
// in the container's namespace), and inspect reads both SecYs' counters.
func TestIntegrationMACsecContainers(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, macsec.KernelMACsec, vlan.KernelDot1Q)
	labtest.RequireDockerInVM(t)
	dir := t.TempDir()
	for name, key := range map[string]string{"a.key": strings.Repeat("3c", 16), "b.key": strings.Repeat("4d", 16)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "lab.yml")
	os.WriteFile(file, []byte(`name: ckf
topology:
  kinds:
    linux: { image: `+labtest.TestImage+` }
  nodes:
    c1: { kind: linux, interfaces: { macsec0.100: { addresses: [192.0.2.1/30] } } }
    c2: { kind: linux, interfaces: { macsec0.100: { addresses: [192.0.2.2/30] } } }
  links:
    - endpoints: ["c1:eth1", "c2:eth1"]
      macsec: { keys: { a: { file: a.key }, b: { file: b.key } } }
`), 0o644)
	top := labtest.Load(t, file)
	l := labtest.Deploy(t, top)
	labtest.WaitPing(t, l, "c1", "192.0.2.2", 20*time.Second)
	cap := labtest.Capture(t, l, "c2", "eth1", 4, "", func() {
		labtest.TryExec(l, "c1", "ping", "-c3", "-i", "0.3", "192.0.2.2")
	})
	if strings.Count(cap, "0x88e5") < 4 {
		t.Errorf("frames on the wire that are not MACsec:\n%s", cap)
	}
	devs, _ := labtest.Inspect(t, l).Features[macsec.Name].([]*macsec.Info)
	if len(devs) != 2 {
		t.Fatalf("inspect shows %d MACsec devices, want 2", len(devs))
	}
	for _, m := range devs {
		if !m.Encrypt || m.OutPktsEncrypted < 3 || m.InPktsOK < 3 || m.InPktsNotValid != 0 {
			t.Errorf("%s:%s MACsec: %+v", m.Node, m.Device, m)
		}
	}
}
