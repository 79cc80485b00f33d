package leak

import (
	"context"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

func parseText(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := decodeFamilies(strings.NewReader(text), expfmt.NewFormat(expfmt.TypeTextPlain))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func TestVitalsObserve(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		dt   time.Duration
		text string // "" is a failed scrape
	}
	cpu := func(v string) string {
		return "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total " + v + "\n"
	}
	const lag = "# TYPE nodejs_eventloop_lag_seconds gauge\nnodejs_eventloop_lag_seconds 0.004\n# TYPE nodejs_eventloop_lag_p99_seconds gauge\nnodejs_eventloop_lag_p99_seconds 0.02\n"
	for _, tc := range []struct {
		name  string
		steps []step
		want  map[string]float64
	}{
		{"first scrape: no rate yet", []step{{0, cpu("10") + lag}},
			map[string]float64{"soak_target_event_loop_lag_seconds{stat=last}": 0.004, "soak_target_event_loop_lag_seconds{stat=p99}": 0.02}},
		{"rate", []step{{0, cpu("10")}, {10 * time.Second, cpu("15") + lag}},
			map[string]float64{"soak_target_cpu_ratio": 0.5, "soak_target_event_loop_lag_seconds{stat=last}": 0.004, "soak_target_event_loop_lag_seconds{stat=p99}": 0.02}},
		{"counter reset (restart)", []step{{0, cpu("10")}, {5 * time.Second, cpu("1")}}, map[string]float64{}},
		{"after a reset, rate again", []step{{0, cpu("10")}, {5 * time.Second, cpu("1")}, {5 * time.Second, cpu("3")}}, map[string]float64{"soak_target_cpu_ratio": 0.4}},
		{"failed scrape forgets", []step{{0, cpu("10") + lag}, {5 * time.Second, cpu("12") + lag}, {5 * time.Second, ""}}, map[string]float64{}},
		{"failed scrape breaks the rate", []step{{0, cpu("10")}, {5 * time.Second, ""}, {5 * time.Second, cpu("12")}}, map[string]float64{}},
		{"no metrics", []step{{0, "# TYPE other gauge\nother 1\n"}, {5 * time.Second, "# TYPE other gauge\nother 1\n"}}, map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVitals()
			now := t0
			for _, s := range tc.steps {
				now = now.Add(s.dt)
				var fams map[string]*dto.MetricFamily
				if s.text != "" {
					fams = parseText(t, s.text)
				}
				v.observe(now, fams)
			}
			got := vitalsValues(t, v)
			if len(got) != len(tc.want) {
				t.Errorf("vitals %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
					t.Errorf("%s = %v, want %v (all: %v)", k, g, w, got)
				}
			}
		})
	}
}

// TestVitalsNode reads the vitals from the Node fixture's prom-client
// metrics while its event loop is kept busy.
func TestVitalsNode(t *testing.T) {
	node := testfixture.Start(t, testfixture.Options{})
	cfg := DefaultConfig()
	cfg.Sources, cfg.ScrapeURL = []string{SourceScrape}, node.MetricsURL()
	reg := prometheus.NewRegistry()
	m, err := New(cfg, zap.NewNop(), reg, WithClock(time.Now),
		WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.Tick(ctx)
	node.BlockFor(time.Second) // a busy second: CPU near one core
	m.Tick(ctx)
	if problems, err := testutil.GatherAndLint(reg, "soak_target_cpu_ratio", "soak_target_event_loop_lag_seconds"); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	cpu := vitalsValues(t, m.samplers[0].(*Scrape).Vitals())["soak_target_cpu_ratio"]
	t.Logf("target cpu ratio %.2f", cpu)
	if cpu < 0.4 || cpu > 2.5 {
		t.Errorf("cpu ratio %.2f over a busy second, want about 1", cpu)
	}
	if n := testutil.CollectAndCount(reg, "soak_target_event_loop_lag_seconds"); n != 2 {
		t.Errorf("%d event-loop lag series, want 2 (last, p99)", n)
	}
}

// vitalsValues gathers v: "name" or "name{stat=...}" to value.
func vitalsValues(t *testing.T, v *Vitals) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(v)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			k := f.GetName()
			for _, l := range m.GetLabel() {
				k += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[k] = m.GetGauge().GetValue()
		}
	}
	return out
}
