package lab_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab/labtest"
)

// TestIntegrationVMRunWholeLines: with its stdout and stderr in one file
// (2>&1, as in a CI log), scripts/vm-run hands over whole lines: the two
// serial ports deliver chunks that end anywhere, and copied as they come
// one stream's line landed in the middle of the other's.
func TestIntegrationVMRunWholeLines(t *testing.T) {
	labtest.Integration(t)
	if labtest.KernelTier() {
		t.Skip("a host check: the microVM does not nest")
	}
	const n = 200
	cmd := exec.Command("../scripts/vm-run", "--", "sh", "-c", fmt.Sprintf(
		`i=0; while [ $i -lt %d ]; do printf 'out%%0120d\n' $i; printf 'err%%0120d\n' $i >&2; i=$((i+1)); done`, n))
	var both bytes.Buffer
	cmd.Stdout, cmd.Stderr = &both, &both // one pipe for both, as 2>&1
	if err := cmd.Run(); err != nil {
		t.Fatalf("vm-run: %v\n%s", err, both.String())
	}
	line := regexp.MustCompile(`^(out|err)\d{120}$`)
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(both.String(), "\n"), "\n") {
		if !line.MatchString(l) {
			t.Fatalf("a line spliced from two streams: %q", l)
		}
		seen[l] = true
	}
	if len(seen) != 2*n {
		t.Errorf("%d distinct lines, want %d", len(seen), 2*n)
	}
}
