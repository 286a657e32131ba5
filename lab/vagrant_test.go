package lab_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/erlab-dev/erlab/lab/labtest"
)

// TestIntegrationVagrantfile runs the check the README promises for the laptop
// box: vagrant validate --ignore-provider, with Debian's vagrant.
func TestIntegrationVagrantfile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs vagrant (a few seconds); skipped under -short")
	}
	if labtest.KernelTier() {
		t.Skip("a host check: validated in the host tier")
	}
	if _, err := exec.LookPath("vagrant"); err != nil {
		t.Skip("vagrant is not installed (scripts/setup installs it)")
	}
	cmd := exec.Command("vagrant", "validate", "--ignore-provider")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VAGRANT_DOTFILE_PATH="+t.TempDir()) // not .vagrant/ in the tree
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vagrant validate: %v\n%s", err, out)
	}
}
