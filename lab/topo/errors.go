package topo

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a topology file. Line and Col start at 1; a zero Pos
// means "the file as a whole".
type Pos struct {
	Line int
	Col  int
}

// Problem is one thing wrong (or worth a warning) in a topology file.
type Problem struct {
	File string
	Pos  Pos
	Msg  string
}

func (p Problem) String() string {
	if p.Pos.Line == 0 {
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Pos.Line, p.Pos.Col, p.Msg)
}

// ErrorList is every problem found in a topology file, in file order. Load
// returns it whole so that a user fixes everything in one pass.
type ErrorList []Problem

func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, p := range l {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects errors and warnings while a file is read and checked.
type problems struct {
	file string
	// lookup is the environment the file is read against (${VAR}, and
	// MACsec keys given by env:), so one Options.LookupEnv governs both.
	lookup   func(string) (string, bool)
	generate bool // make missing key files (Options.GenerateKeys)
	// modelFailed says a model key (expressroute:) was refused, and so
	// made no nodes.
	modelFailed bool
	errs        ErrorList
	warnings    ErrorList
}

func (ps *problems) errorf(pos Pos, format string, args ...any) {
	ps.errs = append(ps.errs, Problem{File: ps.file, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (ps *problems) warnf(pos Pos, format string, args ...any) {
	ps.warnings = append(ps.warnings, Problem{File: ps.file, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// sorted returns the list ordered by position, stable for equal positions, so
// that output follows the file a reader has open.
func sorted(l ErrorList) ErrorList {
	out := append(ErrorList(nil), l...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Pos.Line != out[j].Pos.Line {
			return out[i].Pos.Line < out[j].Pos.Line
		}
		return out[i].Pos.Col < out[j].Pos.Col
	})
	return out
}

// closest returns the candidate nearest to s by edit distance, if it is near
// enough to be a likely typo.
func closest(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Closest returns the candidate nearest to s by edit distance, if it is
// near enough to be a likely typo, or "": what a "did you mean" names.
func Closest(s string, candidates []string) string { return closest(s, candidates) }

// UnknownError says that a name given on the command line names nothing
// in a lab, and what it may have meant: a typo never reads as success.
type UnknownError struct {
	Lab   string
	What  string   // "node", "link end (NODE:IFACE)", ...
	Name  string   // what was given
	Known []string // what there is
}

func (e *UnknownError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s has no %s %q", e.Lab, e.What, e.Name)
	if c := closest(e.Name, e.Known); c != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", c)
	}
	switch {
	case len(e.Known) == 0:
		b.WriteString("; it has none")
	case len(e.Known) <= 12:
		fmt.Fprintf(&b, "; it has: %s", strings.Join(e.Known, ", "))
	default:
		fmt.Fprintf(&b, "; it has %d, such as %s", len(e.Known), strings.Join(e.Known[:8], ", "))
	}
	return b.String()
}
