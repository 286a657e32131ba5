// Package labtest holds the helpers erlab's privileged tests share: the
// tier rules (skip on the host, fail in the kernel tier), unique lab names,
// and deploys that are destroyed however the test ends.
package labtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest/tier"
	"github.com/erlab-dev/erlab/lab/topo"
)

// KernelTierEnv set to 1 marks the kernel tier (inside scripts/vm-run).
const KernelTierEnv = tier.KernelTierEnv

// The tier rules, from package tier (which the engine's own packages use).
var (
	KernelTier      = tier.KernelTier
	Integration     = tier.Integration
	RequireFeatures = tier.RequireFeatures
	Name            = tier.Name
)

// Load loads a topology file and renames its lab to a unique name, so that
// tests never collide with each other or with a user's lab.
func Load(t testing.TB, path string) *topo.Topology {
	t.Helper()
	top, err := lab.Load(path, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	top.Name = Name(strings.ReplaceAll(strings.TrimSuffix(top.Name, "-"), ".", "-"))
	return top
}

// Parse loads a topology from text, under a unique lab name.
func Parse(t testing.TB, src string) *topo.Topology {
	t.Helper()
	top, err := topo.Parse([]byte(src), t.Name()+".yml", topo.Options{Kinds: lab.Options{}.Registry()})
	if err != nil {
		t.Fatal(err)
	}
	top.Name = Name("t")
	return top
}

// Deploy deploys a topology and destroys it when the test ends, passed or
// failed, checking that nothing of it is left.
func Deploy(t testing.TB, top *topo.Topology) {
	t.Helper()
	t.Cleanup(func() { Destroy(t, top.Name) })
	if err := lab.Deploy(context.Background(), top, lab.Options{}); err != nil {
		t.Fatalf("deploy %s: %v", top.Name, err)
	}
}

// Destroy destroys a lab and fails the test if anything of it remains.
func Destroy(t testing.TB, name string) {
	t.Helper()
	if err := lab.Destroy(context.Background(), name, lab.Options{}); err != nil {
		t.Errorf("destroy %s: %v", name, err)
	}
	if left, _ := kernel.NetNSList(lab.NetNSName(name, "")); len(left) > 0 {
		t.Errorf("destroy %s left namespaces: %v", name, left)
	}
}

// Exec runs a command in a node and returns its combined output; it fails
// the test when the command fails.
func Exec(t testing.TB, labName, node string, argv ...string) string {
	t.Helper()
	out, code, err := TryExec(labName, node, argv...)
	if err != nil || code != 0 {
		t.Fatalf("%s: %s: exit %d, %v\n%s", node, strings.Join(argv, " "), code, err, out)
	}
	return out
}

// TryExec runs a command in a node and returns its output and status.
func TryExec(labName, node string, argv ...string) (string, int, error) {
	var out strings.Builder
	code, err := lab.Exec(context.Background(), labName, node, argv, nil, &out, &out)
	return out.String(), code, err
}

// keyFileRef finds the key files a topology names under keys/.
var keyFileRef = regexp.MustCompile(`file:\s*(keys/[\w.-]+)`)

// WithKeys copies a topology into a temporary directory beside freshly made
// key files for every keys/NAME it references, as erlab macsec keygen would
// make them (mode 0600): 16 random bytes for a .cak or .ckn, 36 for an
// .esp (an AES-256-GCM key and its salt), 32 for anything else (.key, .psk).
// It returns the copy's path. Shipped topologies hold no keys.
func WithKeys(t testing.TB, path string) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, m := range keyFileRef.FindAllSubmatch(src, -1) {
		name := string(m[1])
		n := map[string]int{".cak": 16, ".ckn": 16, ".esp": 36}[filepath.Ext(name)]
		if n == 0 {
			n = 32
		}
		key := make([]byte, n)
		rand.Read(key)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(out, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
