package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
)

func newGraph(g *globals) *cobra.Command {
	var flags struct{ file, format string }
	cmd := &cobra.Command{
		Use:   "graph -t FILE [--format mermaid|dot]",
		Short: "Print the topology as a Mermaid or Graphviz graph",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			return lab.Graph(g.stdout, t, flags.format)
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.format, "format", "mermaid", strings.Join(lab.GraphFormats, " or "))
	return cmd
}

func newValidate(g *globals) *cobra.Command {
	var flags struct {
		file     string
		noKernel bool
	}
	cmd := &cobra.Command{
		Use:   "validate -t FILE",
		Short: "Check a topology file, and that this kernel has what it needs, without deploying",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			if !flags.noKernel {
				if err := lab.CheckKernel(t); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.stdout, "%s: lab %s is valid: %d nodes, %d links\n", flags.file, t.Name, len(t.Nodes), len(t.Links))
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().BoolVar(&flags.noKernel, "no-kernel", false, "check the file only, not this kernel's features")
	return cmd
}

func newCapabilities(g *globals) *cobra.Command {
	var flags struct{ file string }
	cmd := &cobra.Command{
		Use:   "capabilities [-t FILE]",
		Short: "Probe this kernel for the features erlab uses (or a topology needs)",
		Long:  "Probe this kernel, for real, in a throwaway namespace, for every feature erlab uses; with -t, for the features that topology needs. Exits 1 when any is missing.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			features := kernel.AllFeatures
			if flags.file != "" {
				t, err := loadTopology(g, flags.file)
				if err != nil {
					return err
				}
				features = nil
				for _, n := range lab.Needs(t) {
					features = append(features, n.Feature)
				}
			}
			missing, err := kernel.Probe(features)
			if err != nil {
				return err
			}
			for _, f := range features {
				state := "yes"
				if why, ok := missing[f]; ok {
					state = fmt.Sprintf("MISSING (%v)", why)
				}
				fmt.Fprintf(g.stdout, "%-24s %-36s %s\n", f, kernel.FeatureOption(f), state)
			}
			if len(missing) > 0 {
				return fmt.Errorf("%d of %d features missing; run in the microVM: scripts/vm-run -- erlab ...", len(missing), len(features))
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	return cmd
}

func newVerify(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check on the wire that a deployed lab does what its topology claims",
	}
	var flags struct{ file, format string }
	conn := &cobra.Command{
		Use:   "connectivity -t FILE",
		Short: "Ping every neighbour in every subnet the topology declares; exit 1 if any is silent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			res, err := lab.VerifyConnectivity(cmd.Context(), t, g.options())
			if err != nil {
				return err
			}
			if flags.format == "json" {
				return json.NewEncoder(g.stdout).Encode(res)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "FROM\tTO\tADDRESS\tRESULT")
			failed := 0
			for _, r := range res {
				result := fmt.Sprintf("ok %s", r.RTT.Round(time.Microsecond))
				if !r.OK {
					result, failed = "FAIL: "+r.Error, failed+1
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.From, r.To, r.Addr, result)
			}
			tw.Flush()
			if failed > 0 {
				return fmt.Errorf("%d of %d neighbours did not answer", failed, len(res))
			}
			return nil
		},
	}
	topoFlag(conn, &flags.file)
	conn.Flags().StringVar(&flags.format, "format", "table", "table or json")
	cmd.AddCommand(conn, newVerifyEncryption(g))
	return cmd
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
as evidence.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := loadTopology(g, flags.file)
			if err != nil {
				return err
			}
			res, err := lab.VerifyEncryption(cmd.Context(), t, args, g.options())
			if err != nil {
				return err
			}
			if flags.format == "json" {
				return json.NewEncoder(g.stdout).Encode(res)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "LINK\tDECLARED\tRESULT\tFRAMES\tENCRYPTED\tCLEAR\tMARKER\tOUT/IN COUNTERS\tWHY")
			failed := 0
			for _, r := range res {
				verdict := "PASS"
				switch {
				case !r.Checked:
					verdict = "plaintext"
				case !r.Pass:
					verdict, failed = "FAIL", failed+1
				}
				why := r.Reason
				if r.Layers != "" && r.Layers != "ESP" {
					why += "; " + r.Layers
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d/%d\t%s\n", r.Link, r.Declared, verdict, r.Frames, r.MACsecFrames+r.ESPPackets, r.ClearFrames, r.MarkerHits, r.EncryptedOut, r.ValidatedIn, why)
			}
			tw.Flush()
			if failed > 0 {
				return fmt.Errorf("%d of %d links failed the encryption check", failed, len(res))
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.format, "format", "table", "table or json")
	return cmd
}
