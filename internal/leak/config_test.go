package leak

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

func TestConfigDefaultsMatchTags(t *testing.T) {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SOAK_") {
			k, _, _ := strings.Cut(kv, "=")
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	var c Config
	if err := envconfig.Process("SOAK", &c); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if c.Detect().Validate() != nil || c.Validate() != nil {
		t.Fatalf("defaults invalid: %v", c.Validate())
	}
	if got, w := c.Detect(), want.Detect(); got.Grace != w.Grace || got.Alpha != w.Alpha || got.MinGrowth != w.MinGrowth ||
		got.MinRate != w.MinRate || len(got.MinGrowthFor) != len(w.MinGrowthFor) || got.MinGrowthFor[time.Hour] != w.MinGrowthFor[time.Hour] ||
		got.StepRatio != w.StepRatio || got.StepRamp != w.StepRamp || got.GuardSE != w.GuardSE || got.StepSigma != w.StepSigma || got.LaterMin != w.LaterMin ||
		got.FastShare != w.FastShare || got.FastKeepShare != w.FastKeepShare || got.GuardMidShare != w.GuardMidShare ||
		!slices.Equal(got.Windows, w.Windows) {
		t.Errorf("envconfig defaults %+v\ndiffer from DefaultConfig %+v", got, w)
	}
	if c.Interval != want.Interval || c.ScrapeHeapMetric != want.ScrapeHeapMetric || c.ScrapeMaxBytes != want.ScrapeMaxBytes {
		t.Errorf("memory defaults differ: %+v", c)
	}
	// Every field documents itself for --help.
	for _, f := range []string{"desc:", "default:"} {
		if n := strings.Count(configSource(t), f); n < 27 {
			t.Errorf("only %d %s tags", n, f)
		}
	}
}

func configSource(t *testing.T) string {
	b, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"interval", func(c *Config) { c.Interval = 0 }, `SOAK_MEMORY_INTERVAL: must be > 0, got "0s"`},
		{"unknown source", func(c *Config) { c.Sources = []string{"self", "jmx"} }, `SOAK_MEMORY_SOURCES: unknown source "jmx"`},
		{"scrape without url", func(c *Config) { c.Sources = []string{"scrape"} }, "SOAK_MEMORY_SCRAPE_URL: required"},
		{"bad url", func(c *Config) { c.ScrapeURL = "ftp://x" }, "SOAK_MEMORY_SCRAPE_URL: must be an http(s) URL"},
		{"bad metric", func(c *Config) { c.ScrapeURL, c.ScrapeHeapMetric = "http://127.0.0.1:1/metrics", "heap{area=heap}" }, "SOAK_MEMORY_SCRAPE_HEAP_METRIC:"},
		{"procfs without target", func(c *Config) { c.Sources = []string{"procfs"} }, "SOAK_MEMORY_PID: it or SOAK_MEMORY_PROCESS_MATCH is required"},
		{"bad regexp", func(c *Config) { c.ProcessMatch = "node(" }, "SOAK_MEMORY_PROCESS_MATCH:"},
		{"limit", func(c *Config) { c.LimitBytes = -1 }, "SOAK_MEMORY_LIMIT_BYTES: must be >= 0"},
		{"windows", func(c *Config) { c.Windows = []time.Duration{time.Hour, -time.Hour} }, `SOAK_LEAK_WINDOWS: must be > 0, got "-1h0m0s"`},
		{"p", func(c *Config) { c.PValue = 2 }, "SOAK_LEAK_P_VALUE: must be in (0, 1), got 2"},
		{"grace", func(c *Config) { c.Grace = -time.Second }, "SOAK_LEAK_GRACE:"},
		{"evaluate", func(c *Config) { c.EvaluateInterval = 0 }, "SOAK_LEAK_EVALUATE_INTERVAL:"},
		{"min buckets", func(c *Config) { c.MinBuckets = 1 }, "SOAK_LEAK_MIN_BUCKETS:"},
		{"step sigma", func(c *Config) { c.StepSigma = -1 }, "SOAK_LEAK_STEP_SIGMA: must be a finite number >= 0, got -1"},
		{"step ramp", func(c *Config) { c.StepRamp = -time.Minute }, `SOAK_LEAK_STEP_RAMP: must be >= 0, got "-1m0s"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestResolvedSources(t *testing.T) {
	c := DefaultConfig()
	if got := strings.Join(c.ResolvedSources(), ","); got != "self" {
		t.Errorf("default sources %q", got)
	}
	c.ScrapeURL, c.ProcessMatch = "http://127.0.0.1:9/metrics", "node"
	if got := strings.Join(c.ResolvedSources(), ","); got != "self,scrape,procfs" {
		t.Errorf("auto sources %q", got)
	}
	c.Sources = []string{" procfs", "procfs", ""}
	if got := strings.Join(c.ResolvedSources(), ","); got != "procfs" {
		t.Errorf("explicit sources %q", got)
	}
}

func TestUnits(t *testing.T) {
	bytesCases := map[string]float64{"21MB": 21e6, "1.5GiB": 1.5 * (1 << 30), "512 KiB": 512 << 10, "1048576": 1 << 20, "3kB": 3000, "7B": 7}
	for in, want := range bytesCases {
		var b Bytes
		if err := b.Decode(in); err != nil || float64(b) != want {
			t.Errorf("Bytes(%q) = %v, %v; want %v", in, float64(b), err, want)
		}
	}
	for _, in := range []string{"", "MB", "-1MB", "1XB", "NaN"} {
		var b Bytes
		if err := b.Decode(in); err == nil {
			t.Errorf("Bytes(%q) accepted", in)
		}
	}
	rates := map[string]float64{"0.25MB/h": 0.25e6 / 3600, "1MiB/m": (1 << 20) / 60.0, "300B/s": 300, "300": 300, "2MB/d": 2e6 / 86400}
	for in, want := range rates {
		var r ByteRate
		if err := r.Decode(in); err != nil || float64(r) != want {
			t.Errorf("ByteRate(%q) = %v, %v; want %v", in, float64(r), err, want)
		}
	}
	for _, in := range []string{"1MB/week", "x/h", ""} {
		var r ByteRate
		if err := r.Decode(in); err == nil {
			t.Errorf("ByteRate(%q) accepted", in)
		}
	}
	var g GrowthByWindow
	if err := g.Decode(" 1h:18MB, 24h:12MB,"); err != nil || g[time.Hour] != 18e6 || g[24*time.Hour] != 12e6 || len(g) != 2 {
		t.Errorf("GrowthByWindow = %v, %v", g, err)
	}
	if g.String() != "1h:18MB,24h:12MB" {
		t.Errorf("String() = %q", g.String())
	}
	for _, in := range []string{"1h", "x:1MB", "1h:lots", "-1h:1MB"} {
		var g GrowthByWindow
		if err := g.Decode(in); err == nil {
			t.Errorf("GrowthByWindow(%q) accepted", in)
		}
	}
	if s := Bytes(21e6).String() + " " + ByteRate(0.25e6/3600).String(); s != "21MB 0.25MB/h" {
		t.Errorf("String() = %q", s)
	}
}
