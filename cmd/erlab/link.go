package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newLink(g *globals) *cobra.Command {
	var flags struct{ file, name string }
	cmd := &cobra.Command{
		Use:       "link down|up -t FILE NODE:IFACE",
		Short:     "Pull or restore a link: the interface goes down, its peer loses carrier",
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"down", "up"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var up bool
			switch args[0] {
			case "up":
				up = true
			case "down":
			default:
				return fmt.Errorf("link %s: expected down or up", args[0])
			}
			node, iface, ok := strings.Cut(args[1], ":")
			if !ok || node == "" || iface == "" {
				return fmt.Errorf("%q: expected NODE:IFACE", args[1])
			}
			name, err := labName(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			if err := lab.LinkSet(name, node, iface, up, g.options()); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s:%s %s\n", node, iface, args[0])
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	return needsRoot(cmd, "it sets interfaces down and up inside the node's network namespace")
}
