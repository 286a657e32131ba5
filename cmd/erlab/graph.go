package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newGraph(g *globals) *cobra.Command {
	var flags struct{ file, name, format, view string }
	cmd := &cobra.Command{
		Use:   "graph -t FILE | --name LAB [--format mermaid|dot] [--view links|circuits]",
		Short: "Print the topology as a Mermaid or Graphviz graph",
		Long: `Print the topology as a Mermaid flowchart or a Graphviz graph: nodes with their kinds and
loopback addresses, links with both ends' interfaces, addresses, and what is stacked on them
(VLANs with their tags and addresses, MACsec devices). --name LAB draws a deployed lab from the
topology file it was deployed from.

--view circuits draws an expressroute: declaration as Azure shows it instead: sites, port
pairs, circuits with their peerings (VLAN and S-tags, subnets, ASNs, prefix limits, route
filters), virtual networks with their connections' weights, Global Reach and VPN connections.`,
		Example: `  erlab graph -t topologies/er-direct-circuits.yml
  erlab graph -t topologies/er-direct-circuits.yml --view circuits --format dot | dot -Tsvg > circuits.svg`,
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
			return lab.GraphView(g.stdout, t, flags.view, flags.format, g.options())
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "a deployed lab's name")
	cmd.Flags().StringVar(&flags.format, "format", "mermaid", strings.Join(lab.GraphFormats, " or "))
	cmd.Flags().StringVar(&flags.view, "view", lab.LinksView, strings.Join(lab.GraphViews(g.options()), " or "))
	return cmd
}
