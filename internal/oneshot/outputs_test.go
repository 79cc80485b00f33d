package oneshot

import (
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
)

// checkSelfContained fails when the page would fetch anything or run code.
func checkSelfContained(t *testing.T, page []byte) {
	t.Helper()
	s := string(page)
	for _, bad := range []string{"<script", "<link", " src=", " href=", "url(", "@import", "<iframe", "<img"} {
		if strings.Contains(s, bad) {
			t.Errorf("the page is not self-contained: it has %q", bad)
		}
	}
	if !strings.HasPrefix(s, "<!DOCTYPE html>") || !strings.Contains(s, "<svg") || !strings.HasSuffix(s, "</html>\n") {
		t.Errorf("not a complete page with an SVG chart")
	}
}

// checkJUnit reads the JUnit file back and checks its shape against the
// criteria: one suite, one case per criterion (and one for an
// interruption), counts that match, failures carrying the figures.
func checkJUnit(t *testing.T, b []byte, cs []Criterion, interrupted bool) {
	t.Helper()
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Time     string   `xml:"time,attr"`
		Suites   []struct {
			Name      string `xml:"name,attr"`
			Tests     int    `xml:"tests,attr"`
			Failures  int    `xml:"failures,attr"`
			Errors    string `xml:"errors,attr"`
			Time      string `xml:"time,attr"`
			Timestamp string `xml:"timestamp,attr"`
			Hostname  string `xml:"hostname,attr"`
			Cases     []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Time      string `xml:"time,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
			SystemOut *string `xml:"system-out"`
			SystemErr *string `xml:"system-err"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit: %v", err)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("junit: %d test suites, want 1", len(doc.Suites))
	}
	s := doc.Suites[0]
	wantCases := len(cs)
	wantFailures := 0
	for _, c := range cs {
		if !c.Passed {
			wantFailures++
		}
	}
	if interrupted {
		wantCases++
		wantFailures++
	}
	if len(s.Cases) != wantCases || s.Tests != wantCases || doc.Tests != wantCases {
		t.Errorf("junit: %d cases, tests=%d (suites %d), want %d", len(s.Cases), s.Tests, doc.Tests, wantCases)
	}
	failures := 0
	for i, tc := range s.Cases {
		if tc.Name == "" || tc.Classname == "" || tc.Time == "" {
			t.Errorf("junit case %d lacks name, classname or time: %+v", i, tc)
		}
		if tc.Failure == nil {
			continue
		}
		failures++
		if tc.Failure.Type == "" || tc.Failure.Message == "" {
			t.Errorf("junit case %q: failure without type or message", tc.Name)
		}
		if i < len(cs) && (!strings.Contains(tc.Failure.Message, cs[i].Observed) || !strings.Contains(tc.Failure.Message, cs[i].Limit)) {
			t.Errorf("junit case %q: message %q lacks the measured value %q or the threshold %q", tc.Name, tc.Failure.Message, cs[i].Observed, cs[i].Limit)
		}
	}
	if failures != wantFailures || s.Failures != wantFailures || doc.Failures != wantFailures {
		t.Errorf("junit: %d failures, failures=%d (suites %d), want %d", failures, s.Failures, doc.Failures, wantFailures)
	}
	if s.Errors != "0" || s.SystemOut == nil || s.SystemErr == nil || s.Hostname == "" {
		t.Errorf("junit: errors=%q, system-out/err present %v/%v, hostname %q", s.Errors, s.SystemOut != nil, s.SystemErr != nil, s.Hostname)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`).MatchString(s.Timestamp) {
		t.Errorf("junit: timestamp %q is not an ISO 8601 time without zone", s.Timestamp)
	}
	for _, v := range []string{s.Time, doc.Time} {
		if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 {
			t.Errorf("junit: time %q is not a number of seconds", v)
		}
	}
}

func TestTimeSeries(t *testing.T) {
	tests := []struct {
		name      string
		seconds   int
		wantWidth time.Duration
		wantLen   int
	}{
		{name: "short run keeps one second intervals", seconds: 30, wantWidth: time.Second, wantLen: 30},
		{name: "exactly the bound", seconds: maxIntervals, wantWidth: time.Second, wantLen: maxIntervals},
		{name: "long run is merged", seconds: 2000, wantWidth: 4 * time.Second, wantLen: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var now time.Time
			ts := newTimeSeries(func() time.Time { return now })
			now = t0.Add(-time.Second)
			ts.event(pool.OutcomeSent, 1, 0) // before begin: ignored
			ts.begin(t0)
			var sent, acked, lost uint64
			for sec := range tc.seconds {
				for i := range 10 {
					now = t0.Add(time.Duration(sec)*time.Second + time.Duration(i)*100*time.Millisecond)
					ts.event(pool.OutcomeSent, 1, 0)
					sent++
					switch {
					case i == 9:
						ts.event(pool.OutcomeLost, 1, 0)
						lost++
					default:
						// Latencies 10..90 ms: p50 50 ms, p95 90 ms.
						ts.event(pool.OutcomeAnswered, 1, time.Duration(i+1)*10*time.Millisecond)
						acked++
					}
					ts.event(pool.OutcomeSkipped, 1, 0) // not in the timeline
				}
			}
			iv := ts.intervals(t0.Add(5 * time.Second))
			if got := time.Duration(iv.Width * float64(time.Second)); got != tc.wantWidth || len(iv.Points) != tc.wantLen {
				t.Fatalf("width %s, %d intervals; want %s, %d", got, len(iv.Points), tc.wantWidth, tc.wantLen)
			}
			if iv.MeasuredFrom != 5 {
				t.Errorf("measured from %v, want 5", iv.MeasuredFrom)
			}
			var gs, ga, gl uint64
			for i, p := range iv.Points {
				gs, ga, gl = gs+p.Sent, ga+p.Acked, gl+p.Lost
				if p.T != float64(i)*iv.Width {
					t.Errorf("interval %d at %v, want %v", i, p.T, float64(i)*iv.Width)
				}
				if math.Abs(float64(p.P50)-0.05)/0.05 > 0.06 || math.Abs(float64(p.P95)-0.09)/0.09 > 0.06 || p.MaxLat != 0.09 {
					t.Fatalf("interval %d: p50 %v p95 %v max %v, want 50 ms, 90 ms (±6%%), 90 ms", i, p.P50, p.P95, p.MaxLat)
				}
			}
			if gs != sent || ga != acked || gl != lost {
				t.Errorf("totals sent %d acked %d lost %d, want %d %d %d", gs, ga, gl, sent, acked, lost)
			}
		})
	}
}

func TestSketchQuantileBounds(t *testing.T) {
	for _, v := range []float64{1e-5, 1e-4, 3.3e-4, 0.0123, 0.2, 0.45, 7, 99, 1e4} {
		var iv interval
		iv.hist[sketchBin(v)]++
		iv.latMax = v
		got := iv.quantile(0.5)
		if v < 100 && math.Abs(got-v)/v > 0.06 {
			t.Errorf("value %v: quantile %v, more than 6%% off", v, got)
		}
		if got > v {
			t.Errorf("value %v: quantile %v above the maximum", v, got)
		}
	}
	var empty interval
	if !math.IsNaN(empty.quantile(0.95)) {
		t.Errorf("empty interval has a quantile")
	}
}

func TestHistogramOf(t *testing.T) {
	got := histogramOf([]float64{0.003, 0.004, 0.0041, 0.01, 0.011, 2000})
	want := []HistBin{
		{Upper: 0.005, Count: 3}, {Upper: 0.01, Count: 1}, {Upper: 0.02, Count: 1},
		{Upper: 0.05}, {Upper: 0.1}, {Upper: 0.2}, {Upper: 0.5}, {Upper: 1}, {Upper: 2}, {Upper: 5},
		{Upper: 10}, {Upper: 20}, {Upper: 50}, {Upper: 100}, {Upper: 200}, {Upper: 500},
		{Upper: Float(math.Inf(1)), Count: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("%d bins %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bin %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(histogramOf(nil)) != 0 {
		t.Errorf("bins without values")
	}
}

func TestActionItemsFollowFailedCriteria(t *testing.T) {
	cfg := defaultSpec(t).oneshot
	in := fixedLoadInputs(cfg)
	if got := buildLoadReport(in).ActionItems; len(got) != 0 {
		t.Fatalf("a passing run has action items: %+v", got)
	}
	in.latency.P95 = 0.35
	in.events = counts{sent: 100, acked: 98, lost: 2}
	rep := buildLoadReport(in)
	var names []string
	for _, a := range rep.ActionItems {
		names = append(names, a.Criterion)
	}
	if strings.Join(names, ",") != "event_latency_p95,event_loss_ratio" {
		t.Fatalf("action items for %v, want the latency and loss criteria", names)
	}
	if !strings.Contains(strings.Join(rep.ActionItems[0].Items, " "), "Redis adapter") ||
		!strings.Contains(strings.Join(rep.ActionItems[1].Items, " "), "queue overflow") {
		t.Errorf("the old suite's hints are missing: %+v", rep.ActionItems)
	}

	leak := LeakReport{Criteria: []Criterion{
		{Name: "leak_rate", Title: "Heap leak rate", Value: 12},
		{Name: "robust_verdict", Title: "Heap robust verdict"},
	}}
	as := leakActions(leak)
	if len(as) != 2 || !strings.Contains(strings.Join(as[0].Items, " "), "heap snapshots") ||
		strings.Contains(strings.Join(as[1].Items, " "), "heap snapshots") {
		t.Errorf("leak actions: the snapshot advice must come once, with the first failed criterion: %+v", as)
	}
	leak.Criteria[0].Passed = true
	if as := leakActions(leak); len(as) != 1 || !strings.Contains(strings.Join(as[0].Items, " "), "Chrome DevTools") {
		t.Errorf("robust verdict alone: %+v", as)
	}
}

func TestHTMLEscapesText(t *testing.T) {
	in := fixedLoadInputs(defaultSpec(t).oneshot)
	in.version = `<script>alert(1)</script>`
	in.whole.failures = map[probe.FailureReason]uint64{`"><b>x</b>`: 1}
	h, err := loadHTML(buildLoadReport(in))
	if err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, h)
	if strings.Contains(string(h), "<b>x</b>") {
		t.Errorf("text reached the page unescaped")
	}
}

