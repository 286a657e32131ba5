package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newLink(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "link", Short: "Act on a live lab's links: pull or restore one"}
	for _, up := range []bool{false, true} {
		cmd.AddCommand(newLinkSet(g, up))
	}
	return cmd
}

// linkEnd reads a NODE:IFACE argument.
func linkEnd(arg string) (node, iface string, err error) {
	node, iface, ok := strings.Cut(arg, ":")
	if !ok || node == "" || iface == "" {
		return "", "", fmt.Errorf("%q: expected NODE:IFACE", arg)
	}
	return node, iface, nil
}

func newLinkSet(g *globals, up bool) *cobra.Command {
	var flags struct{ file, name string }
	word, short := "down", "Pull a link: the interface goes down, its peer loses carrier"
	if up {
		word, short = "up", "Restore a link pulled with link down, and the static routes through it"
	}
	cmd := &cobra.Command{
		Use:   word + " -t FILE NODE:IFACE",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, iface, err := linkEnd(args[0])
			if err != nil {
				return err
			}
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			if err := l.LinkSet(cmd.Context(), node, iface, up); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s:%s %s\n", node, iface, word)
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	return needsRoot(cmd, "it sets interfaces down and up inside the node's network namespace")
}
