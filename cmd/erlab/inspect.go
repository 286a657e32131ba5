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
	cmd.Flags().BoolVarP(&flags.all, "all", "a", false, "every lab on this host")
	cmd.Flags().StringVarP(&flags.format, "format", "f", "table", "table or json (containerlab's -f json field names)")
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
			state := "missing"
			if n.State == "stopped" {
				state = "stopped (links parked)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t%s\t-\t-\n", n.Name, n.Kind, n.NetNS, state)
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
			if i.Master != "" {
				addrs = "port of " + i.Master
			}
			if addrs == "" {
				addrs = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, kind, ns, ifaceName(i), i.State, i.MTU, addrs)
		}
	}
	tw.Flush()
	printRuntimes(w, info)
	for _, sec := range info.Sections {
		rows := make([]string, len(sec.Rows))
		for i, r := range sec.Rows {
			rows[i] = strings.Join(r, "\t")
		}
		printSection(w, strings.Join(sec.Header, "\t"), rows)
	}
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

// printRuntimes prints what the nodes' runtimes say (containers), and
// which nodes are detached from their links.
func printRuntimes(w io.Writer, info *lab.LabInfo) {
	var rows, detached []string
	for _, n := range info.Nodes {
		if n.ContainerID != "" {
			id := n.ContainerID
			if len(id) > 12 {
				id = id[:12]
			}
			rows = append(rows, strings.Join([]string{n.Name, id, n.Image, n.RuntimeState, dash(n.IPv4Address), dash(n.IPv6Address)}, "\t"))
		}
		if n.State == "detached" {
			detached = append(detached, n.Name)
		}
	}
	printSection(w, "CONTAINER\tID\tIMAGE\tSTATE\tMGMT IPV4\tMGMT IPV6", rows)
	for _, n := range detached {
		fmt.Fprintf(w, "\nnode %s is detached: its container runs in a new network namespace, away from its links (restarted behind erlab's back, or its process ended); erlab start %s repairs it\n", n, n)
	}
}

// ifaceName adds what a feature says an interface is: eth1.100 (802.1Q
// 100 on eth1).
func ifaceName(i lab.IfaceInfo) string {
	if i.Detail != "" {
		return fmt.Sprintf("%s (%s)", i.Name, i.Detail)
	}
	return i.Name
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
