package oneshot

import (
	"math"

	"github.com/kelseyhightower/envconfig"

	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRecorderExactPercentiles(t *testing.T) {
	r := newRecorder(1000, 1)
	r.Observe(42) // disabled: ignored
	r.enabled.Store(true)
	for i := 100; i >= 1; i-- { // order must not matter
		r.Observe(float64(i))
	}
	s := r.summary()
	want := Summary{Count: 100, Sum: 5050, Avg: 50.5, P50: 50, P95: 95, P99: 99, Min: 1, Max: 100}
	if s != want {
		t.Errorf("summary %+v, want %+v", s, want)
	}
	empty := newRecorder(10, 1).summary()
	if empty.Count != 0 || !math.IsNaN(empty.P95) || !math.IsNaN(empty.Avg) || !math.IsNaN(empty.Max) {
		t.Errorf("empty summary %+v, want NaN figures", empty)
	}
}

func TestRecorderReservoirIsBounded(t *testing.T) {
	const capacity, n = 2000, 200_000
	r := newRecorder(capacity, 7)
	r.enabled.Store(true)
	for i := range n {
		// A uniform ramp over [0, 1), interleaved so that late values differ
		// from early ones.
		r.Observe(float64((i*7919)%n) / n)
	}
	if len(r.vals) != capacity {
		t.Fatalf("kept %d values, want the cap %d", len(r.vals), capacity)
	}
	s := r.summary()
	if s.Count != n || !s.Sampled {
		t.Errorf("count %d sampled %v, want %d and true", s.Count, s.Sampled, n)
	}
	if s.Min != 0 || s.Max != float64(n-1)/n {
		t.Errorf("min %v max %v must stay exact", s.Min, s.Max)
	}
	// A uniform sample of 2000: p50 and p95 within a few percent.
	if math.Abs(s.P50-0.5) > 0.05 || math.Abs(s.P95-0.95) > 0.03 {
		t.Errorf("sampled p50 %v p95 %v, want about 0.5 and 0.95", s.P50, s.P95)
	}
}

func TestNearestRank(t *testing.T) {
	tests := []struct {
		vals []float64
		p    float64
		want float64
	}{
		{[]float64{7}, 0.95, 7},
		{[]float64{1, 2}, 0.5, 1},
		{[]float64{1, 2}, 0.95, 2},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.95, 10},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{nil, 0.5, math.NaN()},
	}
	for _, tc := range tests {
		got := nearestRank(tc.vals, tc.p)
		if got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("nearestRank(%v, %v) = %v, want %v", tc.vals, tc.p, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		unit    time.Duration
		want    time.Duration
		wantErr string
	}{
		{"30", time.Second, 30 * time.Second, ""},
		{"0.5", time.Second, 500 * time.Millisecond, ""},
		{"5", time.Minute, 5 * time.Minute, ""},
		{"1.5", time.Minute, 90 * time.Second, ""},
		{"90s", time.Minute, 90 * time.Second, ""},
		{"1m30s", time.Second, 90 * time.Second, ""},
		{"0", time.Second, 0, ""},
		{"-1", time.Second, 0, "non-negative"},
		{"-1s", time.Second, 0, "negative"},
		{"soon", time.Minute, 0, "number of minutes or a Go duration"},
		{"NaN", time.Second, 0, "non-negative"},
	}
	for _, tc := range tests {
		got, err := parseDuration(tc.in, tc.unit)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseDuration(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseDuration(%q, %v) = %v, %v; want %v", tc.in, tc.unit, got, err, tc.want)
		}
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.995", 0.995, true},
		{"99.5%", 0.995, true},
		{"0", 0, true},
		{"100%", 1, true},
		{"1.5", 0, false},
		{"-1%", 0, false},
		{"most", 0, false},
	}
	for _, tc := range tests {
		var r Ratio
		err := r.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && math.Abs(float64(r)-tc.want) > 1e-12) {
			t.Errorf("Ratio.Set(%q) = %v, %v; want %v ok=%v", tc.in, float64(r), err, tc.want, tc.ok)
		}
	}
	r := Ratio(0.995)
	if got := r.String(); got != "99.5%" {
		t.Errorf("String() = %q", got)
	}
}

