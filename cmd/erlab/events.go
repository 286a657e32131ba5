package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newEvents(g *globals) *cobra.Command {
	var flags struct {
		file, name, format string
		initial            bool
		counters, duration time.Duration
	}
	cmd := &cobra.Command{
		Use:   "events -t FILE | --name LAB [--format table|json] [--initial-state] [--counters 1s] [--duration D]",
		Short: "Print a deployed lab's changes as they happen, one line each",
		Long: `Print every change in a deployed lab as it happens, one line each, with its time, node and
object: interfaces up, down or without carrier, addresses and routes added and removed (the
kernel's own notifications, in every node's namespace); BGP sessions and BFD, MKA and IKE state,
impairments set and cleared (read every 0.5 to 1 s: the event comes when erlab saw the change);
and what erlab did meanwhile: links pulled, nodes stopped, drills' steps, checks and results.
The table's header comes once every node and feature is watched: a change made after it is
reported. --initial-state prints the state of everything first, marked initial; --counters 1s
adds each moving interface's packet rates at that interval. It runs until interrupted, or for
--duration.

--format json writes one JSON object per line (README, "Events": time, node, kind, object,
state, detail, initial, values).`,
		Example: `  erlab events -t topologies/er-bgp.yml
  erlab events -t topologies/er-bgp.yml --initial-state --format json | jq 'select(.kind == "bgp")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flags.format != "table" && flags.format != "json" {
				return fmt.Errorf("--format %q: table or json", flags.format)
			}
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if flags.duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, flags.duration)
				defer cancel()
			}
			enc := json.NewEncoder(g.stdout)
			line := func(e lab.Event) {
				if flags.format == "json" {
					enc.Encode(e)
					return
				}
				state := e.State
				if e.Initial {
					state += " (now)"
				}
				fmt.Fprintf(g.stdout, "%-12s  %-14s  %-9s  %-20s  %-12s  %s\n", e.Time.Format("15:04:05.000"), orDash(e.Node), e.Kind, e.Object, state, e.Detail)
			}
			// The table's header comes when the watch is ready, so that a
			// user (or a script) who acts once it shows knows the change
			// will be reported; what came before it (the initial state)
			// follows it.
			var mu sync.Mutex
			ready, early := flags.format == "json", []lab.Event(nil)
			flush := func() {
				mu.Lock()
				defer mu.Unlock()
				if ready {
					return
				}
				if flags.format == "table" {
					fmt.Fprintf(g.stdout, "%-12s  %-14s  %-9s  %-20s  %-12s  %s\n", "TIME", "NODE", "KIND", "OBJECT", "STATE", "DETAIL")
				}
				for _, e := range early {
					line(e)
				}
				ready, early = true, nil
			}
			opts := lab.WatchOptions{Initial: flags.initial, Counters: flags.counters, Ready: flush}
			err = l.Watch(ctx, opts, func(e lab.Event) {
				mu.Lock()
				defer mu.Unlock()
				if !ready {
					early = append(early, e)
					return
				}
				line(e)
			})
			if err == nil {
				flush() // a watch cut short before it was ready: what it saw
			}
			if ctx.Err() != nil {
				return nil // interrupted, or the duration is up: the stream's end
			}
			return err
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "a deployed lab's name")
	cmd.Flags().StringVar(&flags.format, "format", "table", "table or json (one object per line)")
	cmd.Flags().BoolVar(&flags.initial, "initial-state", false, "print the current state of every object first")
	cmd.Flags().DurationVar(&flags.counters, "counters", 0, "report moving interfaces' packet rates at this interval (0: off)")
	cmd.Flags().DurationVar(&flags.duration, "duration", 0, "stop after this long (0: until interrupted)")
	return needsRoot(cmd, "it subscribes to the kernel's notifications inside each node's network namespace")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
