package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newGraph(g *globals) *cobra.Command {
	var flags struct{ file, name, format string }
	cmd := &cobra.Command{
		Use:   "graph -t FILE | --name LAB [--format mermaid|dot]",
		Short: "Print the topology as a Mermaid or Graphviz graph",
		Long: `Print the topology as a Mermaid flowchart or a Graphviz graph: nodes with their kinds and
loopback addresses, links with both ends' interfaces, addresses, and what is stacked on them
(VLANs with their tags and addresses, MACsec devices). --name LAB draws a deployed lab from the
topology file it was deployed from.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file := flags.file
			if flags.name != "" {
				if file != "" {
					return fmt.Errorf("give -t FILE or --name LAB, not both")
				}
				var err error
				if file, err = lab.TopologyFile(flags.name, g.options()); err != nil {
					return err
				}
			}
			t, err := loadTopology(g, file)
			if err != nil {
				return err
			}
			return lab.Graph(g.stdout, t, flags.format)
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "a deployed lab's name")
	cmd.Flags().StringVar(&flags.format, "format", "mermaid", strings.Join(lab.GraphFormats, " or "))
	return cmd
}
