package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newValidate(g *globals) *cobra.Command {
	var flags struct {
		file     string
		noKernel bool
		keys     bool
	}
	cmd := &cobra.Command{
		Use:   "validate -t FILE",
		Short: "Check a topology file, and that this kernel has what it needs, without deploying",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := g.options()
			opts.GenerateKeys = flags.keys
			t, err := loadTopologyWith(g, flags.file, opts)
			if err != nil {
				return err
			}
			if !flags.noKernel {
				if geteuid() != 0 {
					return fmt.Errorf("%s: the file is valid, but checking this kernel needs root: erlab tries each feature and sysctl the lab needs in a throwaway network namespace; run it as root, or give --no-kernel to check the file only", flags.file)
				}
				if err := lab.CheckKernel(t, g.options()); err != nil {
					return err
				}
			}
			links := plural(len(t.Links)+len(t.HostLinks), "link")
			if len(t.HostLinks) > 0 {
				links += fmt.Sprintf(" (%d to the host)", len(t.HostLinks))
			}
			fmt.Fprintf(g.stdout, "%s: lab %s is valid: %s, %s\n", flags.file, t.Name, plural(len(t.Nodes), "node"), links)
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().BoolVar(&flags.noKernel, "no-kernel", false, "check the file only, not this kernel's features")
	cmd.Flags().BoolVar(&flags.keys, "generate-keys", false, "make the key files the topology names and that are missing (random, mode 0600)")
	return cmd
}
