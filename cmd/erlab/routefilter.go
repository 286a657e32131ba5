package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab/expressroute"
)

func newRouteFilter(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "route-filter",
		Short: "Attach or detach a circuit's route filter on Microsoft peering, on a live lab",
		Long: `Microsoft sends nothing over Microsoft peering until a route filter is attached to it; the
filter lists the services (their BGP communities) whose prefixes the customer gets. A circuit
declared with microsoft-peering: route-filter: (or a plain topology's topology.route-filters) has
one, attached at deploy unless it says attached: false. These commands change it on both of the
circuit's MSEEs at once, as Azure does when a filter is attached to the peering or taken off it;
the routes follow within a second.`,
	}
	for _, attach := range []bool{true, false} {
		cmd.AddCommand(newRouteFilterSet(g, attach))
	}
	return cmd
}

func newRouteFilterSet(g *globals, attach bool) *cobra.Command {
	var flags struct{ file, name string }
	word, short := "detach", "Detach the route filter: the MSEEs send the customer no Microsoft route"
	if attach {
		word, short = "attach", "Attach the route filter: the MSEEs send the routes of the services it lists"
	}
	cmd := &cobra.Command{
		Use:     word + " -t FILE CIRCUIT",
		Short:   short,
		Example: "  erlab route-filter " + word + " -t topologies/er-microsoft-peering.yml contoso",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			did, err := expressroute.SetRouteFilter(cmd.Context(), l, args[0], attach)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, did)
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	return needsRoot(cmd, "it talks to the MSEEs' agents inside their network namespaces")
}
