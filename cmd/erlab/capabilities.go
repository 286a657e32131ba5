package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/topo"
)

func newCapabilities(g *globals) *cobra.Command {
	var flags struct{ file string }
	cmd := &cobra.Command{
		Use:   "capabilities [-t FILE]",
		Short: "Probe this kernel for the features erlab uses (or a topology needs)",
		Long:  "Probe this kernel, for real, in a throwaway namespace, for every feature erlab uses; with -t, for the features that topology needs. Exits 1 when any is missing.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var t *topo.Topology
			if flags.file != "" {
				var err error
				if t, err = loadTopology(g, flags.file); err != nil {
					return err
				}
			}
			caps, err := lab.Capabilities(t, g.options())
			if err != nil {
				return err
			}
			missing := 0
			for _, c := range caps {
				state := "yes"
				if c.Missing != nil {
					state, missing = fmt.Sprintf("MISSING (%v)", c.Missing), missing+1
				}
				fmt.Fprintf(g.stdout, "%-24s %-36s %s\n", c.Name, c.Option, state)
			}
			if missing > 0 {
				return fmt.Errorf("%d of %d features missing; run in the microVM: scripts/vm-run -- erlab ...", missing, len(caps))
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	return needsRoot(cmd, "it tries each feature for real in a throwaway network namespace")
}