func TestParseArgsInterleaved(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantJS  string
	}{
		{[]string{"http://h:1", "10", "--json", "r.json", "100"}, []string{"http://h:1", "10", "100"}, "r.json"},
		{[]string{"--json=-", "http://h:1"}, []string{"http://h:1"}, "-"},
		{[]string{"http://h:1", "--", "--json"}, []string{"http://h:1", "--json"}, ""},
		{nil, nil, ""},
	}
	for _, tc := range tests {
		var c Config
		var scen string
		fs := loadFlags(&c, &scen)
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !reflect.DeepEqual(pos, tc.wantPos) || c.ReportJSON != tc.wantJS {
			t.Errorf("parseArgs(%q) = %q, json %q, %v; want %q, %q", tc.args, pos, c.ReportJSON, err, tc.wantPos, tc.wantJS)
		}
	}
}

func defaultSpec(t *testing.T) *envSpec {
	t.Helper()
	var s envSpec
	d := testDeps(t)
	for _, p := range s.parts() {
		if err := d.LoadEnv(p); err != nil {
			t.Fatal(err)
		}
	}
	return &s
}

func TestParseLoadArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    loadArgs
		wantErr string
	}{
		{
			name: "old defaults",
			want: loadArgs{clients: 50, rate: 100, duration: 30 * time.Second, warmup: 5 * time.Second},
		},
		{
			name: "old heavy load test",
			args: []string{"http://localhost:3000", "100", "500", "60", "10"},
			want: loadArgs{url: "http://localhost:3000", clients: 100, rate: 500, duration: time.Minute, warmup: 10 * time.Second},
		},
		{
			name: "go durations",
			args: []string{"ws://h:1", "3", "2.5", "1m30s", "500ms"},
			want: loadArgs{url: "ws://h:1", clients: 3, rate: 2.5, duration: 90 * time.Second, warmup: 500 * time.Millisecond},
		},
		{name: "zero duration", args: []string{"http://h:1", "1", "1", "0"}, wantErr: "duration: must be > 0"},
		{name: "bad rate", args: []string{"http://h:1", "1", "fast"}, wantErr: "event_rate"},
		{name: "zero connections", args: []string{"http://h:1", "0"}, wantErr: "connections"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := defaultSpec(t)
			got, err := parseLoadArgs(tc.args, spec, &strings.Builder{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.cfg = Config{}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseLeakArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    leakArgs
		wantErr string
	}{
		{name: "old defaults", want: leakArgs{duration: 5 * time.Minute, sampling: 5 * time.Second, activity: 10}},
		{
			name: "old overnight test",
			args: []string{"http://localhost:3000", "480", "60", "5"},
			want: leakArgs{url: "http://localhost:3000", duration: 8 * time.Hour, sampling: time.Minute, activity: 5},
		},
		{
			name: "sub-minute run",
			args: []string{"http://h:1", "20s", "250ms", "120"},
			want: leakArgs{url: "http://h:1", duration: 20 * time.Second, sampling: 250 * time.Millisecond, activity: 120},
		},
		{name: "zero sampling", args: []string{"http://h:1", "1", "0"}, wantErr: "sampling_seconds: must be > 0"},
		{name: "run shorter than two samples", args: []string{"http://h:1", "5s", "5"}, wantErr: "at least two samples"},
		{name: "bad activity", args: []string{"http://h:1", "1", "1", "lots"}, wantErr: "activity_rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLeakArgs(tc.args, defaultSpec(t), &strings.Builder{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.cfg = Config{}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	base := defaultSpec(t).oneshot
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	want := Config{
		MinSuccessRatio: 0.995, MaxConnectP95: Duration(500 * time.Millisecond),
		MaxLatencyP95: Duration(200 * time.Millisecond), MaxLossRatio: 0,
		LeakClients: 10, MaxLeakRate: 5, LeakKind: "auto",
	}
	if base != want {
		t.Errorf("defaults %+v, want the old suite's %+v", base, want)
	}
	tests := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.MaxConnectP95 = 0 }, "SOAK_LOADTEST_MAX_CONNECT_P95"},
		{func(c *Config) { c.MaxLatencyP95 = -1 }, "SOAK_LOADTEST_MAX_LATENCY_P95"},
		{func(c *Config) { c.LeakClients = 0 }, "SOAK_LEAKTEST_CLIENTS"},
		{func(c *Config) { c.MaxLeakRate = 0 }, "SOAK_LEAKTEST_MAX_LEAK_RATE"},
		{func(c *Config) { c.LeakKind = "stack" }, "SOAK_LEAKTEST_KIND"},
		{func(c *Config) { c.LeakBucket = -1 }, "SOAK_LEAKTEST_BUCKET"},
		{func(c *Config) { c.ReportHTML = "-" }, "SOAK_REPORT_HTML"},
		{func(c *Config) { c.ReportJUnit = "-" }, "SOAK_REPORT_JUNIT"},
	}
	for _, tc := range tests {
		c := base
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
		}
	}
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		name  string
		vals  []float64
		width int
		want  string
	}{
		{"ramp", []float64{0, 1, 2, 3, 4, 5, 6, 7}, 60, "▁▂▃▄▅▆▇█"},
		{"flat", []float64{5, 5, 5}, 60, "▁▁▁"},
		{"nan skipped", []float64{0, math.NaN(), 7}, 60, "▁█"},
		{"reduced by means", []float64{0, 0, 7, 7}, 2, "▁█"},
		{"empty", nil, 60, ""},
	}
	for _, tc := range tests {
		if got := sparkline(tc.vals, tc.width); got != tc.want {
			t.Errorf("%s: sparkline = %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := len([]rune(sparkline(make([]float64, 1000), 60))); n != 60 {
		t.Errorf("long series drawn in %d columns, want 60", n)
	}
}

func TestConnectRateFor(t *testing.T) {
	tests := []struct {
		configured float64
		clients    int
		warmup     time.Duration
		want       float64
	}{
		{50, 50, 5 * time.Second, 50},    // 50 within 4 s needs 12.5/s: the configured rate is enough
		{50, 500, 15 * time.Second, 50},  // old stress test: 500 in 10 s at 50/s
		{50, 1000, 5 * time.Second, 250}, // 1000 within 4 s
		{50, 200, 0, 200},                // no warmup: within a second
	}
	for _, tc := range tests {
		if got := connectRateFor(tc.configured, tc.clients, tc.warmup); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("connectRateFor(%v, %d, %v) = %v, want %v", tc.configured, tc.clients, tc.warmup, got, tc.want)
		}
	}
}

