package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newCapture(g *globals) *cobra.Command {
	var flags struct {
		file, name, write string
		count             int
	}
	cmd := &cobra.Command{
		Use:   "capture -t FILE NODE:IFACE [-w FILE.pcap | -w -] [-c N] [FILTER...]",
		Short: "Capture an interface of a node to pcap (a file, or stdout for tshark -r - or Wireshark)",
		Long: `Capture an interface of a node with tcpdump running inside the node's namespace, as
containerlab users do with ip netns exec ... tcpdump. With -w FILE the frames go to a pcap file;
with -w - they go to stdout (erlab capture ... -w - | tshark -r -); without -w tcpdump prints them.
A pcap filter may follow. Stop it with Ctrl-C, or give -c N frames.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, iface, ok := strings.Cut(args[0], ":")
			if !ok || node == "" || iface == "" {
				return fmt.Errorf("%q: expected NODE:IFACE", args[0])
			}
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			o := lab.CaptureOptions{Iface: iface, Count: flags.count, Filter: args[1:]}
			switch flags.write {
			case "":
				o.Text = g.stdout
			case "-":
				o.Out = g.stdout
			default:
				o.File = flags.write
			}
			return l.Capture(cmd.Context(), node, o)
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	cmd.Flags().StringVarP(&flags.write, "write", "w", "", "pcap file, or - for stdout")
	cmd.Flags().IntVarP(&flags.count, "count", "c", 0, "stop after N frames")
	return needsRoot(cmd, "it runs tcpdump inside the node's network namespace")
}
