package leak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// HTTPDoer is the part of *http.Client the scrape source uses.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// selector picks series of one metric: a name and exact label matches.
type selector struct {
	name   string
	labels map[string]string
}

func (s selector) String() string {
	if len(s.labels) == 0 {
		return s.name
	}
	var b strings.Builder
	b.WriteString(s.name + "{")
	first := true
	for k, v := range s.labels {
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(k + "=" + strconv.Quote(v))
	}
	b.WriteString("}")
	return b.String()
}

// parseSelector parses `name` or `name{label="value",...}`. An empty string
// gives an empty selector (nothing selected).
func parseSelector(s string) (selector, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return selector{}, nil
	}
	name, rest, hasLabels := strings.Cut(s, "{")
	sel := selector{name: strings.TrimSpace(name)}
	if !validName(sel.name) {
		return selector{}, fmt.Errorf("%q: %q is not a metric name", s, sel.name)
	}
	if !hasLabels {
		return sel, nil
	}
	if !strings.HasSuffix(rest, "}") {
		return selector{}, fmt.Errorf("%q: missing closing brace", s)
	}
	rest = strings.TrimSuffix(rest, "}")
	sel.labels = map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		k = strings.TrimSpace(k)
		if !ok || !validName(k) {
			return selector{}, fmt.Errorf("%q: want label=\"value\" pairs", s)
		}
		after = strings.TrimSpace(after)
		q, err := strconv.QuotedPrefix(after)
		if err != nil {
			return selector{}, fmt.Errorf("%q: label %s: value must be a quoted string", s, k)
		}
		v, _ := strconv.Unquote(q)
		sel.labels[k] = v
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(after[len(q):]), ","))
	}
	return sel, nil
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, r := range n {
		ok := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// value sums the values of the family's series that match.
func (s selector) value(f *dto.MetricFamily) (float64, bool) {
	var sum float64
	found := false
	for _, m := range f.GetMetric() {
		if !s.matches(m) {
			continue
		}
		var v float64
		switch {
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		default:
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

func (s selector) matches(m *dto.Metric) bool {
	for k, want := range s.labels {
		got := ""
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k {
				got = lp.GetValue()
				break
			}
		}
		if got != want {
			return false
		}
	}
	return true
}

// ScrapeConfig configures the scrape source.
type ScrapeConfig struct {
	URL      string
	Timeout  time.Duration
	MaxBytes int64
	// Heap, RSS and Start are metric selectors; empty ones are skipped.
	Heap, RSS, Start string
}

// Scrape reads the target's own Prometheus endpoint.
type Scrape struct {
	cfg              ScrapeConfig
	client           HTTPDoer
	now              func() time.Time
	heap, rss, start selector
	vitals           *Vitals
}

// NewScrape returns the scrape source. client is normally an
// *http.Client; now the clock.
func NewScrape(cfg ScrapeConfig, client HTTPDoer, now func() time.Time) (*Scrape, error) {
	s := &Scrape{cfg: cfg, client: client, now: now, vitals: newVitals()}
	var err error
	if s.heap, err = parseSelector(cfg.Heap); err != nil {
		return nil, fmt.Errorf("heap metric: %w", err)
	}
	if s.rss, err = parseSelector(cfg.RSS); err != nil {
		return nil, fmt.Errorf("rss metric: %w", err)
	}
	if s.start, err = parseSelector(cfg.Start); err != nil {
		return nil, fmt.Errorf("start metric: %w", err)
	}
	if cfg.MaxBytes <= 0 {
		return nil, errors.New("max bytes must be > 0")
	}
	return s, nil
}

// Vitals returns the target's CPU and event-loop lag read by this source's
// scrapes, a collector to register.
func (s *Scrape) Vitals() *Vitals { return s.vitals }

// Source returns "scrape".
func (s *Scrape) Source() string { return SourceScrape }

// errTooLarge is returned when the response exceeds MaxBytes.
var errTooLarge = errors.New("response too large")

type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Probe for one more byte: only EOF is fine.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// Sample scrapes once. Missing metrics are reported in the error while the
// ones found are returned.
func (s *Scrape) Sample(ctx context.Context) (Sample, error) {
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return Sample{}, fmt.Errorf("scrape: %w", err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	t := s.now()
	var fams map[string]*dto.MetricFamily
	defer func() { s.vitals.observe(t, fams) }()
	resp, err := s.client.Do(req)
	if err != nil {
		return Sample{}, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return Sample{}, fmt.Errorf("scrape: unexpected status %s", resp.Status)
	}
	fams, err = decodeFamilies(&cappedReader{r: resp.Body, left: s.cfg.MaxBytes}, expfmt.ResponseFormat(resp.Header))
	if errors.Is(err, errTooLarge) {
		return Sample{}, fmt.Errorf("scrape: response larger than %d bytes", s.cfg.MaxBytes)
	}
	if err != nil {
		return Sample{}, fmt.Errorf("scrape: parse: %w", err)
	}
	out := Sample{Time: t}
	var missing []string
	read := func(sel selector) (float64, bool) {
		if sel.name == "" {
			return 0, false
		}
		f := fams[sel.name]
		if f == nil {
			missing = append(missing, sel.String())
			return 0, false
		}
		v, ok := sel.value(f)
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			missing = append(missing, sel.String())
			return 0, false
		}
		return v, true
	}
	if v, ok := read(s.heap); ok {
		out.Readings = append(out.Readings, Reading{Kind: KindHeap, Bytes: v})
	}
	if v, ok := read(s.rss); ok {
		out.Readings = append(out.Readings, Reading{Kind: KindRSS, Bytes: v})
	}
	if v, ok := read(s.start); ok {
		out.StartTime = v
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("scrape: metrics not found or not usable: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

func decodeFamilies(r io.Reader, format expfmt.Format) (map[string]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(r, format)
	fams := map[string]*dto.MetricFamily{}
	for {
		f := &dto.MetricFamily{}
		err := dec.Decode(f)
		if errors.Is(err, io.EOF) {
			return fams, nil
		}
		if err != nil {
			return nil, err
		}
		fams[f.GetName()] = f
	}
}
