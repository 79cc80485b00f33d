package oneshot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"strconv"
	"time"
)

// JUnit XML of a run, in the shape CI systems read (the Ant JUnit schema:
// testsuites > testsuite > testcase > failure): one test suite per command
// run, one test case per criterion. A test case carries no figures of its
// own in that schema, so the measured value and the threshold are in the
// failure message and in the suite's properties (<criterion>.observed,
// <criterion>.limit), and the text report is the suite's system-out.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr"`
	ID         int             `xml:"id,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  junitText       `xml:"system-out"`
	SystemErr  junitText       `xml:"system-err"`
}

// junitText is an element's text, kept readable as CDATA.
type junitText struct {
	Text string `xml:",cdata"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

// junitRun is what the JUnit file needs from a report.
type junitRun struct {
	command           string
	host              string
	started, finished time.Time
	interrupted       bool
	criteria          []Criterion
	actions           []ActionItem
	properties        []junitProperty
	text              string
}

// marshalJUnit writes the JUnit XML of one run.
func marshalJUnit(r junitRun) ([]byte, error) {
	secs := strconv.FormatFloat(max(r.finished.Sub(r.started).Seconds(), 0), 'f', 3, 64)
	class := "soak-exporter." + r.command
	s := junitSuite{
		Name: "soak-exporter " + r.command, Package: "soak-exporter", ID: 0,
		Time: secs, Timestamp: r.started.UTC().Format("2006-01-02T15:04:05"), Hostname: r.host,
		Properties: append([]junitProperty{}, r.properties...),
		SystemOut:  junitText{Text: r.text},
	}
	for _, c := range r.criteria {
		s.Properties = append(s.Properties,
			junitProperty{Name: c.Name + ".observed", Value: c.Observed},
			junitProperty{Name: c.Name + ".limit", Value: c.Limit})
		tc := junitCase{Name: c.Title, Classname: class, Time: "0"}
		if !c.Passed {
			msg := fmt.Sprintf("%s %s, threshold %s", c.Title, c.Observed, c.Limit)
			if c.Detail != "" {
				msg += ": " + c.Detail
			}
			var text bytes.Buffer
			fmt.Fprintf(&text, "%s\nmeasured: %s\nthreshold: %s\n", msg, c.Observed, c.Limit)
			for _, a := range r.actions {
				if a.Criterion != c.Name {
					continue
				}
				text.WriteString("action items:\n")
				for _, it := range a.Items {
					text.WriteString("- " + it + "\n")
				}
			}
			tc.Failure = &junitFailure{Message: msg, Type: "criterion_failed", Text: text.String()}
			s.Failures++
		}
		s.Cases = append(s.Cases, tc)
	}
	if r.interrupted {
		s.Cases = append(s.Cases, junitCase{
			Name: "Run completed", Classname: class, Time: "0",
			Failure: &junitFailure{Message: "the run was interrupted: the figures cover a partial run", Type: "interrupted"},
		})
		s.Failures++
	}
	s.Tests = len(s.Cases)
	all := junitSuites{Name: "soak-exporter " + r.command, Tests: s.Tests, Failures: s.Failures, Time: secs, Suites: []junitSuite{s}}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return nil, fmt.Errorf("encode junit: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func prop(name string, v any) junitProperty {
	return junitProperty{Name: name, Value: fmt.Sprint(v)}
}

// junitOfLoad is the JUnit run of a loadtest report; text is its text
// report.
func junitOfLoad(r LoadReport, host, text string) junitRun {
	s := r.Settings
	props := []junitProperty{prop("version", r.Version), prop("driver", s.Driver)}
	for i, t := range s.Targets {
		props = append(props, prop("target."+strconv.Itoa(i), t.URL))
	}
	props = append(props,
		prop("connections", s.Connections), prop("event_rate_per_second", s.EventRate),
		prop("duration_seconds", s.Duration), prop("warmup_seconds", s.Warmup))
	return junitRun{
		command: r.Command, host: host, started: r.StartedAt, finished: r.FinishedAt, interrupted: r.Interrupted,
		criteria: r.Criteria, actions: r.ActionItems, properties: props, text: text,
	}
}

// junitOfLeak is the JUnit run of a leaktest report.
func junitOfLeak(r LeakReport, host, text string) junitRun {
	s := r.Settings
	props := []junitProperty{prop("version", r.Version), prop("driver", s.Driver)}
	for i, t := range s.Targets {
		props = append(props, prop("target."+strconv.Itoa(i), t.URL))
	}
	props = append(props,
		prop("memory_source", r.Source.Description), prop("kind", s.Kind),
		prop("duration_seconds", s.Duration), prop("sampling_seconds", s.Sampling), prop("clients", s.Clients))
	return junitRun{
		command: r.Command, host: host, started: r.StartedAt, finished: r.FinishedAt, interrupted: r.Interrupted,
		criteria: r.Criteria, actions: r.ActionItems, properties: props, text: text,
	}
}

// hostname is this machine's name for the JUnit file, "localhost" when
// unknown.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}
