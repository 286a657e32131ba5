package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/drill"
	"github.com/erlab-dev/erlab/lab/topo"
)

func newDrill(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run a topology's failover drills: flows, steps that break and restore, measured outages",
	}
	cmd.AddCommand(newDrillList(g), newDrillRun(g))
	return cmd
}

func newDrillList(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "list -t FILE",
		Short: "List the drills of a topology file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(g, file)
			if err != nil {
				return err
			}
			ds := drill.Of(t)
			if len(ds) == 0 {
				return fmt.Errorf("%s has no drills (a top-level drills: map)", file)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DRILL\tFLOWS\tSTEPS\tEXPECTATIONS\tDESCRIPTION")
			for _, d := range ds {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", d.Name, len(d.Flows), len(d.Steps), len(d.Expect), d.Description)
			}
			return w.Flush()
		},
	}
	topoFlag(cmd, &file)
	return cmd
}

// drillReport is the JSON of erlab drill run, a contract for CI: every
// drill, each run, each flow and expectation with what was measured.
type drillReport struct {
	Pass   bool          `json:"pass"`
	Drills []drillResult `json:"drills"`
}

type drillResult struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Pass        bool              `json:"pass"`
	Runs        []drill.RunResult `json:"runs"`
}

func newDrillRun(g *globals) *cobra.Command {
	var flags struct {
		file, format, junit, svg string
		runs                     int
	}
	cmd := &cobra.Command{
		Use:   "run -t FILE [DRILL...]",
		Short: "Run drills on the deployed lab (all when none is named); exit 1 when an expectation fails",
		Long: `Run drills on the deployed lab of the topology file: the drill's flows start, its steps run in
order, the flows stop after the last step, and each expectation is checked against what the flows
measured. Whatever a drill pulled, blackholed or impaired is put back after each run.`,
		Example: `  erlab drill run -t topologies/er-bgp.yml primary-silent-failure --runs 3
  erlab drill run -t lab.yml --format json --junit drills.xml`,
		RunE: func(cmd *cobra.Command, names []string) error {
			if err := checkFormat(flags.format); err != nil {
				return err
			}
			if strings.HasSuffix(flags.svg, ".svg") && (flags.runs > 1 || len(names) != 1) {
				return fmt.Errorf("--svg %s: one file holds one run of one drill; name one drill and no --runs, or give a directory", flags.svg)
			}
			if flags.runs < 1 {
				return fmt.Errorf("--runs %d: at least 1", flags.runs)
			}
			l, err := openLab(g, flags.file, "")
			if err != nil {
				return err
			}
			t := l.Topology()
			ds, err := pickDrills(t, flags.file, names)
			if err != nil {
				return err
			}
			if _, err := l.NetNS(t.Nodes[0].Name); err != nil {
				return err
			}
			rep := drillReport{Pass: true}
			for _, d := range ds {
				dr := drillResult{Name: d.Name, Description: d.Description, Pass: true}
				for r := range flags.runs {
					var progress io.Writer
					if !g.quiet {
						progress = g.stderr
						fmt.Fprintf(g.stderr, "drill %s, run %d of %d\n", d.Name, r+1, flags.runs)
					}
					res := drill.Run(cmd.Context(), l, d, progress)
					dr.Runs = append(dr.Runs, res)
					dr.Pass = dr.Pass && res.Pass
				}
				rep.Drills = append(rep.Drills, dr)
				rep.Pass = rep.Pass && dr.Pass
			}
			if flags.junit != "" {
				if err := writeJUnit(flags.junit, rep); err != nil {
					return err
				}
			}
			if flags.svg != "" {
				paths, err := writeSVGs(flags.svg, rep)
				if err != nil {
					return err
				}
				if !g.quiet {
					for _, p := range paths {
						fmt.Fprintf(g.stderr, "timeline: %s\n", p)
					}
				}
			}
			if flags.format == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printDrills(g.stdout, rep)
			}
			if !rep.Pass {
				failed := 0
				for _, d := range rep.Drills {
					if !d.Pass {
						failed++
					}
				}
				return fmt.Errorf("drill: %d of %d drills failed", failed, len(rep.Drills))
			}
			return nil
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().IntVar(&flags.runs, "runs", 1, "run each drill N times and report min, median and max")
	cmd.Flags().StringVar(&flags.format, "format", "table", "output format: table or json")
	cmd.Flags().StringVar(&flags.junit, "junit", "", "also write JUnit XML to FILE: one testcase per expectation and run")
	cmd.Flags().StringVar(&flags.svg, "svg", "", "also draw each run's timeline: FILE.svg for one drill run once, else a DIR of DRILL-runN.svg")
	return needsRoot(cmd, "it sends probe flows inside the lab's namespaces and changes its links")
}

// pickDrills returns the named drills, or all; a name that names no
// drill is an error, and so is a file with none.
func pickDrills(t *topo.Topology, file string, names []string) ([]*drill.Drill, error) {
	all := drill.Of(t)
	if len(all) == 0 {
		return nil, fmt.Errorf("%s has no drills (a top-level drills: map)", file)
	}
	if len(names) == 0 {
		return all, nil
	}
	var have []string
	for _, d := range all {
		have = append(have, d.Name)
	}
	var out []*drill.Drill
	for _, n := range names {
		i := slices.Index(have, n)
		if i < 0 {
			hint := ""
			if c := topo.Closest(n, have); c != "" {
				hint = "; did you mean " + c + "?"
			}
			return nil, fmt.Errorf("%s has no drill %q (it has: %s)%s", file, n, strings.Join(have, ", "), hint)
		}
		out = append(out, all[i])
	}
	return out, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func printDrills(w io.Writer, rep drillReport) {
	for _, d := range rep.Drills {
		fmt.Fprintf(w, "DRILL %s: %s\n", d.Name, passWord(d.Pass))
		for k, r := range d.Runs {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "  run %d\tFLOW\tSENT\tRECEIVED\tLOST\tOUTAGE\tLOSSES FROM\tTO\tREORDERED\tMAX DELAY\n", k+1)
			for _, f := range r.Flows {
				from, to := "-", "-"
				if f.Lost > 0 {
					from, to = fmt.Sprintf("%.3fs", f.FirstLoss.Seconds()), fmt.Sprintf("%.3fs", f.LastLoss.Seconds())
				}
				fmt.Fprintf(tw, "\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%s\n", f.Flow, f.Sent, f.Received, f.Lost, ms(f.Outage), from, to, f.Reordered, ms(f.MaxDelay))
			}
			tw.Flush()
			for _, c := range r.Check {
				fmt.Fprintf(w, "    %s  %s: %s\n", passWord(c.Pass), checkName(c), c.Measured)
			}
			if r.Error != "" {
				fmt.Fprintf(w, "    FAIL  the drill did not run through: %s\n", r.Error)
			}
		}
		if len(d.Runs) > 1 {
			summarize(w, d)
		}
	}
}

// summarize prints each flow's outage over the runs: min, median, max.
func summarize(w io.Writer, d drillResult) {
	fmt.Fprintf(w, "  outage over %d runs (min / median / max):\n", len(d.Runs))
	for i, f := range d.Runs[0].Flows {
		var v []time.Duration
		for _, r := range d.Runs {
			if i < len(r.Flows) {
				v = append(v, r.Flows[i].Outage)
			}
		}
		slices.Sort(v)
		fmt.Fprintf(w, "    %s: %s / %s / %s\n", f.Flow, ms(v[0]), ms(v[len(v)/2]), ms(v[len(v)-1]))
	}
}

func passWord(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
}

// writeJUnit writes one testsuite per drill, one testcase per expectation
// and run (and one for a run that did not get through).
func writeJUnit(path string, rep drillReport) error {
	var out junitSuites
	for _, d := range rep.Drills {
		s := junitSuite{Name: d.Name}
		for k, r := range d.Runs {
			for _, c := range r.Check {
				jc := junitCase{Name: fmt.Sprintf("%s (run %d)", checkName(c), k+1), Classname: "erlab.drill." + d.Name}
				if !c.Pass {
					jc.Failure = &junitFailure{Message: c.Measured}
				}
				s.Cases = append(s.Cases, jc)
			}
			if r.Error != "" {
				s.Cases = append(s.Cases, junitCase{Name: fmt.Sprintf("run %d", k+1), Classname: "erlab.drill." + d.Name,
					Failure: &junitFailure{Message: r.Error}})
			}
		}
		s.Tests = len(s.Cases)
		for _, c := range s.Cases {
			if c.Failure != nil {
				s.Failures++
			}
		}
		out.Suites = append(out.Suites, s)
	}
	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

// writeSVGs draws each run's timeline: into path when it names an .svg
// file (one drill, one run), else into the directory path, one file per
// drill and run.
func writeSVGs(path string, rep drillReport) ([]string, error) {
	var out []string
	single := strings.HasSuffix(path, ".svg")
	if !single {
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, err
		}
	}
	for _, d := range rep.Drills {
		for k, r := range d.Runs {
			p := path
			if !single {
				p = filepath.Join(path, fmt.Sprintf("%s-run%d.svg", d.Name, k+1))
			}
			f, err := os.Create(p)
			if err != nil {
				return out, err
			}
			err = drill.SVG(f, d.Name, k+1, r)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return out, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// waitReady waits until the lab's routing has converged (bgp.WaitConverged);
// a lab with no router is ready once deployed. Deploy itself has already
// waited for links, MKA and IKE.
func waitReady(cmd *cobra.Command, g *globals, l *lab.Lab, timeout time.Duration) error {
	t := l.Topology()
	routers := 0
	for _, n := range t.Nodes {
		if bgp.Of(n) != nil {
			routers++
		}
	}
	if routers == 0 {
		return nil
	}
	start := time.Now()
	g.options().Status.Start(fmt.Sprintf("Waiting for the routing to converge (%d routers)", routers))
	err := bgp.WaitConverged(cmd.Context(), l, timeout)
	g.options().Status.End(err == nil)
	if err != nil {
		return err
	}
	if !g.quiet {
		fmt.Fprintf(g.stderr, "lab %s ready: routing converged in %s\n", t.Name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func newWait(g *globals) *cobra.Command {
	var flags struct {
		file, name string
		timeout    time.Duration
	}
	cmd := &cobra.Command{
		Use:   "wait -t FILE | --name LAB",
		Short: "Wait until a deployed lab is ready: every BGP session Established, every best path installed, nothing changing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(g, flags.file, flags.name)
			if err != nil {
				return err
			}
			if l.Topology() == nil {
				return fmt.Errorf("lab %s: its topology file is gone; give -t FILE", l.Name())
			}
			if len(l.Nodes()) == 0 {
				return fmt.Errorf("lab %s is not deployed", l.Name())
			}
			return waitReady(cmd, g, l, flags.timeout)
		},
	}
	topoFlag(cmd, &flags.file)
	cmd.Flags().StringVar(&flags.name, "name", "", "lab name")
	cmd.Flags().DurationVar(&flags.timeout, "timeout", time.Minute, "give up after this long")
	return needsRoot(cmd, "it asks the lab's routing agents inside their namespaces")
}

// checkName names a check: its flow and what it expects, or what it
// expects alone for a check of no flow (encrypted:, state:).
func checkName(c drill.Check) string { return strings.TrimSpace(c.Flow + " " + c.What) }