func TestBucketFor(t *testing.T) {
	tests := []struct {
		configured, duration, sampling, want time.Duration
	}{
		{0, 5 * time.Minute, 5 * time.Second, 30 * time.Second},      // quick check: 10 buckets
		{0, 10 * time.Minute, 5 * time.Second, time.Minute},          // old CI example
		{0, time.Hour, 10 * time.Second, 5 * time.Minute},            // standard
		{0, 8 * time.Hour, time.Minute, 5 * time.Minute},             // overnight
		{0, 20 * time.Minute, time.Minute, 2 * time.Minute},          // two samples a bucket at least
		{time.Second, 5 * time.Minute, 5 * time.Second, time.Second}, // configured
	}
	for _, tc := range tests {
		if got := bucketFor(tc.configured, tc.duration, tc.sampling, 10); got != tc.want {
			t.Errorf("bucketFor(%v, %v, %v) = %v, want %v", tc.configured, tc.duration, tc.sampling, got, tc.want)
		}
	}
}

func TestLoadCriteriaWithoutData(t *testing.T) {
	rep := LoadReport{
		Connections: ConnStats{SuccessRatio: Float(math.NaN()), Establishment: Dist{P95: Float(math.NaN())}},
		Events:      EventStats{LossRatio: Float(math.NaN()), Latency: Dist{P95: Float(math.NaN())}},
	}
	cfg := defaultSpec(t).oneshot
	for _, c := range loadCriteria(cfg, rep) {
		if c.Passed || c.Detail == "" {
			t.Errorf("criterion %s without data: passed %v detail %q; want a failure that says why", c.Name, c.Passed, c.Detail)
		}
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SOAK_LOADTEST_MAX_LATENCY_P95": "soon"}, `SOAK_LOADTEST_MAX_LATENCY_P95: want a number of seconds or a Go duration`},
		{map[string]string{"SOAK_LOADTEST_MIN_SUCCESS_RATIO": "150%"}, `SOAK_LOADTEST_MIN_SUCCESS_RATIO: must be between 0 and 1`},
		{map[string]string{"SOAK_LEAKTEST_CLIENTS": "ten"}, `SOAK_LEAKTEST_CLIENTS: cannot parse "ten" as int`},
		{map[string]string{"SOAK_AUTH_TOKEN_FILE": "x", "SOAK_AUTH_TOKEN": "secret-value"}, `SOAK_AUTH_TOKEN_FILE: set either`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			deps := testDeps(t)
			deps.LoadEnv = func(s any) error { return envconfig.Process("soak", s) }
			var out, errb strings.Builder
			code := Main(t.Context(), "loadtest", []string{"http://127.0.0.1:1"}, deps, &out, &errb)
			if code != ExitUsage || !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), "secret-value") {
				t.Errorf("env %v: exit %d, stderr %q; want exit 2 and %q", tc.env, code, errb.String(), tc.want)
			}
		})
	}
}
