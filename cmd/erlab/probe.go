package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab/probe"
)

func newProbe(g *globals) *cobra.Command {
	var flags struct {
		file, format string
		both         bool
		c            probe.Config
	}
	cmd := &cobra.Command{
		Use:   "probe -t FILE FROM TO [--rate PPS] [--duration D] [--both]",
		Short: "Send a constant-rate UDP stream from a node and report loss, reordering and the outage",
		Long: `Send a constant-rate UDP stream with sequence numbers from node FROM to TO — a node (its
first address), NODE:IFACE, or an address — and report what arrived: sent, received, lost,
reordered, duplicated, when the losses began and ended, and the loss-derived outage (lost ÷ rate).
Run it while you pull a link to measure a failover.

A stream is one-way: it measures the path from FROM to TO only, and a broken return path does not
show in it (ping would fail). --both sends a second stream back, from TO's node to FROM, at the
same time, and reports each direction. Exits 1 when a stream received nothing at all.

--format json prints one object per stream (a list of two with --both): from, to, address,
receiver, direction, and the counts (durations in nanoseconds).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flags.c.Check(); err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			if flags.format != "text" && flags.format != "json" {
				return fmt.Errorf("unknown format %q (text, json)", flags.format)
			}
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			flows := []probe.Flow{{From: args[0], To: args[1]}}
			if flags.both {
				back, err := flows[0].Reverse(t)
				if err != nil {
					return err
				}
				flows = append(flows, back)
			}
			for _, f := range flows {
				dst, owner, err := probe.Target(t, f.To)
				if err != nil {
					return err
				}
				if !g.quiet {
					fmt.Fprintf(g.stderr, "probing %s → %s (%s), one-way, at %d pps for %s\n", f.From, owner, dst, flags.c.Rate, flags.c.Duration)
				}
			}
			reps, err := probe.Flows(cmd.Context(), t, flows, flags.c)
			if err != nil {
				return err
			}
			if flags.format == "json" {
				enc := json.NewEncoder(g.stdout)
				if len(reps) == 1 {
					err = enc.Encode(reps[0])
				} else {
					err = enc.Encode(reps)
				}
				if err != nil {
					return err
				}
			} else {
				for _, r := range reps {
					fmt.Fprintln(g.stdout, r)
				}
			}
			for _, r := range reps {
				if r.Sent > 0 && r.Received == 0 {
					return fmt.Errorf("probe: nothing of the stream %s → %s arrived (%d sent)", r.From, r.Receiver, r.Sent)
				}
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().IntVar(&flags.c.Rate, "rate", 1000, fmt.Sprintf("packets per second (1 to %d)", probe.MaxRate))
	cmd.Flags().DurationVar(&flags.c.Duration, "duration", 10*time.Second, "how long to send")
	cmd.Flags().IntVar(&flags.c.Size, "size", 64, "UDP payload bytes")
	cmd.Flags().IntVar(&flags.c.Port, "port", 7777, "UDP port at the receiver (the reverse stream uses the next one)")
	cmd.Flags().BoolVar(&flags.both, "both", false, "also send a stream back, from TO's node to FROM, and report each direction")
	cmd.Flags().StringVar(&flags.format, "format", "text", "text or json")
	return needsRoot(cmd, "it opens the stream's sockets inside the nodes' network namespaces")
}
