package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab/netem"
)

func newLink(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "link", Short: "Act on a live lab's links: pull or restore one, impair one"}
	for _, up := range []bool{false, true} {
		cmd.AddCommand(newLinkSet(g, up))
	}
	cmd.AddCommand(newLinkImpair(g))
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

func newLinkImpair(g *globals) *cobra.Command {
	var flags struct {
		file, name  string
		spec        netem.ParamsSpec
		clear, both bool
	}
	cmd := &cobra.Command{
		Use:   "impair -t FILE NODE:IFACE [--delay D] [--jitter D] [--loss P] [--corrupt P] [--duplicate P] [--reorder P] [--rate R] | --clear",
		Short: "Impair a link end's egress on a live lab (netem), or clear it",
		Long: `Set the impairment of the egress of NODE:IFACE on a deployed lab: what is given replaces what
the interface had (as tc qdisc replace does). --both does the same on the link's other end, so
that both directions are impaired, as impair: on a link in the topology is. --clear removes it.
erlab inspect shows every impairment as the kernel has it.

Delays are durations (20ms), percentages take an optional % (0.5%), rates tc's units (100mbit,
1gbit, 64kbit; bps, kbps, mbps, gbps are bytes per second). A rate alone is a token bucket (tbf),
anything else netem.`,
		Example: `  erlab link impair -t lab.yml ce:eth1 --delay 20ms --jitter 2ms --loss 0.5%
  erlab link impair -t lab.yml ce:eth1 --both --rate 100mbit
  erlab link impair -t lab.yml ce:eth1 --clear`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, iface, err := linkEnd(args[0])
			if err != nil {
				return err
			}
			p, err := netem.ParseFlags(flags.spec)
			if err != nil {
				return err
			}
			switch {
			case flags.clear && !p.Zero():
				return fmt.Errorf("--clear removes the impairment: give it alone, or the impairment without it")
			case !flags.clear && p.Zero():
				return fmt.Errorf("give an impairment (--delay, --jitter, --loss, --corrupt, --duplicate, --reorder, --rate) or --clear")
			}
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			ends := []string{node + ":" + iface}
			if flags.both {
				peer, err := netem.Peer(l, node, iface)
				if err != nil {
					return err
				}
				ends = append(ends, peer.String())
			}
			for _, end := range ends {
				n, i, _ := strings.Cut(end, ":")
				if err := netem.Impair(cmd.Context(), l, n, i, p); err != nil {
					return err
				}
				if p.Zero() {
					fmt.Fprintf(g.stdout, "%s: impairment cleared\n", end)
				} else {
					fmt.Fprintf(g.stdout, "%s: %s\n", end, p)
				}
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	f := cmd.Flags()
	f.StringVar(&flags.name, "name", "", "lab name")
	f.StringVar(&flags.spec.Delay, "delay", "", "one-way delay added to each packet, such as 20ms")
	f.StringVar(&flags.spec.Jitter, "jitter", "", "random variation of the delay, such as 2ms (needs --delay)")
	f.StringVar(&flags.spec.Loss, "loss", "", "share of packets dropped, such as 0.5%")
	f.StringVar(&flags.spec.Corrupt, "corrupt", "", "share of packets with a flipped bit, such as 0.1%")
	f.StringVar(&flags.spec.Duplicate, "duplicate", "", "share of packets sent twice, such as 0.1%")
	f.StringVar(&flags.spec.Reorder, "reorder", "", "share of packets sent at once, ahead of delayed ones (needs --delay)")
	f.StringVar(&flags.spec.Rate, "rate", "", "rate limit, such as 100mbit")
	f.BoolVar(&flags.clear, "clear", false, "remove the impairment")
	f.BoolVar(&flags.both, "both", false, "also the link's other end: both directions")
	return needsRoot(cmd, "it changes queueing disciplines inside the node's network namespace")
}
