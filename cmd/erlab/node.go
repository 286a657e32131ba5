package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

// newNodeCommands are stop, start and restart of a live lab's nodes.
func newNodeCommands(g *globals) []*cobra.Command {
	type verb struct {
		use, short, long string
		run              func(ctx context.Context, l *lab.Lab, names []string, kill bool) ([]lab.NodeReport, error)
	}
	verbs := []verb{
		{"stop", "Stop nodes of a live lab, keeping their links",
			`Stop nodes as a box is switched off: the processes in each node end (SIGTERM, then SIGKILL
after 3 s), its link ends are parked in the lab's parking namespace, down, so that the far ends
lose carrier, and its namespace goes with every address, route and device in it.
The links survive: erlab start brings them back. erlab inspect shows the node stopped.

--kill fails the node as at a power loss: its links go dark first, then every process is killed
at once, so that no goodbye (a BGP Cease, a TCP FIN) reaches a neighbour.`,
			func(ctx context.Context, l *lab.Lab, names []string, kill bool) ([]lab.NodeReport, error) {
				return l.StopNodes(ctx, names, kill)
			}},
		{"start", "Start stopped nodes again, with their links and configuration",
			`Start nodes that erlab stop stopped: each gets a new namespace, its parked link ends back, and
everything its deploy gave it from the topology: addresses, devices, routes, exec commands and
daemons, through the deploy's own steps. Features whose peers a restart leaves wrong put them
right (fresh static keys where a replay window needs them). A node that fails to start is stopped again.

A container node that its runtime restarted behind erlab's back (docker restart, or its process
ended) runs away from its links; erlab inspect shows it detached. erlab start takes its links from
where they were and gives them, with everything else, to the namespace it runs in now.`,
			func(ctx context.Context, l *lab.Lab, names []string, _ bool) ([]lab.NodeReport, error) {
				return l.StartNodes(ctx, names)
			}},
		{"restart", "Stop nodes, then start them again",
			`Stop the nodes as erlab stop does, then start them as erlab start does.`,
			func(ctx context.Context, l *lab.Lab, names []string, _ bool) ([]lab.NodeReport, error) {
				return l.RestartNodes(ctx, names)
			}},
	}
	var out []*cobra.Command
	for _, v := range verbs {
		var flags struct {
			file, name string
			kill       bool
		}
		cmd := &cobra.Command{
			Use:     v.use + " -t FILE NODE...",
			Short:   v.short,
			Long:    v.long,
			Example: fmt.Sprintf("  erlab %s -t topologies/er-bgp.yml pe1", v.use),
			Args:    cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				l, err := openLab(g, flags.file, flags.name)
				if err != nil {
					return err
				}
				reps, err := v.run(cmd.Context(), l, args, flags.kill)
				for _, r := range reps {
					switch r.Did {
					case "stopped", "killed":
						fmt.Fprintf(g.stdout, "%s %s: %s parked, %s ended\n", r.Node, r.Did, plural(r.Links, "link"), plural(r.Processes, "process"))
					case "started", "reattached":
						fmt.Fprintf(g.stdout, "%s %s: %s back\n", r.Node, r.Did, plural(r.Links, "link"))
					default:
						fmt.Fprintf(g.stdout, "%s %s\n", r.Node, r.Did)
					}
				}
				return err
			},
		}
		topoFlag(cmd, &flags.file)
		cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
		if v.use == "stop" {
			cmd.Flags().BoolVar(&flags.kill, "kill", false, "fail as at a power loss: links dark first, then every process killed at once")
		}
		out = append(out, needsRoot(cmd, "it moves interfaces between network namespaces and ends processes in them"))
	}
	return out
}
