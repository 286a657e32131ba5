package main

import (
	"errors"
	"os"
	"slices"

	"github.com/spf13/cobra"
)

func newExec(g *globals) *cobra.Command {
	var flags struct{ file, name string }
	cmd := &cobra.Command{
		Use:   "exec -t FILE NODE [--] CMD [ARG...]",
		Short: "Run a command inside a node; its exit status is erlab's",
		Long: `Run a command inside a node, as ip netns exec does; erlab exits with its status.
Everything after NODE is the command, its flags included (ping -c1 ...); a -- before it is
allowed and dropped. erlab's own flags (-t, --name) go before NODE.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, argv := args[0], args[1:]
			if len(argv) > 0 && argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return errors.New("exec: no command after NODE: erlab exec -t FILE NODE -- CMD [ARG...]")
			}
			if flags.file == "" && flags.name == "" && slices.ContainsFunc(args[1:], func(a string) bool {
				return a == "-t" || a == "--topo" || a == "--name"
			}) {
				return errors.New("exec: erlab's own flags go before NODE; everything after NODE is the command: erlab exec -t FILE NODE -- CMD [ARG...]")
			}
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			code, err := l.Exec(cmd.Context(), node, argv, os.Stdin, g.stdout, g.stderr)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	// The command's own flags are its, not erlab's: flags stop at NODE.
	cmd.Flags().SetInterspersed(false)
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	return needsRoot(cmd, "it enters the node's network namespace")
}
