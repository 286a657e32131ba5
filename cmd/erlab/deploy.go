package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newDeploy(g *globals) *cobra.Command {
	var flags struct {
		file   string
		retain bool
		keys   bool
		format string
		wait   time.Duration
	}
	cmd := &cobra.Command{
		Use:   "deploy -t FILE",
		Short: "Deploy the lab a topology file describes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := g.options()
			opts.GenerateKeys = flags.keys
			t, err := loadTopologyWith(g, flags.file, opts)
			if err != nil {
				return err
			}
			opts.Retain = flags.retain
			start := time.Now()
			l := lab.FromTopology(t, opts)
			if err := l.Deploy(cmd.Context()); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stderr, "lab %s deployed: %s, %s in %s\n", t.Name, plural(len(t.Nodes), "node"), plural(len(t.Links), "link"), time.Since(start).Round(time.Millisecond))
			}
			if cmd.Flags().Changed("wait") {
				if err := waitReady(cmd, g, l, flags.wait); err != nil {
					return err
				}
			}
			info, err := l.Inspect(cmd.Context())
			if err != nil {
				return err
			}
			return printInspect(g.stdout, flags.format, []*lab.LabInfo{info})
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().BoolVar(&flags.retain, "retain", false, "keep what a failed deploy made, for debugging")
	cmd.Flags().BoolVar(&flags.keys, "generate-keys", false, "make the key files the topology names and that are missing (random, mode 0600)")
	cmd.Flags().StringVar(&flags.format, "format", "table", "summary format: table or json")
	cmd.Flags().DurationVar(&flags.wait, "wait", time.Minute, "then wait (up to this long) until the routing has converged, as erlab wait")
	cmd.Flags().Lookup("wait").NoOptDefVal = time.Minute.String()
	return needsRoot(cmd, "it creates network namespaces, veth pairs and kernel devices over netlink")
}

func newDestroy(g *globals) *cobra.Command {
	var flags struct {
		file, name string
		all        bool
	}
	cmd := &cobra.Command{
		Use:   "destroy -t FILE | --name LAB | --all",
		Short: "Remove every namespace, link, process and file of a lab",
		Long:  "Remove every namespace, link, process and file of a lab. It finds them by the lab's name, so it also cleans up after a deploy that was killed half-way or whose state directory was deleted. Destroying a lab that is not there is not an error.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := g.options()
			var reps []lab.DestroyReport
			if flags.all {
				if flags.file != "" || flags.name != "" {
					return fmt.Errorf("--all takes no -t or --name")
				}
				var err error
				if reps, err = lab.DestroyAll(cmd.Context(), opts); err != nil {
					return err
				}
			} else {
				name, err := labName(g, flags.file, flags.name)
				if err != nil {
					return err
				}
				start := time.Now()
				opts.Status.Start("Destroying lab " + name)
				rep, err := lab.DestroyWithReport(cmd.Context(), name, opts)
				opts.Status.End(err == nil)
				if err != nil {
					return err
				}
				reps = append(reps, rep)
				if !g.quiet {
					fmt.Fprintf(g.stderr, "destroyed in %s\n", time.Since(start).Round(time.Millisecond))
				}
			}
			for _, r := range reps {
				fmt.Fprintf(g.stdout, "lab %s: removed %s, %s%s\n", r.Lab, plural(r.Namespaces, "namespace"), plural(r.Processes, "process"), map[bool]string{true: ", state directory", false: ""}[r.StateDir])
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	cmd.Flags().BoolVar(&flags.all, "all", false, "destroy every lab on this host")
	return needsRoot(cmd, "it stops the lab's processes and removes its namespaces")
}
