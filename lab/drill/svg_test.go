package drill_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab/drill"
	"github.com/erlab-dev/erlab/lab/probe"
)

// The timeline holds what the run measured: a received line per flow,
// a shaded bucket exactly where packets were lost, a marker per action
// (not per pause), the verdict, and it is well-formed XML.
func TestSVGShowsTheRun(t *testing.T) {
	flow := func(name string, lostBucket int) drill.FlowResult {
		f := drill.FlowResult{Flow: name, Offset: 5 * time.Millisecond,
			Report: probe.Report{Rate: 100, Sent: 200, Received: 195, Lost: 5, Outage: 50 * time.Millisecond, Bucket: 500 * time.Millisecond}}
		for range 4 {
			f.TimelineSent = append(f.TimelineSent, 50)
			f.TimelineReceived = append(f.TimelineReceived, 50)
		}
		f.TimelineReceived[lostBucket] = 45
		return f
	}
	r := drill.RunResult{Pass: false,
		Steps: []drill.StepResult{{Step: 1, What: "blackhole pe1:eth2", At: time.Second, Took: 2 * time.Millisecond},
			{Step: 2, What: "after 1s", At: 2 * time.Second}, {Step: 3, What: "restore pe1:eth2", At: 2500 * time.Millisecond}},
		Flows: []drill.FlowResult{flow("onprem->vnet", 2), flow("vnet->onprem", 3)}}
	var buf bytes.Buffer
	if err := drill.SVG(&buf, "silent & deadly", 1, r); err != nil {
		t.Fatal(err)
	}
	var counts = map[string]int{}
	var texts []string
	d := xml.NewDecoder(&buf)
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed: %v", err)
			}
			break
		}
		switch e := tok.(type) {
		case xml.StartElement:
			for _, a := range e.Attr {
				if a.Name.Local == "class" {
					counts[e.Name.Local+"."+a.Value]++
				}
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(e)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if counts["polyline.received"] != 2 || counts["g.flow"] != 2 {
		t.Errorf("want a received line per flow: %v", counts)
	}
	if counts["rect.loss"] != 2 {
		t.Errorf("want one shaded bucket per flow (where each lost): %v", counts)
	}
	if counts["g.action"] != 2 {
		t.Errorf("want a marker per action, none for the pause: %v", counts)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"drill silent & deadly, run 1:", "FAIL", "1.00s blackhole pe1:eth2", "2.50s restore pe1:eth2",
		"onprem->vnet: outage 50ms, 5 of 200 lost", "1.00s: 5 of 50 lost", "1.50s: 5 of 50 lost"} {
		if !strings.Contains(all, want) {
			t.Errorf("no text %q in:\n%s", want, all)
		}
	}
}
