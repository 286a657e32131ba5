package lab

import (
	"github.com/erlab-dev/erlab/lab/topo"
)

// UnknownError says that a name given on the command line names nothing
// in a lab (see topo.UnknownError).
type UnknownError = topo.UnknownError
