package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/mka"
	"github.com/erlab-dev/erlab/lab/topo"
)

func newMACsec(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "macsec", Short: "Act on a lab's MACsec links"}
	var flags struct {
		file, format, cakFile, cakEnv, ckn string
		oneSide                            bool
		gap                                time.Duration
	}
	rotate := &cobra.Command{
		Use:   "rotate -t FILE NODE:IFACE",
		Short: "Rotate a MACsec link's keys (static SAKs hitlessly; an MKA CAK one side at a time)",
		Long: `Rotate the keys of the MACsec link NODE:IFACE ends (the link's interface or its MACsec
device).

Static SAKs: fresh random keys on the next association number are installed for receive on both
ends, then for transmit, then both ends switch, then the old keys are retired. Run erlab probe
across the link meanwhile to see that nothing is lost. The new keys exist only in the kernels.

MKA: a new CAK (from --cak-file or --cak-env, else random) and CKN (--ckn, else the current
one) go to NODE's end first, then, after --gap, to the other end, as ExpressRoute Direct's
rotation does. MKA cannot do this without loss: a probe stream crosses the link meanwhile and
the outage is reported. --one-side changes NODE's end only (the link stays down until the
other end gets the same key).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			node, iface, ok := strings.Cut(args[0], ":")
			if !ok || node == "" || iface == "" {
				return fmt.Errorf("%q: expected NODE:IFACE", args[0])
			}
			l, err := openLab(g, flags.file, "")
			if err != nil {
				return err
			}
			if _, _, link, ok := macsec.EndOf(l.Topology(), node, iface); ok && mka.Keyed(link) {
				return rotateMKA(cmd, g, l, node, iface, flags.cakFile, flags.cakEnv, flags.ckn, flags.oneSide, flags.gap, flags.format)
			}
			if flags.cakFile != "" || flags.cakEnv != "" || flags.ckn != "" || flags.oneSide || flags.gap != 0 {
				return fmt.Errorf("%s: --cak-file, --cak-env, --ckn, --one-side and --gap are for MKA links; this one has static SAKs", args[0])
			}
			rep, err := macsec.Rotate(cmd.Context(), l, node, iface)
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
	rotate.Flags().StringVar(&flags.cakFile, "cak-file", "", "MKA: file (mode 0600) holding the new CAK in hex")
	rotate.Flags().StringVar(&flags.cakEnv, "cak-env", "", "MKA: environment variable holding the new CAK in hex")
	rotate.Flags().StringVar(&flags.ckn, "ckn", "", "MKA: the new CKN in hex (default: keep the current one)")
	rotate.Flags().BoolVar(&flags.oneSide, "one-side", false, "MKA: change NODE's end only")
	rotate.Flags().DurationVar(&flags.gap, "gap", 0, "MKA: wait this long before changing the other end")
	cmd.AddCommand(needsRoot(rotate, "it changes keys inside the nodes' kernels"), newKeygen(g))
	return cmd
}

// newKeygen makes key files as the topology's keys: sections take them:
// random hex digits, readable by their owner only.
func newKeygen(g *globals) *cobra.Command {
	var bytes int
	keygen := &cobra.Command{
		Use:   "keygen [--bytes N] FILE...",
		Short: "Write random keys (hex, mode 0600) for a topology's MACsec keys: and mka: sections",
		Long: `Write a random key of --bytes bytes, as hex digits, to each FILE, readable by its owner
only — what a topology's keys: {file: ...} and mka: {cak: {file: ...}} expect. Static SAKs take
16 bytes (GCM-AES-128, GCM-AES-XPN-128) or 32 (GCM-AES-256, GCM-AES-XPN-256); an MKA CAK 16; a
CKN up to 32. An existing file is never overwritten; a missing folder is made, mode 0700.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bytes < 1 || bytes > 64 {
				return fmt.Errorf("--bytes %d: 1 to 64", bytes)
			}
			for _, path := range args {
				// The folder too, as a fresh checkout has no topologies/keys/:
				// only its owner may list it.
				if err := topo.WriteKey(path, bytes); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%s: %d random bytes, mode 0600\n", path, bytes)
			}
			return nil
		},
	}
	keygen.Flags().IntVar(&bytes, "bytes", 32, "key length in bytes")
	return keygen
}

func rotateMKA(cmd *cobra.Command, g *globals, l *lab.Lab, node, iface, cakFile, cakEnv, ckn string, oneSide bool, gap time.Duration, format string) error {
	r := mka.Rotation{OneSide: oneSide, Gap: gap}
	var err error
	if r.CAK, err = readCAK(cakFile, cakEnv); err != nil {
		return err
	}
	if ckn != "" {
		if r.CKN, err = hex.DecodeString(ckn); err != nil {
			return fmt.Errorf("--ckn: not hex digits")
		}
	}
	rep, err := mka.Rotate(cmd.Context(), l, node, iface, r)
	if err != nil {
		return err
	}
	if format == "json" {
		return json.NewEncoder(g.stdout).Encode(rep)
	}
	fmt.Fprintf(g.stdout, "%s: new CAK for CKN %s applied to %s\n", rep.Link, rep.CKN, strings.Join(rep.Sides, ", then "))
	if oneSide && rep.Completes {
		fmt.Fprintf(g.stdout, "the other end already held this key: both ends secured again %s after the change\n", rep.Secured.Round(time.Millisecond))
	} else if oneSide {
		fmt.Fprintf(g.stdout, "the other end keeps the old key: the link went down %s after the change, and stays down until that end gets the same key (erlab macsec rotate on it, --one-side, with this CAK)\n", rep.Down.Round(time.Millisecond))
	} else {
		fmt.Fprintf(g.stdout, "both ends secured again %s after the first change\n", rep.Secured.Round(time.Millisecond))
	}
	if rep.Probe != nil {
		fmt.Fprintf(g.stdout, "probe %s → %s at %d pps: %s\n", rep.ProbeFrom, rep.ProbeTo, mka.ProbeRate, rep.Probe)
	}
	return nil
}

// readCAK reads a new CAK from a file only its owner may read, or from an
// environment variable; nil when neither is given.
func readCAK(file, env string) ([]byte, error) {
	var text string
	switch {
	case file != "" && env != "":
		return nil, fmt.Errorf("give --cak-file or --cak-env, not both")
	case file != "":
		st, err := os.Stat(file)
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("--cak-file %s is readable by others (mode %04o); chmod 600 it", file, st.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		text = string(b)
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, fmt.Errorf("--cak-env: %s is not set", env)
		}
		text = v
	default:
		return nil, nil
	}
	cak, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("the new CAK is not hex digits")
	}
	return cak, nil
}
