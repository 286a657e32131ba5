// Command erlab deploys ExpressRoute network labs on one Linux host from a
// YAML topology. It is a thin shell: flags in, one call into package lab,
// results out (stdout), progress and logs on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/topo"
)

// exitError carries a command's exit status without an extra message (erlab
// exec passes its command's status through).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// globals are the flags every command takes.
type globals struct {
	quiet   bool
	verbose bool
	stdout  io.Writer
	stderr  io.Writer
}

// log is the logger every command logs through: warnings, and with -v
// everything the library does.
func (g *globals) log() *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

func (g *globals) options() lab.Options {
	opts := lab.Options{Log: g.log()}
	if g.quiet {
		opts.Status = quietStatus{}
	} else {
		opts.Status = newStatus(g.stderr)
	}
	return opts
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "erlab",
		Short:         "Deploy ExpressRoute network labs on one Linux host",
		Long:          "erlab deploys network labs — namespaces joined by veth pairs, VLANs, bridges — from one YAML topology, to reproduce the hops of an Azure ExpressRoute circuit.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "print results only, no progress")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log what is done")
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.Version = version()
	root.SetVersionTemplate("erlab {{.Version}}\n")
	root.AddCommand(
		newDeploy(g), newDestroy(g), newInspect(g), newExec(g), newLink(g),
		newGraph(g), newValidate(g), newExpand(g), newCapabilities(g), newVerify(g), newProbe(g), newDrill(g), newWait(g), newBGP(g), newCapture(g), newMACsec(g), newIPsec(g), newRouteFilter(g), newEvents(g), newServe(g),
		newVersion(g),
	)
	root.AddCommand(newNodeCommands(g)...)
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		g.log().Debug("erlab", "command", cmd.CommandPath(), "args", args)
		return needRoot(cmd)
	}
	return root
}

// rootAnnotation holds, on a command that needs root, why it does.
const rootAnnotation = "erlab-needs-root"

// needsRoot marks a command as needing root, saying why.
func needsRoot(cmd *cobra.Command, why string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[rootAnnotation] = why
	return cmd
}

// geteuid is os.Geteuid, replaced in tests.
var geteuid = os.Geteuid

// needRoot refuses, with the reason, a command that needs root when erlab
// does not run as root: better than the EPERM of the first system call.
func needRoot(cmd *cobra.Command) error {
	why, ok := cmd.Annotations[rootAnnotation]
	if !ok || geteuid() == 0 {
		return nil
	}
	return fmt.Errorf("%s needs root: %s; run it as root (sudo %s ...)", cmd.CommandPath(), why, cmd.CommandPath())
}

// plural says "1 node", "2 nodes".
func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	if strings.HasSuffix(one, "s") {
		return fmt.Sprintf("%d %ses", n, one)
	}
	return fmt.Sprintf("%d %ss", n, one)
}

func main() {
	lab.MaybeRunHelper(lab.Options{}) // deploy re-executes this binary as its helpers (agents, keepers)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	g := &globals{stdout: os.Stdout, stderr: os.Stderr}
	err := newRoot(g).ExecuteContext(ctx)
	stop()
	os.Exit(report(g.stderr, err))
}

// report prints an error the way a user can act on it and picks the exit
// status: 0 ok, 1 failure, the command's own status for exec.
func report(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var el topo.ErrorList
	if errors.As(err, &el) {
		fmt.Fprintf(w, "%s\nerlab: %d problem(s) in the topology; nothing was changed\n", el.Error(), len(el))
		return 1
	}
	fmt.Fprintf(w, "erlab: %v\n", err)
	return 1
}

// topoFlag is the -t FILE flag several commands share.
func topoFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "topo", "t", "", "topology file")
}

// loadTopology loads -t FILE and prints its warnings.
func loadTopology(g *globals, path string) (*topo.Topology, error) {
	return loadTopologyWith(g, path, g.options())
}

func loadTopologyWith(g *globals, path string, opts lab.Options) (*topo.Topology, error) {
	if path == "" {
		return nil, errors.New("give the topology file with -t FILE")
	}
	t, err := lab.Load(path, opts)
	if err != nil {
		return nil, err
	}
	for _, w := range t.Warnings {
		fmt.Fprintf(g.stderr, "warning: %s\n", w)
	}
	return t, nil
}

// openLab opens the lab a command acts on: -t FILE, or --name LAB.
func openLab(g *globals, file, name string) (*lab.Lab, error) {
	switch {
	case name != "" && file != "":
		return nil, errors.New("give -t FILE or --name LAB, not both")
	case name != "":
		return lab.OpenName(name, g.options())
	case file != "":
		t, err := loadTopology(g, file)
		if err != nil {
			return nil, err
		}
		return lab.FromTopology(t, g.options()), nil
	}
	return nil, errors.New("give the lab with -t FILE or --name LAB")
}

// labName resolves which lab a command acts on: --name, or -t FILE's name.
func labName(g *globals, file, name string) (string, error) {
	switch {
	case name != "" && file != "":
		return "", errors.New("give -t FILE or --name LAB, not both")
	case name != "":
		return name, nil
	case file != "":
		t, err := loadTopology(g, file)
		if err != nil {
			return "", err
		}
		return t.Name, nil
	}
	return "", errors.New("give the lab with -t FILE or --name LAB")
}
