package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newMACsec(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "macsec", Short: "Act on a lab's MACsec links"}
	var flags struct{ file, format string }
	rotate := &cobra.Command{
		Use:   "rotate -t FILE NODE:IFACE",
		Short: "Rotate a static-key MACsec link's keys without losing a packet",
		Long: `Rotate the SAKs of the MACsec link NODE:IFACE ends (the link's interface or its MACsec
device): fresh random keys on the next association number are installed for receive on both
ends, then for transmit, then both ends switch, then the old keys are retired. Run erlab probe
across the link meanwhile to see that nothing is lost. The new keys exist only in the kernels.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, iface, ok := strings.Cut(args[0], ":")
			if !ok || node == "" || iface == "" {
				return fmt.Errorf("%q: expected NODE:IFACE", args[0])
			}
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			rep, err := lab.RotateMACsec(cmd.Context(), t, node, iface)
			if err != nil {
				return err
			}
			if flags.format == "json" {
				return json.NewEncoder(g.stdout).Encode(rep)
			}
			fmt.Fprintf(g.stdout, "%s: keys rotated from AN %d to AN %d in %s; new key IDs %s\n", rep.Link, rep.FromAN, rep.ToAN, rep.Took.Round(1000), strings.Join(rep.NewKeyIDs, ", "))
			return nil
		},
	}
	topoFlag(rotate, &flags.file)
	rotate.Flags().StringVar(&flags.format, "format", "text", "text or json")
	cmd.AddCommand(rotate)
	return cmd
}
