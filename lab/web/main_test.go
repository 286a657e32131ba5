package web

import (
	"os"
	"testing"

	"github.com/erlab-dev/erlab/lab"
)

func TestMain(m *testing.M) {
	lab.MaybeRunHelper(lab.Options{}) // deploys re-execute this test binary as their helpers (agents)
	os.Exit(m.Run())
}
