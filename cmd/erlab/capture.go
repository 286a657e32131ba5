package main

import (
	"fmt"
	"io"
	"os"
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
			name, err := labName(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			argv := []string{"tcpdump", "-i", iface, "-n", "-U", "--immediate-mode"}
			if flags.count > 0 {
				argv = append(argv, "-c", fmt.Sprint(flags.count))
			}
			var out io.Writer = g.stdout
			switch flags.write {
			case "":
				argv = append(argv, "-l")
			case "-":
				argv = append(argv, "-w", "-")
			default:
				f, err := os.Create(flags.write)
				if err != nil {
					return err
				}
				defer f.Close()
				argv, out = append(argv, "-w", "-"), f
			}
			argv = append(argv, args[1:]...)
			code, err := lab.Exec(cmd.Context(), name, node, argv, nil, out, g.stderr)
			if err != nil {
				return err
			}
			if code != 0 && cmd.Context().Err() == nil {
				return exitError{code}
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	cmd.Flags().StringVarP(&flags.write, "write", "w", "", "pcap file, or - for stdout")
	cmd.Flags().IntVarP(&flags.count, "count", "c", 0, "stop after N frames")
	return needsRoot(cmd, "it runs tcpdump inside the node's network namespace")
}
