package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newExpand(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "expand -t FILE",
		Short: "Print the plain topology a file's expressroute: block stands for (valid on its own, editable)",
		Long: `expand prints the topology erlab builds from FILE: its expressroute: block
written out as the nodes, links, VLANs, addresses and BGP sessions it stands
for, beside the file's own nodes. The output is a topology file of its own:
save it, edit it, deploy it with -t. Secrets stay as the file gives them
(${VAR} references and key files), never their values.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("give the topology file with -t FILE")
			}
			out, err := lab.Expand(file, g.options())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "# erlab expand -t %s: the plain topology erlab builds from it.\n", file)
			_, err = g.stdout.Write(out)
			return err
		},
	}
	topoFlag(cmd, &file)
	return cmd
}
