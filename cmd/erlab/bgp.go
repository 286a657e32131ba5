package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab/bgp"
)

func newBGP(g *globals) *cobra.Command {
	var flags struct{ file, name, format string }
	cmd := &cobra.Command{
		Use:   "bgp -t FILE NODE [neighbors|routes|rib]",
		Short: "Show a router's BGP sessions, or its routes (best and multipath, and whether the kernel has them)",
		Long: `Show a router's BGP state from its agent. neighbors (the default): each session's state,
uptime, prefixes received and accepted, and BFD. routes: the best and multipath routes, each marked
as installed in the node's kernel or not. rib: every path, best or not.
The agent also serves GoBGP's own API, so the gobgp CLI works too: erlab exec -t FILE NODE -- gobgp neighbor`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			what := "neighbors"
			if len(args) == 2 {
				what = args[1]
			}
			var out any
			switch what {
			case "neighbors", "neighbours":
				out, err = bgp.Neighbors(cmd.Context(), l, args[0])
			case "routes", "rib":
				out, err = bgp.Routes(cmd.Context(), l, args[0], what == "rib")
			default:
				return fmt.Errorf("bgp %s: expected neighbors, routes or rib", what)
			}
			if err != nil {
				return err
			}
			if flags.format == "json" {
				return json.NewEncoder(g.stdout).Encode(out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			switch v := out.(type) {
			case []bgp.NeighborInfo:
				fmt.Fprintln(tw, "NEIGHBOR\tAS\tSTATE\tUPTIME\tRECEIVED\tACCEPTED\tBFD\tDESCRIPTION")
				for _, n := range v {
					up := "-"
					if n.Uptime > 0 {
						up = n.Uptime.String()
					}
					state := n.State
					if n.Down != "" {
						state += " (" + n.Down + ")"
					}
					if n.Passive {
						state += ", passive"
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", n.Address, n.RemoteAS, state, up, n.Received, n.Accepted, dash(n.BFD), n.Description)
				}
			case []bgp.RouteInfo:
				fmt.Fprintln(tw, "PREFIX\tNEXT HOP\tAS PATH\tLOCAL PREF\tMED\tBEST\tMULTIPATH\tKERNEL")
				for _, r := range v {
					nh := r.NextHop.String()
					if r.Local {
						nh = "local"
					}
					asPath := make([]string, len(r.ASPath))
					for i, a := range r.ASPath {
						asPath[i] = fmt.Sprint(a)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Prefix, nh, dash(strings.Join(asPath, " ")), r.LocalPref, r.MED,
						yes(r.Best), yes(r.Multipath), map[bool]string{true: "installed", false: "-"}[r.Installed])
				}
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	cmd.Flags().StringVar(&flags.format, "format", "table", "table or json")
	return needsRoot(cmd, "it talks to the agent inside the node's network namespace")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}
