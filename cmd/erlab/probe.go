package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/probe"
)

func newProbe(g *globals) *cobra.Command {
	var flags struct {
		file, format string
		c            probe.Config
	}
	cmd := &cobra.Command{
		Use:   "probe -t FILE FROM TO [--rate PPS] [--duration D]",
		Short: "Send a constant-rate UDP stream from a node and report loss, reordering and the outage",
		Long: `Send a constant-rate UDP stream with sequence numbers from node FROM to TO — a node (its
first address), NODE:IFACE, or an address — and report what arrived: sent, received, lost,
reordered, duplicated, when the losses began and ended, and the loss-derived outage (lost ÷ rate).
Run it while you pull a link to measure a failover.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			dst, owner, err := lab.ProbeTarget(t, args[1])
			if err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stderr, "probing %s -> %s (%s) at %d pps for %s\n", args[0], owner, dst, flags.c.Rate, flags.c.Duration)
			}
			rep, err := lab.Probe(cmd.Context(), t, args[0], args[1], flags.c)
			if err != nil {
				return err
			}
			if flags.format == "json" {
				return json.NewEncoder(g.stdout).Encode(rep)
			}
			fmt.Fprintln(g.stdout, rep)
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().IntVar(&flags.c.Rate, "rate", 1000, "packets per second")
	cmd.Flags().DurationVar(&flags.c.Duration, "duration", 10*time.Second, "how long to send")
	cmd.Flags().IntVar(&flags.c.Size, "size", 64, "UDP payload bytes")
	cmd.Flags().IntVar(&flags.c.Port, "port", 7777, "UDP port at the receiver")
	cmd.Flags().StringVar(&flags.format, "format", "text", "text or json")
	return cmd
}