func TestOutputsWriteEveryFile(t *testing.T) {
	dir := t.TempDir()
	c := Config{
		ReportJSON: filepath.Join(dir, "r.json"), ReportHTML: filepath.Join(dir, "r.html"), ReportJUnit: filepath.Join(dir, "r.xml"),
	}
	o, err := openOutputs(c)
	if err != nil {
		t.Fatal(err)
	}
	err = o.write(nil, map[string]int{"a": 1},
		func() ([]byte, error) { return []byte("<html>"), nil },
		func() ([]byte, error) { return []byte("<testsuites/>"), nil })
	o.close()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{c.ReportJSON: "{\n  \"a\": 1\n}\n", c.ReportHTML: "<html>", c.ReportJUnit: "<testsuites/>"} {
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q (%v), want %q", path, b, err, want)
		}
	}

	// A file that cannot be opened stops the run before it starts, and the
	// files opened before it are removed.
	c2 := Config{ReportJSON: filepath.Join(dir, "new.json"), ReportHTML: filepath.Join(dir, "missing", "r.html")}
	if _, err := openOutputs(c2); err == nil || !strings.Contains(err.Error(), "--html (SOAK_REPORT_HTML)") {
		t.Errorf("error %v, want one naming --html", err)
	}
	if _, err := os.Stat(c2.ReportJSON); !os.IsNotExist(err) {
		t.Errorf("the JSON file opened first was left behind: %v", err)
	}
}

func TestConnectBinsReachTheThreshold(t *testing.T) {
	got := connectBins([]HistBin{{Upper: 0.005, Count: 20}}, 0.5)
	var labels []string
	var alerts []string
	for _, b := range got {
		labels = append(labels, b.label)
		if b.alert {
			alerts = append(alerts, b.label)
		}
	}
	want := "≤ 2.0ms,≤ 5.0ms,≤ 10.0ms,≤ 20.0ms,≤ 50.0ms,≤ 100.0ms,≤ 200.0ms,≤ 500.0ms,≤ 1.00s"
	if strings.Join(labels, ",") != want || strings.Join(alerts, ",") != "≤ 1.00s" || got[1].count != 20 {
		t.Errorf("bins %v (alert %v), want %s with only the last beyond the threshold", labels, alerts, want)
	}
	if connectBins(nil, 0.5) != nil {
		t.Errorf("bins without data")
	}
}
