package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newVerify(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check on the wire that a deployed lab does what its topology claims",
	}
	cmd.AddCommand(newVerifyConnectivity(g), newVerifyEncryption(g))
	return cmd
}

// verdict is what every format of a verify command ends with, and what its
// exit status says: a failure, or nothing checked at all, is not a pass.
type verdict struct {
	Pass    bool   `json:"pass"`
	Checked int    `json:"checked"`
	Failed  int    `json:"failed"`
	Reason  string `json:"reason"`
}

func (v verdict) err() error {
	if v.Pass {
		return nil
	}
	return fmt.Errorf("verify: %s", v.Reason)
}

// printJSON writes a verify command's result object: the verdict's fields,
// then the checks.
func printJSON(w io.Writer, v verdict, checks any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		verdict
		Checks any `json:"checks"`
	}{v, checks})
}

func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("unknown format %q (table, json)", format)
	}
	return nil
}

func newVerifyConnectivity(g *globals) *cobra.Command {
	var flags struct{ file, format string }
	cmd := &cobra.Command{
		Use:   "connectivity -t FILE",
		Short: "Ping every neighbour in every subnet the topology declares; exit 1 if any is silent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(flags.format); err != nil {
				return err
			}
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			res, err := lab.VerifyConnectivity(cmd.Context(), t, g.options())
			if err != nil {
				return err
			}
			v := verdict{Checked: len(res)}
			for _, r := range res {
				if !r.OK {
					v.Failed++
				}
			}
			switch {
			case v.Checked == 0:
				v.Reason = "nothing to check: no two nodes of the lab have addresses in one subnet"
			case v.Failed > 0:
				v.Reason = fmt.Sprintf("%d of %d neighbours did not answer", v.Failed, v.Checked)
			default:
				v.Pass, v.Reason = true, fmt.Sprintf("all %d neighbours answered", v.Checked)
			}
			if flags.format == "json" {
				if res == nil {
					res = []lab.Reach{}
				}
				if err := printJSON(g.stdout, v, res); err != nil {
					return err
				}
				return v.err()
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "FROM\tTO\tADDRESS\tRESULT")
			for _, r := range res {
				result := fmt.Sprintf("ok %s", r.RTT.Round(time.Microsecond))
				if !r.OK {
					result = "FAIL: " + r.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.From, r.To, r.Addr, result)
			}
			tw.Flush()
			return v.err()
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.format, "format", "table", "table or json")
	return needsRoot(cmd, "it pings from inside the nodes' network namespaces")
}

func newVerifyEncryption(g *globals) *cobra.Command {
	var flags struct{ file, format string }
	cmd := &cobra.Command{
		Use:   "encryption -t FILE [NODE:IFACE | TUNNEL ...]",
		Short: "Prove on the wire that each MACsec link and IPsec tunnel encrypts; exit 1 if any does not",
		Long: `For each MACsec link (or the links of the NODE:IFACE given, plaintext ones included), send a
flow carrying a unique marker across it while capturing the receiving port inside its namespace,
and pass only if every frame there is MACsec (0x88E5, the flow's from the sender's SCI) or MKA,
the marker appears nowhere, and the kernel's counters moved as much as the flow.

For each IPsec tunnel (or the TUNNELs named), send the marked flow through it — between the tunnel
interfaces' addresses, or the tunnel's verify: {from, to} — while capturing what leaves the first
endpoint toward the second, and pass only if all of it left as ESP (protocol 50, or UDP 4500 with
NAT-T) with the SA's SPI, nothing else crossed in clear between the endpoints, the marker appears
nowhere, and both SAs' counters moved as much as the flow. Captures are kept in the lab directory
as evidence.

Exit status 0 only when something was checked and everything checked passed; a name that is no
link end and no tunnel is an error.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(flags.format); err != nil {
				return err
			}
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			res, err := lab.VerifyEncryption(cmd.Context(), t, args, g.options())
			if err != nil {
				return err
			}
			var v verdict
			for _, r := range res {
				if r.Checked {
					v.Checked++
					if !r.Pass {
						v.Failed++
					}
				}
			}
			switch {
			case v.Checked == 0:
				v.Reason = fmt.Sprintf("nothing to check: lab %s declares no MACsec link and no IPsec tunnel (name a link end, NODE:IFACE, to check a plaintext link)", t.Name)
			case v.Failed > 0:
				v.Reason = fmt.Sprintf("%d of %d links and tunnels failed the encryption check", v.Failed, v.Checked)
			default:
				v.Pass, v.Reason = true, fmt.Sprintf("all %d links and tunnels checked are encrypted on the wire", v.Checked)
			}
			if flags.format == "json" {
				if res == nil {
					res = []lab.EncryptionCheck{}
				}
				if err := printJSON(g.stdout, v, res); err != nil {
					return err
				}
				return v.err()
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "LINK\tDECLARED\tRESULT\tFRAMES\tENCRYPTED\tCLEAR\tMARKER\tOUT/IN COUNTERS\tWHY")
			for _, r := range res {
				result := "PASS"
				switch {
				case !r.Checked:
					result = "plaintext"
				case !r.Pass:
					result = "FAIL"
				}
				why := r.Reason
				if r.Layers != "" && r.Layers != "ESP" {
					why += "; " + r.Layers
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d/%d\t%s\n", r.Link, r.Declared, result, r.Frames, r.MACsecFrames+r.ESPPackets, r.ClearFrames, r.MarkerHits, r.EncryptedOut, r.ValidatedIn, why)
			}
			tw.Flush()
			return v.err()
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.format, "format", "table", "table or json")
	return needsRoot(cmd, "it sends a marked flow and captures it inside the nodes' network namespaces")
}
