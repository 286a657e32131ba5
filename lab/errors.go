package lab

import (
	"fmt"

	"github.com/erlab-dev/erlab/lab/topo"
)

// UnknownError says that a name given on the command line names nothing
// in a lab (see topo.UnknownError).
type UnknownError = topo.UnknownError

// StoppedError says that a node a command needs running is stopped.
type StoppedError struct{ Lab, Node string }

func (e *StoppedError) Error() string {
	return fmt.Sprintf("lab %s: node %s is stopped: start it first (erlab start --name %s %s)", e.Lab, e.Node, e.Lab, e.Node)
}
