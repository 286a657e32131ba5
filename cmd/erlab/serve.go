package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab/web"
)

func newServe(g *globals) *cobra.Command {
	var flags struct {
		file, name, listen string
		readOnly           bool
	}
	cmd := &cobra.Command{
		Use:   "serve -t FILE | --name LAB [--listen 127.0.0.1:8480] [--read-only]",
		Short: "Serve a live page of a deployed lab: drawn, updated as it changes, links to pull",
		Long: `Serve one page that draws a deployed lab — its nodes by kind and group, its links with their
interfaces, addresses, VLAN tags and what encrypts them, its tunnels — and keeps it live from
the lab's events (erlab events): links going down, BGP sessions falling, the traffic each link
carries. Clicking a link offers to pull it, restore it or impair it; a drill can be started and
its timeline appears when it ends. Everything the page loads is in the binary.

It listens on loopback unless --listen says otherwise. Every action needs the token in the
address it prints (the page sends it); --read-only takes no action at all. Keys never reach the
page. It serves until interrupted.`,
		Example: `  erlab serve -t topologies/er-bgp.yml
  erlab serve --name er-bgp --listen 127.0.0.1:9000 --read-only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			srv, err := web.New(l, web.Options{ReadOnly: flags.readOnly, Log: g.log()})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", flags.listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", flags.listen, err)
			}
			addr := ln.Addr().(*net.TCPAddr)
			if !addr.IP.IsLoopback() {
				fmt.Fprintf(g.stderr, "erlab: serving on %s, beyond this machine: anyone who reaches it sees the lab (actions still need the token)\n", addr)
			}
			u := url.URL{Scheme: "http", Host: addr.String(), Path: "/"}
			if !flags.readOnly {
				u.RawQuery = url.Values{"token": {srv.Token()}}.Encode()
			}
			fmt.Fprintf(g.stdout, "erlab: lab %s at %s\n", l.Name(), u.String())
			return srv.Serve(cmd.Context(), ln)
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "a deployed lab's name")
	cmd.Flags().StringVar(&flags.listen, "listen", "127.0.0.1:8480", "address and port to listen on (loopback unless you say otherwise)")
	cmd.Flags().BoolVar(&flags.readOnly, "read-only", false, "take no action: the page only watches")
	return needsRoot(cmd, "it watches the kernel inside each node's network namespace and acts there")
}
