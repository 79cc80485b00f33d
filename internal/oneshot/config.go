package oneshot

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Config holds the one-shot mode's own settings, read from SOAK_* variables
// (main applies the SOAK_ prefix); each is also a command-line flag of the
// subcommand it concerns, and a flag wins over its variable.
type Config struct {
	MinSuccessRatio Ratio    `envconfig:"LOADTEST_MIN_SUCCESS_RATIO" default:"0.995" desc:"loadtest: pass when the connection success rate is above this (a ratio such as 0.995 or a percentage such as 99.5%)."`
	MaxConnectP95   Duration `envconfig:"LOADTEST_MAX_CONNECT_P95" default:"500ms" desc:"loadtest: pass when the 95th percentile of the connection establishment time is below this (Go duration or seconds)."`
	MaxLatencyP95   Duration `envconfig:"LOADTEST_MAX_LATENCY_P95" default:"200ms" desc:"loadtest: pass when the 95th percentile of the event latency is below this (Go duration or seconds)."`
	MaxLossRatio    Ratio    `envconfig:"LOADTEST_MAX_LOSS_RATIO" default:"0" desc:"loadtest: pass when the event loss rate (lost / sent) is at most this (ratio or percentage)."`
	LeakClients     int      `envconfig:"LEAKTEST_CLIENTS" default:"10" desc:"leaktest: Socket.IO clients kept connected; each performs activity_rate acked echoes per minute."`
	MaxLeakRate     float64  `envconfig:"LEAKTEST_MAX_LEAK_RATE" default:"5" desc:"leaktest: pass when the least-squares leak rate is below this, in MB/hour (1 MB = 10^6 bytes)."`
	LeakKind        string   `envconfig:"LEAKTEST_KIND" default:"auto" desc:"leaktest: memory series the criteria judge: heap, rss, or auto (heap when the source reports it, else rss)."`
	LeakBucket      Duration `envconfig:"LEAKTEST_BUCKET" default:"0" desc:"leaktest: bucket width of the robust detector; each bucket must span a full GC cycle of the target. 0: min(5m, max(30s, 2 x sampling, duration/SOAK_LEAK_MIN_BUCKETS))."`
	ReportJSON      string   `envconfig:"REPORT_JSON" desc:"loadtest, leaktest: also write the machine-readable report to this file (- for stdout; the text report then goes to stderr)."`
	ReportHTML      string   `envconfig:"REPORT_HTML" desc:"loadtest, leaktest: also write a self-contained HTML report (charts, criteria, action items) to this file."`
	ReportJUnit     string   `envconfig:"REPORT_JUNIT" desc:"loadtest, leaktest: also write a JUnit XML file (one test case per pass criterion) to this file, for CI systems."`
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	switch {
	case c.MinSuccessRatio < 0 || c.MinSuccessRatio > 1:
		return fmt.Errorf("SOAK_LOADTEST_MIN_SUCCESS_RATIO: must be in [0, 1], got %v", float64(c.MinSuccessRatio))
	case c.MaxConnectP95 <= 0:
		return fmt.Errorf("SOAK_LOADTEST_MAX_CONNECT_P95: must be > 0, got %q", time.Duration(c.MaxConnectP95))
	case c.MaxLatencyP95 <= 0:
		return fmt.Errorf("SOAK_LOADTEST_MAX_LATENCY_P95: must be > 0, got %q", time.Duration(c.MaxLatencyP95))
	case c.MaxLossRatio < 0 || c.MaxLossRatio > 1:
		return fmt.Errorf("SOAK_LOADTEST_MAX_LOSS_RATIO: must be in [0, 1], got %v", float64(c.MaxLossRatio))
	case c.LeakClients < 1:
		return fmt.Errorf("SOAK_LEAKTEST_CLIENTS: must be >= 1, got %d", c.LeakClients)
	case !(c.MaxLeakRate > 0) || math.IsInf(c.MaxLeakRate, 0):
		return fmt.Errorf("SOAK_LEAKTEST_MAX_LEAK_RATE: must be a number > 0 (MB/hour), got %v", c.MaxLeakRate)
	case c.LeakBucket < 0:
		return fmt.Errorf("SOAK_LEAKTEST_BUCKET: must be >= 0, got %q", time.Duration(c.LeakBucket))
	case c.ReportHTML == "-":
		return fmt.Errorf("SOAK_REPORT_HTML: must be a file name (only the JSON report can go to stdout), got %q", c.ReportHTML)
	case c.ReportJUnit == "-":
		return fmt.Errorf("SOAK_REPORT_JUNIT: must be a file name (only the JSON report can go to stdout), got %q", c.ReportJUnit)
	}
	switch c.LeakKind {
	case kindAuto, kindHeap, kindRSS:
	default:
		return fmt.Errorf("SOAK_LEAKTEST_KIND: must be heap, rss or auto, got %q", c.LeakKind)
	}
	return nil
}

// serveConfig is the optional HTTP endpoint of a one-shot run. Unlike the
// agent, a one-shot run serves nothing unless SOAK_LISTEN_ADDRESS is set.
type serveConfig struct {
	ListenAddress string `envconfig:"LISTEN_ADDRESS" desc:"If set, serve /metrics (and the landing page) on this address while the run lasts, so a CI job can be scraped."`
	WebConfigFile string `envconfig:"WEB_CONFIG_FILE" desc:"Exporter-toolkit web configuration file (TLS, basic auth) for that endpoint."`
}

// Memory series kinds of leaktest.
const (
	kindAuto = "auto"
	kindHeap = "heap"
	kindRSS  = "rss"
)

// Ratio is a number in [0, 1], written as a ratio (0.995) or a percentage
// (99.5%). It is both an envconfig.Decoder and a flag.Value.
type Ratio float64

// Decode parses s (envconfig).
func (r *Ratio) Decode(s string) error { return r.Set(s) }

// Set parses s (flag).
func (r *Ratio) Set(s string) error {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("want a ratio (0.995) or a percentage (99.5%%), got %q", s)
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > 1 {
		return fmt.Errorf("must be between 0 and 1 (0%% and 100%%), got %q", s)
	}
	*r = Ratio(v)
	return nil
}

// String prints the ratio as a percentage.
func (r *Ratio) String() string {
	if r == nil {
		return "0%"
	}
	return strconv.FormatFloat(float64(*r)*100, 'g', -1, 64) + "%"
}

// Duration is a Go duration ("500ms", "2m") or a plain number of seconds
// ("0.5", "30"). It is both an envconfig.Decoder and a flag.Value.
type Duration time.Duration

// Decode parses s (envconfig).
func (d *Duration) Decode(s string) error { return d.Set(s) }

// Set parses s (flag).
func (d *Duration) Set(s string) error {
	v, err := parseDuration(s, time.Second)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String prints the duration as Go does.
func (d *Duration) String() string {
	if d == nil {
		return "0s"
	}
	return time.Duration(*d).String()
}

// parseDuration reads a Go duration, or a plain non-negative number in
// units of unit.
func parseDuration(s string, unit time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f*float64(unit) > math.MaxInt64 {
			return 0, fmt.Errorf("want a non-negative number or a Go duration, got %q", s)
		}
		return time.Duration(f * float64(unit)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a number of %s or a Go duration such as 90s or 1m30s, got %q", unitName(unit), s)
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative, got %q", s)
	}
	return d, nil
}

func unitName(unit time.Duration) string {
	if unit == time.Minute {
		return "minutes"
	}
	return "seconds"
}
