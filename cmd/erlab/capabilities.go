package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
)

func newCapabilities(g *globals) *cobra.Command {
	var flags struct{ file string }
	cmd := &cobra.Command{
		Use:   "capabilities [-t FILE]",
		Short: "Probe this kernel for the features erlab uses (or a topology needs)",
		Long:  "Probe this kernel, for real, in a throwaway namespace, for every feature erlab uses; with -t, for the features that topology needs. Exits 1 when any is missing.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			features := kernel.AllFeatures
			if flags.file != "" {
				t, err := loadTopology(g, flags.file)
				if err != nil {
					return err
				}
				features = nil
				for _, n := range lab.Needs(t) {
					features = append(features, n.Feature)
				}
			}
			missing, err := kernel.Probe(features)
			if err != nil {
				return err
			}
			for _, f := range features {
				state := "yes"
				if why, ok := missing[f]; ok {
					state = fmt.Sprintf("MISSING (%v)", why)
				}
				fmt.Fprintf(g.stdout, "%-24s %-36s %s\n", f, kernel.FeatureOption(f), state)
			}
			if len(missing) > 0 {
				return fmt.Errorf("%d of %d features missing; run in the microVM: scripts/vm-run -- erlab ...", len(missing), len(features))
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	return needsRoot(cmd, "it tries each feature for real in a throwaway network namespace")
}
