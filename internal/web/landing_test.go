package web

import (
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/health"
	"github.com/generic-corp/soak-exporter/internal/pool"
)

type memView []MemorySeries

func (m memView) Series() []MemorySeries { return m }

func TestLandingRecentFiguresAndColours(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clk := func() time.Time { return now }
	tests := []struct {
		name     string
		lat      time.Duration
		lostEach int
		pools    health.PoolState
		contains []string
		excludes []string
		bad      []string // figure rows whose last-minute cell is bad
	}{
		{
			name: "healthy", lat: 3 * time.Millisecond,
			pools:    health.PoolState{Target: "a", Connected: 10, Desired: 10},
			contains: []string{"No alert condition holds now.", `class="clients good">10 / 10`},
			excludes: []string{`class="bad"`, "condition bad"},
		},
		{
			name: "slow, lossy, short of clients, hostile message", lat: 400 * time.Millisecond, lostEach: 5,
			pools: health.PoolState{Target: "a", Connected: 7, Desired: 10, LastConnectReason: "connect_error", LastConnectMessage: "<script>x</script>"},
			contains: []string{
				"p95 latency 403 ms &gt; 200 ms for 3 min (alert SoakEventLatencyHigh fires after 10 min)",
				"loss 5% (300 of 6000) &gt; 0% for 3 min",
				`class="clients bad">7 / 10`,
				"&lt;script&gt;x&lt;/script&gt;",
			},
			excludes: []string{"<script>x"},
			bad:      []string{"lost", "latency p95"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := health.New(health.Config{}, health.Options{Now: clk, Pools: func() []health.PoolState { return []health.PoolState{tt.pools} }})
			for i := 0; i < 240; i++ {
				h.Event("a", "echo", "echo", pool.OutcomeSent, 100, 0)
				h.Event("a", "echo", "echo", pool.OutcomeAnswered, 100-tt.lostEach, tt.lat)
				h.Event("a", "echo", "echo", pool.OutcomeLost, tt.lostEach, 0)
				now = now.Add(time.Second)
				h.Step()
			}
			mem := memView{{Source: "node", Kind: "heap", Bytes: 300 << 20, Slope: 1024, Verdict: "leak suspected",
				Reason: "slope > floor", Suspected: true,
				Points: []MemoryPoint{{now.Add(-2 * time.Hour), 200 << 20}, {now.Add(-time.Hour), 250 << 20}, {now, 300 << 20}}}}
			s := New(Config{}, zap.NewNop(), Options{Gatherer: prometheus.NewRegistry(), Health: h, Memory: mem, Now: clk})
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			body := rec.Body.String()
			for _, c := range append(tt.contains, "<polyline", "3.5 MiB/h", `verdict bad">leak suspected`, "300.0 MiB") {
				if !strings.Contains(body, c) {
					t.Errorf("body lacks %q", c)
				}
			}
			for _, c := range tt.excludes {
				if strings.Contains(body, c) {
					t.Errorf("body has %q", c)
				}
			}
			for _, row := range tt.bad {
				re := regexp.MustCompile(`<td>` + regexp.QuoteMeta(row) + `</td><td class="bad">`)
				if !re.MatchString(body) {
					t.Errorf("row %q: last-minute cell not bad", row)
				}
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}

func TestRoundForAndBytes(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{{45 * time.Second, "45 s"}, {3*time.Minute + 20*time.Second, "3 min"}, {65 * time.Minute, "1 h 5 min"}, {2 * time.Hour, "2 h"}}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := roundFor(tt.d); got != tt.want {
				t.Errorf("roundFor(%v) = %q", tt.d, got)
			}
		})
	}
	if got := bytesText(1536); got != "1.5 KiB" {
		t.Errorf("bytesText(1536) = %q", got)
	}
	if got := bytesText(math.NaN()); got != "-" {
		t.Errorf("bytesText(NaN) = %q", got)
	}
}

func TestLandingShowsTheHeapDiff(t *testing.T) {
	lines := []string{"v8 heap diff a -> b: +5000 objects", "   +5000  +760000   5000   760000  LeakyCache<T>"}
	for _, tc := range []struct {
		name string
		diff func() []string
		want []string
		not  []string
	}{
		{"no capture", nil, nil, []string{"What grew"}},
		{"a diff", func() []string { return lines }, []string{"What grew while a leak was suspected", "LeakyCache&lt;T&gt;", "5000 objects"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{}, zap.NewNop(), Options{Gatherer: prometheus.NewRegistry(), HeapDiff: tc.diff})
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			body := rec.Body.String()
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, n) {
					t.Errorf("page shows %q", n)
				}
			}
		})
	}
}
