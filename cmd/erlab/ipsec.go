package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab/ike"
)

func newIPsec(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "ipsec", Short: "Act on a lab's IPsec tunnels"}
	var flags struct {
		file, format string
		ike          bool
	}
	rekey := &cobra.Command{
		Use:   "rekey -t FILE NODE:TUNNEL [--ike]",
		Short: "Force strongSwan to rekey a tunnel's CHILD SA (or IKE SA), measuring loss meanwhile",
		Long: `Have NODE's strongSwan rekey the CHILD SA of the IKE-keyed tunnel TUNNEL (--ike: its IKE SA)
while a probe stream (` + fmt.Sprint(ike.RekeyRate) + ` pps) crosses the tunnel between its interfaces' addresses, and report the
SPIs before and after and what the stream lost. strongSwan makes the new SA before it deletes the
old one: nothing should be lost.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, tunnel, ok := strings.Cut(args[0], ":")
			if !ok || node == "" || tunnel == "" {
				return fmt.Errorf("%q: expected NODE:TUNNEL", args[0])
			}
			l, err := openLab(g, flags.file, "")
			if err != nil {
				return err
			}
			rep, err := ike.Rekey(cmd.Context(), l, node, tunnel, flags.ike)
			if err != nil {
				return err
			}
			if flags.format == "json" {
				return json.NewEncoder(g.stdout).Encode(rep)
			}
			fmt.Fprintf(g.stdout, "tunnel %s: %s rekeyed from %s in %s; CHILD SA out SPI %#x → %#x\n", rep.Tunnel, rep.What, rep.Node, rep.Took.Round(time.Millisecond), rep.SPIBefore, rep.SPIAfter)
			if rep.Probe != nil {
				fmt.Fprintf(g.stdout, "probe through the tunnel at %d pps: %s\n", ike.RekeyRate, rep.Probe)
			}
			return nil
		},
	}
	topoFlag(rekey, &flags.file)
	rekey.Flags().StringVar(&flags.format, "format", "text", "text or json")
	rekey.Flags().BoolVar(&flags.ike, "ike", false, "rekey the IKE SA instead of the CHILD SA")
	cmd.AddCommand(needsRoot(rekey, "it drives strongSwan inside the nodes and probes through the tunnel"))
	return cmd
}
