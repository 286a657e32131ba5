package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
)

func newInspect(g *globals) *cobra.Command {
	var flags struct {
		file, name, format string
		all                bool
	}
	cmd := &cobra.Command{
		Use:   "inspect -t FILE | --name LAB | --all",
		Short: "Show a deployed lab's nodes, interfaces and links, as the kernel has them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := g.options()
			if flags.all {
				infos, err := lab.InspectAll(cmd.Context(), opts)
				if err != nil {
					return err
				}
				return printInspect(g.stdout, flags.format, infos)
			}
			name, err := labName(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			info, err := lab.Inspect(cmd.Context(), name, opts)
			if err != nil {
				return err
			}
			return printInspect(g.stdout, flags.format, []*lab.LabInfo{info})
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	cmd.Flags().BoolVar(&flags.all, "all", false, "every lab on this host")
	cmd.Flags().StringVar(&flags.format, "format", "table", "table or json")
	return needsRoot(cmd, "it reads the lab's namespaces, and its state in /run/erlab, which only root may read")
}

func printInspect(w io.Writer, format string, infos []*lab.LabInfo) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if len(infos) == 1 {
			return enc.Encode(infos[0])
		}
		if infos == nil {
			infos = []*lab.LabInfo{}
		}
		return enc.Encode(infos)
	case "table":
	default:
		return fmt.Errorf("unknown format %q (table, json)", format)
	}
	if len(infos) == 0 {
		fmt.Fprintln(w, "no labs deployed")
		return nil
	}
	for i, info := range infos {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printLabTable(w, info)
	}
	return nil
}

func printLabTable(w io.Writer, info *lab.LabInfo) {
	file := ""
	if info.File != "" {
		file = "  " + info.File
	}
	fmt.Fprintf(w, "lab %s (%s)%s\n", info.Name, info.Status, file)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tNAMESPACE\tINTERFACE\tSTATE\tMTU\tADDRESSES")
	for _, n := range info.Nodes {
		if !n.Present {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\tmissing\t-\t-\n", n.Name, n.Kind, n.NetNS)
			continue
		}
		if len(n.Interfaces) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\n", n.Name, n.Kind, n.NetNS)
		}
		for j, i := range n.Interfaces {
			name, kind, ns := n.Name, n.Kind, n.NetNS
			if j > 0 {
				name, kind, ns = "", "", ""
			}
			addrs := strings.Join(i.Addresses, ", ")
			switch {
			case i.Master != "":
				addrs = "port of " + i.Master
			case i.VLAN != 0 && addrs == "":
				addrs = "-"
			}
			if addrs == "" {
				addrs = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, kind, ns, ifaceName(i), i.State, i.MTU, addrs)
		}
	}
	tw.Flush()
	printMACsec(w, info)
	printTunnels(w, info)
	printAgents(w, info)
	if len(info.Links) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tA\tSTATE\tB\tSTATE")
	for i, l := range info.Links {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, l.A, l.AState, l.B, l.BState)
	}
	tw.Flush()
}

// ifaceName adds what a subinterface is: eth1.100 (802.1Q 100).
func ifaceName(i lab.IfaceInfo) string {
	if i.VLAN != 0 {
		return fmt.Sprintf("%s (%s %d on %s)", i.Name, i.VLANProto, i.VLAN, i.Parent)
	}
	return i.Name
}

func printAgents(w io.Writer, info *lab.LabInfo) {
	var rows []string
	for _, n := range info.Nodes {
		a := n.Agent
		if a == nil {
			continue
		}
		state := "running"
		switch {
		case !a.Alive:
			state = "DEAD"
		case !a.Speaking:
			state = "restarting"
		}
		last := "-"
		if a.LastExit != "" {
			last = a.LastExit
		}
		rows = append(rows, fmt.Sprintf("%s\t%d\t%s\t%d\t%s\t%s", n.Name, a.PID, state, a.Restarts, last, a.Log))
	}
	printSection(w, "AGENT\tPID\tSTATE\tRESTARTS\tLAST EXIT\tLOG", rows)
}

