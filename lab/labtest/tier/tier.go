// Package tier holds the rules of erlab's privileged test tiers, with no
// dependency on the lab engine, so that the packages the engine imports
// (lab/ike, lab/ipsec, ...) can use them in their own tests: skip on the
// host when a kernel feature is missing, fail in the kernel tier.
package tier

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab/kernel"
)

// KernelTierEnv set to 1 marks the kernel tier (inside scripts/vm-run): there
// a missing kernel feature fails a test instead of skipping it.
const KernelTierEnv = "ERLAB_KERNEL_TIER"

// KernelTier reports whether the tests run in the kernel tier.
func KernelTier() bool { return os.Getenv(KernelTierEnv) == "1" }

// Integration marks a privileged integration test: skipped under -short and
// when not root.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test; skipped under -short")
	}
	if os.Geteuid() != 0 {
		if KernelTier() {
			t.Fatal("the kernel tier runs as root; this process is not")
		}
		t.Skip("needs root (namespaces, veth): run as root, or scripts/test")
	}
}

// RequireFeatures skips the test when the kernel lacks a feature — or fails
// it in the kernel tier, where every feature must be there.
func RequireFeatures(t testing.TB, features ...*kernel.Feature) {
	t.Helper()
	missing, err := kernel.Probe(features)
	if err != nil {
		t.Fatalf("probe kernel: %v", err)
	}
	if len(missing) == 0 {
		return
	}
	var names []string
	for _, f := range features {
		if why, ok := missing[f]; ok {
			names = append(names, f.Name+" ("+f.Option+": "+why.Error()+")")
		}
	}
	msg := "kernel lacks " + strings.Join(names, ", ") + "; this test runs in the kernel tier: scripts/vm-run -- ..."
	if KernelTier() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Name returns a lab name unique to this run, starting with prefix.
func Name(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// RequireTool skips the test when a program it runs is not installed — or
// fails it in the kernel tier and in CI, where scripts/setup installs it.
func RequireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if KernelTier() || os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (scripts/setup installs it)", name)
	}
	t.Skipf("%s is not installed (scripts/setup installs it)", name)
}
