package leak

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
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
	// The figure is compared with the CPU the kernel counted for the same
	// process over the same span (a loaded machine gives the busy loop less
	// than a core: compare ratios measured in the same run).
	cpu0 := procCPUSeconds(t, node.PID())
	m.Tick(ctx)
	node.BlockFor(time.Second) // a busy second
	m.Tick(ctx)
	cpu1 := procCPUSeconds(t, node.PID())
	if problems, err := testutil.GatherAndLint(reg, "soak_target_cpu_ratio", "soak_target_event_loop_lag_seconds"); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	cpu := vitalsValues(t, m.samplers[0].(*Scrape).Vitals())["soak_target_cpu_ratio"]
	used := cpu1 - cpu0
	t.Logf("target cpu ratio %.2f; the kernel counted %.2f s of CPU for it over the span", cpu, used)
	if used <= 0 || cpu <= 0 || cpu/used < 0.3 || cpu/used > 3 {
		t.Errorf("cpu ratio %.2f, while the process used %.2f s of CPU between the two scrapes", cpu, used)
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

// procCPUSeconds is the user+system CPU time of a process, from
// /proc/PID/stat (clock ticks of 1/100 s on Linux).
func procCPUSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100
}
