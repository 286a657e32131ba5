package drill

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// SVG draws one run of a drill as a timeline a person reads in a second:
// a panel per flow with its received share over time (TimelineBucket
// steps), the buckets that lost packets shaded red, and each action or
// wait as a marked line across all panels, labelled with what it did.
// Hand-written: it is a few dozen shapes, and the SVG must carry exactly
// what the run measured.
func SVG(w io.Writer, drillName string, run int, r RunResult) error {
	const (
		width, left, right = 1000.0, 70.0, 20.0
		top, panel, gap    = 120.0, 110.0, 40.0
	)
	end := time.Duration(0)
	for _, f := range r.Flows {
		if f.Rate > 0 {
			end = max(end, f.Offset+time.Duration(f.Sent)*time.Second/time.Duration(f.Rate))
		}
	}
	for _, s := range r.Steps {
		end = max(end, s.At+s.Took)
	}
	if end <= 0 {
		end = time.Second
	}
	plotW := width - left - right
	x := func(d time.Duration) float64 { return left + plotW*float64(d)/float64(end) }
	height := top + float64(len(r.Flows))*(panel+gap) + 10
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	verdict, color := "PASS", "#1a7f37"
	if !r.Pass {
		verdict, color = "FAIL", "#cf222e"
	}
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%.0f" y="22" font-size="16" font-weight="bold">drill %s, run %d: <tspan fill="%s" class="verdict">%s</tspan></text>`+"\n", left, esc(drillName), run, color, verdict)
	if r.Error != "" {
		p(`<text x="%.0f" y="40" fill="#cf222e" class="error">%s</text>`+"\n", left, esc(r.Error))
	}
	// Time axis ticks, every second (or more when the run is long).
	tick := time.Second
	for end/tick > 20 {
		tick *= 5
	}
	for t := time.Duration(0); t <= end; t += tick {
		p(`<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#eee"/>`+"\n", x(t), top-10, x(t), height-10)
		p(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="#666">%gs</text>`+"\n", x(t), top-14, t.Seconds())
	}
	for i, f := range r.Flows {
		y0 := top + float64(i)*(panel+gap) + 18
		yOf := func(share float64) float64 { return y0 + panel - 18 - share*(panel-18) }
		p(`<g class="flow" data-flow="%s">`+"\n", esc(f.Flow))
		p(`<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-4,
			esc(fmt.Sprintf("%s: outage %s, %d of %d lost, %d reordered", f.Flow, f.Outage.Round(time.Millisecond), f.Lost, f.Sent, f.Reordered)))
		p(`<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#ccc"/>`+"\n", left, yOf(1), plotW, panel-18)
		p(`<text x="%.0f" y="%.1f" text-anchor="end" fill="#666">100%%</text>`+"\n", left-4, yOf(1)+4)
		p(`<text x="%.0f" y="%.1f" text-anchor="end" fill="#666">0%%</text>`+"\n", left-4, yOf(0)+4)
		var pts []string
		for k, sent := range f.TimelineSent {
			if sent == 0 {
				continue
			}
			share := float64(f.TimelineReceived[k]) / float64(sent)
			t0 := f.Offset + time.Duration(k)*f.Bucket
			t1 := min(t0+f.Bucket, end) // the last bucket ends with the run
			if share < 1 {
				p(`<rect class="loss" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#cf222e" fill-opacity="%.2f"><title>%s</title></rect>`+"\n",
					x(t0), yOf(1), math.Max(x(t1)-x(t0), 0.5), panel-18, 0.15+0.35*(1-share),
					esc(fmt.Sprintf("%.2fs: %d of %d lost", t0.Seconds(), sent-f.TimelineReceived[k], sent)))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(t0), yOf(share), x(t1), yOf(share)))
		}
		p(`<polyline class="received" fill="none" stroke="#0969da" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
		p("</g>\n")
	}
	row := 0
	for _, s := range r.Steps {
		if s.What == "" || strings.HasPrefix(s.What, "after ") {
			continue
		}
		// Labels in rows under the title, each joined to its line.
		xs, ly := x(s.At+s.Took), 50+float64(row%4)*14
		row++
		anchor, tx := "start", xs+3
		if xs > width-right-200 {
			anchor, tx = "end", xs-3
		}
		p(`<g class="action"><line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#8250df" stroke-dasharray="4 3"/>`, xs, ly+3, xs, height-10)
		p(`<text x="%.1f" y="%.0f" fill="#8250df" text-anchor="%s">%s</text></g>`+"\n", tx, ly, anchor,
			esc(fmt.Sprintf("%.2fs %s", (s.At+s.Took).Seconds(), s.What)))
	}
	p("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string { return html.EscapeString(s) }
