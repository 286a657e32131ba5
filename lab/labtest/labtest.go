// Package labtest holds the helpers erlab's privileged tests share: the
// tier rules (skip on the host, fail in the kernel tier), unique lab names,
// and deploys that are destroyed however the test ends.
package labtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/capture"
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
	RequireTool     = tier.RequireTool
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
	top, err := topo.Parse([]byte(src), t.Name()+".yml", lab.Options{}.TopoOptions())
	if err != nil {
		t.Fatal(err)
	}
	top.Name = Name("t")
	return top
}

// Options are the lab options of a test: a state root of its own, never
// the host's /run/erlab, so that a test neither sees nor leaves anything
// there.
func Options(t testing.TB) lab.Options {
	t.Helper()
	return lab.Options{StateRoot: t.TempDir()}
}

// Deploy deploys a topology with Options and destroys it when the test
// ends, passed or failed, checking that nothing of it is left. It returns
// the lab.
func Deploy(t testing.TB, top *topo.Topology) *lab.Lab {
	t.Helper()
	l := lab.FromTopology(top, Options(t))
	t.Cleanup(func() { Destroy(t, l) })
	if err := l.Deploy(context.Background()); err != nil {
		t.Fatalf("deploy %s: %v", top.Name, err)
	}
	return l
}

// Destroy destroys a lab and fails the test if anything of it remains.
func Destroy(t testing.TB, l *lab.Lab) {
	t.Helper()
	if _, err := l.Destroy(context.Background()); err != nil {
		t.Errorf("destroy %s: %v", l.Name(), err)
	}
	if left, _ := kernel.NetNSList(lab.NetNSName(l.Name(), "")); len(left) > 0 {
		t.Errorf("destroy %s left namespaces: %v", l.Name(), left)
	}
}

// Exec runs a command in a node and returns its combined output; it fails
// the test when the command fails.
func Exec(t testing.TB, l *lab.Lab, node string, argv ...string) string {
	t.Helper()
	out, code, err := TryExec(l, node, argv...)
	if err != nil || code != 0 {
		t.Fatalf("%s: %s: exit %d, %v\n%s", node, strings.Join(argv, " "), code, err, out)
	}
	return out
}

// TryExec runs a command in a node and returns its output and status.
func TryExec(l *lab.Lab, node string, argv ...string) (string, int, error) {
	var out strings.Builder
	code, err := l.Exec(context.Background(), node, argv, nil, &out, &out)
	return out.String(), code, err
}

// Inspect inspects a deployed lab.
func Inspect(t testing.TB, l *lab.Lab) *lab.LabInfo {
	t.Helper()
	info, err := l.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// Iface finds an interface in what inspect shows.
func Iface(t testing.TB, info *lab.LabInfo, node, name string) lab.IfaceInfo {
	t.Helper()
	for _, n := range info.Nodes {
		if n.Name != node {
			continue
		}
		for _, i := range n.Interfaces {
			if i.Name == name {
				return i
			}
		}
	}
	t.Fatalf("inspect shows no %s:%s", node, name)
	return lab.IfaceInfo{}
}

// RouteVia returns the gateway `ip route get` picks for dst in a node.
func RouteVia(t testing.TB, l *lab.Lab, node, dst string) string {
	t.Helper()
	out := Exec(t, l, node, "ip", "route", "get", dst)
	f := strings.Fields(out)
	if i := slices.Index(f, "via"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	return ""
}

// Eventually polls cond every 50 ms until it holds, and returns how long
// that took; it fails the test when cond does not hold within the time:
// every wait of erlab's tests is this, never a bare sleep.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// WaitPing waits until one ping from node reaches dst, and returns how long
// that took.
func WaitPing(t testing.TB, l *lab.Lab, node, dst string, within time.Duration) time.Duration {
	t.Helper()
	return Eventually(t, within, node+" reaches "+dst, func() bool {
		_, code, _ := TryExec(l, node, "ping", "-c1", "-W1", dst)
		return code == 0
	})
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

// ParseFile parses a topology held in memory as lab.yml, with the built-in
// kinds and features and the given environment, under its own name: what
// the loader's tests, and each feature's, check.
func ParseFile(t testing.TB, src string, env map[string]string) (*topo.Topology, error) {
	t.Helper()
	opts := lab.Options{}.TopoOptions()
	opts.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return topo.Parse([]byte(src), "lab.yml", opts)
}

// Problems returns the problems of a loader error, one string each as the
// CLI prints them; an error that is no ErrorList says so.
func Problems(err error) []string {
	var el topo.ErrorList
	if !errors.As(err, &el) {
		if err == nil {
			return nil
		}
		return []string{"not an ErrorList: " + err.Error()}
	}
	var out []string
	for _, p := range el {
		out = append(out, p.String())
	}
	return out
}

// LoadText writes a topology into dir as lab.yml and loads it from there,
// with the built-in kinds and features, so that its relative key files
// resolve in dir.
func LoadText(t testing.TB, dir, src string) (*topo.Topology, error) {
	t.Helper()
	p := filepath.Join(dir, "lab.yml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return topo.Load(p, lab.Options{}.TopoOptions())
}

// Capture captures count frames matching filter on a node's interface
// while during runs, and returns tcpdump's text of them with their link
// headers (tags, EtherTypes): through lab/capture, which starts once
// tcpdump listens. It fails the test when the frames do not come within
// 10 s.
func Capture(t testing.TB, l *lab.Lab, node, iface string, count int, filter string, during func()) string {
	t.Helper()
	ns, err := l.NetNS(node)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out SyncBuffer
	c, err := capture.Start(ctx, ns, capture.Options{Iface: iface, Count: count, Text: &out, LinkHeaders: true, Filter: strings.Fields(filter)})
	if err != nil {
		t.Fatal(err)
	}
	during()
	if err := c.Wait(); err != nil || ctx.Err() != nil {
		t.Fatalf("capture of %d frames (%s) on %s:%s: %v, %v; got:\n%s", count, filter, node, iface, err, ctx.Err(), out.String())
	}
	return out.String()
}

// SyncBuffer is a bytes.Buffer a test may read while a command (tcpdump,
// the CLI) writes it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *SyncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
