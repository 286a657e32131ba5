package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newExec(g *globals) *cobra.Command {
	var flags struct{ file, name string }
	cmd := &cobra.Command{
		Use:   "exec -t FILE NODE -- CMD [ARG...]",
		Short: "Run a command inside a node; its exit status is erlab's",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := labName(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			code, err := lab.Exec(cmd.Context(), name, args[0], args[1:], os.Stdin, g.stdout, g.stderr)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	return cmd
}
