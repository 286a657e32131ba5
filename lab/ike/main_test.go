package ike

import (
	"os"
	"testing"

	"github.com/erlab-dev/erlab/lab/supervise"
)

// TestMain makes the test binary charon's supervisor when Start (or
// TestSupervisor) re-executes it as one, as erlab's binary is.
func TestMain(m *testing.M) {
	if os.Getenv("ERLAB_HELPER") == supervise.HelperName {
		os.Exit(supervise.Run())
	}
	os.Exit(m.Run())
}
