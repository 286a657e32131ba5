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
	"github.com/erlab-dev/erlab/nodes"
)

// ExecTimeout bounds each exec command of a deploy.
const ExecTimeout = 2 * time.Minute

// runExec runs a node's exec commands in order through /bin/sh, inside the
// node; their output goes to the node's exec.log. A command that fails
// fails the deploy, with its output in the error.
func (d *deployment) runExec(ctx context.Context, n *nodes.Node) error {
	if err := n.MakeDir(); err != nil {
		return err
	}
	logPath := filepath.Join(n.Dir, "exec.log")
	for _, c := range n.Spec.Exec {
		err := n.Exec("/bin/sh -c "+kernel.Quote(c), func() error {
			logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				return err
			}
			defer logf.Close()
			cctx, cancel := context.WithTimeout(ctx, ExecTimeout)
			defer cancel()
			var out bytes.Buffer
			fmt.Fprintf(logf, "$ %s\n", c)
			ns := &NodeState{Name: n.Spec.Name, Kind: n.Spec.Kind, NetNS: n.NetNS}
			code, err := d.opts.execIn(cctx, d.t.Name, ns, []string{"/bin/sh", "-c", c}, nil, io.MultiWriter(&out, logf), io.MultiWriter(&out, logf))
			if err == nil && code != 0 {
				err = fmt.Errorf("exit status %d", code)
			}
			if err != nil {
				keep := "kept with --retain"
				if d.opts.Retain {
					keep = "kept"
				}
				return fmt.Errorf("node %s: exec %q: %w; its output (all of it in %s, %s):\n%s", n.Spec.Name, c, err, logPath, keep, indent(lastLines(out.String(), 20)))
			}
			n.Log.Info("exec", "cmd", c, "output", strings.TrimSpace(out.String()))
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Exec runs argv inside a node of a deployed lab, with the given streams,
// and returns its exit status: erlab's `ip netns exec`.
func Exec(ctx context.Context, labName, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	l, err := OpenName(labName, Options{})
	if err != nil {
		return 0, err
	}
	return l.Exec(ctx, node, argv, stdin, stdout, stderr)
}

// execIn starts argv in the node and waits for it. A kind that runs
// commands in more than a network namespace (a container) makes the
// command itself; otherwise the child is forked from a thread inside the
// node's namespace, so it is born there, and nothing else of ours runs in
// it. A signal ends the child with the status 128+N, as a shell reports it.
func (o *Options) execIn(ctx context.Context, labName string, n *NodeState, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	kind, _ := o.kinds().Get(n.Kind)
	if e, ok := kind.(nodes.Execer); ok {
		return e.Exec(ctx, labName, n.Name, n.NetNS, argv, stdin, stdout, stderr)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 127, err
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "ERLAB_NETNS="+n.NetNS)
	if err := kernel.Do(n.NetNS, cmd.Start); err != nil {
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