func printMACsec(w io.Writer, info *lab.LabInfo) {
	var rows []string
	for _, n := range info.Nodes {
		for _, i := range n.Interfaces {
			m := i.MACsec
			if m == nil {
				continue
			}
			enc := "integrity only"
			if m.Encrypt {
				enc = "encrypt"
			}
			keyID := m.KeyID
			if keyID == "" {
				keyID = "- (no SA: not secured)"
			}
			rows = append(rows, fmt.Sprintf("%s:%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d", n.Name, i.Name, m.Cipher, enc, m.SCI, m.EncodingSA, m.NextPN, keyID, m.OutPktsEncrypted+m.OutPktsProtected, m.InPktsOK, m.InPktsNotValid+m.InPktsInvalid))
		}
	}
	printSection(w, "MACSEC\tCIPHER\tMODE\tSCI\tAN\tNEXT PN\tKEY ID\tOUT PKTS\tIN OK\tIN BAD", rows)
	printMKA(w, info)
}

// printMKA prints the MKA sessions: secured or not, and why not.
func printMKA(w io.Writer, info *lab.LabInfo) {
	var rows []string
	for _, n := range info.Nodes {
		for _, i := range n.Interfaces {
			if i.MACsec == nil || i.MACsec.MKA == nil {
				continue
			}
			m := i.MACsec.MKA
			state, role := "SECURED", "member"
			if !m.Secured {
				state = "NOT SECURED: " + m.Problem
			}
			if m.KeyServer {
				role = "key server"
			}
			rows = append(rows, fmt.Sprintf("%s:%s\t%s\t%s\t%d\t%d\t%s", n.Name, i.Name, m.CKN, role, m.LivePeers, m.Restarts, state))
		}
	}
	printSection(w, "MKA\tCKN\tROLE\tPEERS\tRESTARTS\tSTATE", rows)
}

// printSection prints a titled table after a blank line, if it has rows.
func printSection(w io.Writer, header string, rows []string) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	tw.Flush()
}

// printTunnels prints each IPsec tunnel end as its node's kernel holds it:
// SAs, SPIs, interface and counters, never a key.
func printTunnels(w io.Writer, info *lab.LabInfo) {
	var rows []string
	for _, n := range info.Nodes {
		for _, t := range n.Tunnels {
			state, mode, alg, ends, spis, ifid, pkts := "up", orDash(t.Mode), "-", "-", "-", "-", "-"
			if t.Interface != "" {
				mode += " (" + t.Interface + ")"
			}
			if t.Error != "" {
				state = "BROKEN: " + t.Error
			}
			if c := t.IKE; c != nil {
				state = "IKE " + orDash(c.IKEState) + ", CHILD " + orDash(c.ChildState)
				if len(c.IKE) > 0 {
					sa := c.IKE[0]
					ends = sa.Local.Addr().String() + " → " + sa.Remote.Addr().String()
					if len(sa.Children) > 0 {
						ch := sa.Children[0]
						alg, spis, pkts = ch.Encryption, fmt.Sprintf("%#x/%#x", ch.SPIOut, ch.SPIIn), fmt.Sprintf("%d/%d", ch.PacketsOut, ch.PacketsIn)
						if ch.IfIDOut != 0 {
							ifid = fmt.Sprint(ch.IfIDOut)
						}
					}
				}
			}
			if i := t.IPsec; i != nil {
				if i.Interface != nil {
					ifid = fmt.Sprint(i.Interface.IfID)
				}
				if i.Out != nil && i.In != nil {
					alg = string(i.Out.Algorithm)
					ends = i.Out.Src.String() + " → " + i.Out.Dst.String()
					spis = fmt.Sprintf("%#x/%#x", i.Out.SPI, i.In.SPI)
					pkts = fmt.Sprintf("%d/%d", i.Out.Packets, i.In.Packets)
					if i.In.IntegrityFailures > 0 {
						state = fmt.Sprintf("up, %d integrity failures in", i.In.IntegrityFailures)
					}
				}
			}
			rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", t.Name, n.Name, t.Keying, mode, alg, ends, spis, ifid, pkts, state))
		}
	}
	printSection(w, "TUNNEL\tNODE\tKEYING\tMODE\tALGORITHM\tOUTER\tSPI OUT/IN\tIF_ID\tPKTS OUT/IN\tSTATE", rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
