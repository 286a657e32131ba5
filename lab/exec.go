package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// ExecTimeout bounds each exec command of a deploy.
const ExecTimeout = 2 * time.Minute

// runExec runs a node's exec commands in order through /bin/sh, inside its
// namespace; their output goes to the node's exec.log. A command that fails
// fails the deploy, with its output in the error.
func (d *deployment) runExec(ctx context.Context, n *topo.Node) error {
	rn := d.node(n.Name)
	logf, err := os.OpenFile(filepath.Join(rn.Dir, "exec.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	for _, c := range n.Exec {
		cctx, cancel := context.WithTimeout(ctx, ExecTimeout)
		var out bytes.Buffer
		fmt.Fprintf(logf, "$ %s\n", c)
		code, err := execIn(cctx, rn.NetNS, []string{"/bin/sh", "-c", c}, nil, io.MultiWriter(&out, logf), io.MultiWriter(&out, logf))
		cancel()
		if err == nil && code != 0 {
			err = fmt.Errorf("exit status %d", code)
		}
		if err != nil {
			keep := "kept with --retain"
			if d.opts.Retain {
				keep = "kept"
			}
			return fmt.Errorf("node %s: exec %q: %w; its output (all of it in %s, %s):\n%s", n.Name, c, err, logf.Name(), keep, indent(lastLines(out.String(), 20)))
		}
		rn.Log.Info("exec", "cmd", c, "output", strings.TrimSpace(out.String()))
	}
	return nil
}

// Exec runs argv inside a node of a deployed lab, with the given streams,
// and returns its exit status: erlab's `ip netns exec`.
func Exec(ctx context.Context, labName, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no command given")
	}
	var o Options
	n, err := o.deployedNode(labName, node)
	if err != nil {
		return 0, err
	}
	return execIn(ctx, n.NetNS, argv, stdin, stdout, stderr)
}

// execIn starts argv in the namespace and waits for it. The child is forked
// from a thread inside the namespace, so it is born there; nothing else of
// ours runs in it. A signal ends the child with the status 128+N, as a
// shell reports it.
func execIn(ctx context.Context, ns string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 127, err
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "ERLAB_NETNS="+ns)
	if err := kernel.Do(ns, cmd.Start); err != nil {
		return 0, err
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("timed out: %w", ctx.Err())
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	if s == "" {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
