package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version describes this binary from what the Go toolchain recorded in it:
// the module version (or the commit it was built from), the Go version and
// the GoBGP its agents embed.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(no build information)"
	}
	v := bi.Main.Version
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+changes"
			}
		}
	}
	if rev != "" && (v == "" || v == "(devel)") {
		v = "commit " + rev[:min(12, len(rev))] + dirty
		if at != "" {
			v += " (" + at + ")"
		}
	}
	deps := []string{bi.GoVersion}
	for _, d := range bi.Deps {
		if strings.HasPrefix(d.Path, "github.com/osrg/gobgp/") {
			deps = append(deps, "GoBGP "+d.Version)
		}
	}
	return fmt.Sprintf("%s, %s", v, strings.Join(deps, ", "))
}

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print erlab's version, its Go version and the GoBGP its routers embed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(g.stdout, "erlab %s\n", version())
			return nil
		},
	}
}
