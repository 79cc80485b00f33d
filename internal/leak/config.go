package leak

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Source names, the values of the source label.
const (
	SourceScrape = "scrape"
	SourceProcfs = "procfs"
	SourceSelf   = "self"
)

// Config configures memory sampling and leak detection. Process it with
// envconfig and the prefix SOAK (the tags below carry the rest of each
// name), then call Validate.
type Config struct {
	Interval time.Duration `envconfig:"MEMORY_INTERVAL" default:"5s" desc:"how often memory is sampled"`
	Sources  []string      `envconfig:"MEMORY_SOURCES" default:"" desc:"memory sources, comma-separated: scrape, procfs, self, redis; empty: self, plus scrape when SOAK_MEMORY_SCRAPE_URL is set, plus procfs when SOAK_MEMORY_PID or SOAK_MEMORY_PROCESS_MATCH is set, plus redis when SOAK_MEMORY_REDIS_URL is set"`

	RedisURL          string `envconfig:"MEMORY_REDIS_URL" default:"" desc:"redis:// or rediss:// (TLS) URL of a Redis server whose INFO memory is sampled (source redis); put the password in SOAK_MEMORY_REDIS_PASSWORD_FILE"`
	RedisPasswordFile string `envconfig:"MEMORY_REDIS_PASSWORD_FILE" default:"" desc:"file holding the Redis password (source redis)"`

	ScrapeURL         string        `envconfig:"MEMORY_SCRAPE_URL" default:"" desc:"the target's Prometheus metrics URL (source scrape)"`
	ScrapeTimeout     time.Duration `envconfig:"MEMORY_SCRAPE_TIMEOUT" default:"3s" desc:"timeout of one scrape of SOAK_MEMORY_SCRAPE_URL (at most SOAK_MEMORY_INTERVAL)"`
	ScrapeMaxBytes    int64         `envconfig:"MEMORY_SCRAPE_MAX_BYTES" default:"4194304" desc:"largest metrics response read from the target, bytes"`
	ScrapeHeapMetric  string        `envconfig:"MEMORY_SCRAPE_HEAP_METRIC" default:"nodejs_heap_size_used_bytes" desc:"metric read as the target's heap, optionally with label matchers, e.g. jvm_memory_used_bytes{area=\"heap\"} (matching series are summed); empty: no heap series"`
	ScrapeRSSMetric   string        `envconfig:"MEMORY_SCRAPE_RSS_METRIC" default:"process_resident_memory_bytes" desc:"metric read as the target's resident memory; empty: no rss series"`
	ScrapeStartMetric string        `envconfig:"MEMORY_SCRAPE_START_METRIC" default:"process_start_time_seconds" desc:"metric holding the target's start time (Unix seconds), used to see restarts; empty: none"`

	PID          int    `envconfig:"MEMORY_PID" default:"0" desc:"PID of the target process (source procfs), in the agent's PID namespace"`
	ProcessMatch string `envconfig:"MEMORY_PROCESS_MATCH" default:"" desc:"regular expression matched against command lines to find the target process (source procfs) when SOAK_MEMORY_PID is 0; the lowest matching PID wins"`
	ProcfsPath   string `envconfig:"MEMORY_PROCFS_PATH" default:"/proc" desc:"where procfs is mounted"`
	CgroupPath   string `envconfig:"MEMORY_CGROUP_PATH" default:"/sys/fs/cgroup" desc:"where the cgroup file system is mounted, to find memory limits"`

	LimitBytes     int64 `envconfig:"MEMORY_LIMIT_BYTES" default:"0" desc:"the target's memory limit in bytes for projections; 0: the cgroup limit found by procfs, if any"`
	HeapLimitBytes int64 `envconfig:"MEMORY_HEAP_LIMIT_BYTES" default:"0" desc:"the target's heap limit in bytes (e.g. Node's --max-old-space-size); 0: SOAK_MEMORY_LIMIT_BYTES"`

	Windows          []time.Duration `envconfig:"LEAK_WINDOWS" default:"1h,2h,5h,24h" desc:"rolling windows for leak detection, comma-separated"`
	EvaluateInterval time.Duration   `envconfig:"LEAK_EVALUATE_INTERVAL" default:"30s" desc:"how often leak figures and gauges are recomputed"`
	Bucket           time.Duration   `envconfig:"LEAK_BUCKET" default:"5m" desc:"smallest bucket whose minimum is the floor of the GC sawtooth; at least twice the target's longest GC period"`
	MaxBuckets       int             `envconfig:"LEAK_MAX_BUCKETS" default:"72" desc:"buckets per window at most (bucket = max(SOAK_LEAK_BUCKET, window/this))"`
	MinBuckets       int             `envconfig:"LEAK_MIN_BUCKETS" default:"10" desc:"fewest buckets a window needs for a verdict"`
	Grace            time.Duration   `envconfig:"LEAK_GRACE" default:"10h" desc:"start-up period after the first sample or a restart in which a warm-up may be under way: a window holding data from it suspects a leak only if the segment's floor passes the warm-up test (SOAK_LEAK_WARMUP_SHARE; with the test off, no verdict); make it at least 2.5 time constants of the target's warm-up"`
	WarmupShare      float64         `envconfig:"LEAK_WARMUP_SHARE" default:"0.7" desc:"warm-up test: the floor's slope over the last third of the segment so far must reach this share of its slope over the first third (a warm-up decelerates, a leak does not; an older segment is asked less, down to 0.5, as the slowest warm-up SOAK_LEAK_GRACE allows has slowed); 0: off, windows wait out SOAK_LEAK_GRACE"`
	WarmupSE         float64         `envconfig:"LEAK_WARMUP_SE" default:"1" desc:"warm-up test margin, in standard errors of the thirds' slopes"`
	WarmupMinAge     time.Duration   `envconfig:"LEAK_WARMUP_MIN_AGE" default:"3h" desc:"youngest segment the warm-up test judges (a shorter one gives no verdict)"`
	PartialShare     float64         `envconfig:"LEAK_PARTIAL_SHARE" default:"0.6" desc:"with the warm-up test on, a window shorter than 24h and longer than the segment so far (after the first sample or a restart) is judged on the segment once it covers this share of the window (a leak from process start is reported before its window fills); 1: full windows only"`
	PValue           float64         `envconfig:"LEAK_P_VALUE" default:"0.002" desc:"Mann-Kendall (Hamed-Rao) p-value below which the floor's upward trend is significant"`
	MinGrowth        Bytes           `envconfig:"LEAK_MIN_GROWTH" default:"21MB" desc:"least growth of the floor across a window that can be a leak (slope >= this/window)"`
	MinGrowthWindows GrowthByWindow  `envconfig:"LEAK_MIN_GROWTH_BY_WINDOW" default:"1h:18MB,2h:32MB,24h:14.4MB" desc:"SOAK_LEAK_MIN_GROWTH for given windows, window:amount comma-separated"`
	MinRate          ByteRate        `envconfig:"LEAK_MIN_RATE" default:"0.25MB/h" desc:"least floor slope that can be a leak in any window"`
	GuardSE          float64         `envconfig:"LEAK_GUARD_SE" default:"1" desc:"persistence guard tolerance in standard errors of the thirds' slopes"`
	StepRatio        float64         `envconfig:"LEAK_STEP_RATIO" default:"0.5" desc:"reject windows whose floor a single level step fits better than a line by this ratio of residuals (0: off)"`
	StepRamp         time.Duration   `envconfig:"LEAK_STEP_RAMP" default:"30m" desc:"in the windows longer than twice the shortest, the level step of SOAK_LEAK_STEP_RATIO may ramp over up to this long (and a quarter of the window), as a cache filling over minutes does; 0: steps at once only"`
	StepSigma        float64         `envconfig:"LEAK_STEP_SIGMA" default:"4" desc:"a rise of the floor between two buckets more than this many robust standard deviations above the typical change is a level step, taken out before the trend is judged (0: off)"`
	FastShare        float64         `envconfig:"LEAK_FAST_SHARE" default:"2.5" desc:"the shortest window, and the windows up to twice as long, report a rise faster than this multiple of their practical minimum (by the window's slope or the rise's own) only once it has lasted 2/3 of the window and is still under way (a level shift ramping over half an hour looks like a fast leak until it ends), when a window at most twice as long as the shortest is set; 0: off"`
	FastKeepShare    float64         `envconfig:"LEAK_FAST_KEEP_SHARE" default:"0.7" desc:"with SOAK_LEAK_FAST_SHARE: such a rise must also still rise over the window's last third at this share of its rate, within SOAK_LEAK_GUARD_SE (a level shift that ramped and stopped has lasted long enough but no longer rises); 0: off"`
	GuardMidShare    float64         `envconfig:"LEAK_GUARD_MID_SHARE" default:"0.5" desc:"persistence guard, windows longer than the shortest and at most twice as long (the default 2h): the last third must rise at this share of a middle third rising 2.5x the window's practical minimum or faster, within SOAK_LEAK_GUARD_SE (a level shift ramping over the middle of a window reads flat, rising, flat); 0: off"`
	GuardLastMin     bool            `envconfig:"LEAK_GUARD_LAST_MIN" default:"false" desc:"persistence guard: the last third of a window must still rise at the window's practical minimum (within SOAK_LEAK_GUARD_SE)"`
	RestartDrop      float64         `envconfig:"LEAK_RESTART_DROP" default:"0.5" desc:"a sample below this share of the recent floor counts as a restart"`
	HoldAfter        time.Duration   `envconfig:"LEAK_HOLD_AFTER" default:"15m" desc:"once a leak has been suspected at every evaluation for this long, soak_leak_suspected holds while any window's floor still rises (keep it equal to the alert's for:)"`
	HoldShare        float64         `envconfig:"LEAK_HOLD_SHARE" default:"0.5" desc:"a held leak verdict holds while a window's floor slope reaches this share of its practical minimum (with p < SOAK_LEAK_HOLD_P_VALUE)"`
	HoldPValue       float64         `envconfig:"LEAK_HOLD_P_VALUE" default:"0.05" desc:"Mann-Kendall p-value below which a rising floor keeps a held leak verdict"`
	ClearAfter       time.Duration   `envconfig:"LEAK_CLEAR_AFTER" default:"1h" desc:"a held leak verdict clears when no window's floor has kept rising for this long (or at a restart)"`
	Cycle            time.Duration   `envconfig:"LEAK_CYCLE" default:"24h" desc:"period of a traffic cycle: once the floor shows one, each window is judged against the floor one cycle earlier (0: off)"`
}

// DefaultConfig returns the defaults of the envconfig tags.
func DefaultConfig() Config {
	d := detect.DefaultConfig()
	return Config{
		Interval:          5 * time.Second,
		ScrapeTimeout:     3 * time.Second,
		ScrapeMaxBytes:    4 << 20,
		ScrapeHeapMetric:  "nodejs_heap_size_used_bytes",
		ScrapeRSSMetric:   "process_resident_memory_bytes",
		ScrapeStartMetric: "process_start_time_seconds",
		ProcfsPath:        "/proc",
		CgroupPath:        "/sys/fs/cgroup",
		Windows:           d.Windows,
		EvaluateInterval:  30 * time.Second,
		Bucket:            d.Bucket,
		MaxBuckets:        d.MaxBuckets,
		MinBuckets:        d.MinBuckets,
		Grace:             d.Grace,
		WarmupShare:       d.WarmupShare,
		WarmupSE:          d.WarmupSE,
		WarmupMinAge:      d.WarmupMinAge,
		PartialShare:      d.PartialShare,
		PValue:            d.Alpha,
		MinGrowth:         Bytes(d.MinGrowth),
		MinGrowthWindows:  GrowthByWindow(d.MinGrowthFor),
		MinRate:           ByteRate(d.MinRate),
		GuardSE:           d.GuardSE,
		StepRatio:         d.StepRatio,
		StepRamp:          d.StepRamp,
		StepSigma:         d.StepSigma,
		FastShare:         d.FastShare,
		FastKeepShare:     d.FastKeepShare,
		GuardMidShare:     d.GuardMidShare,
		GuardLastMin:      d.LaterMin,
		RestartDrop:       d.RestartDrop,
		HoldAfter:         d.HoldAfter,
		HoldShare:         d.HoldShare,
		HoldPValue:        d.HoldAlpha,
		ClearAfter:        d.ClearAfter,
		Cycle:             d.Cycle,
	}
}

// ResolvedSources returns the sources in use: Sources, or when empty self
// plus scrape and procfs when they are configured.
func (c Config) ResolvedSources() []string {
	if len(c.Sources) > 0 {
		out := make([]string, 0, len(c.Sources))
		for _, s := range c.Sources {
			if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	out := []string{SourceSelf}
	if c.ScrapeURL != "" {
		out = append(out, SourceScrape)
	}
	if c.PID != 0 || c.ProcessMatch != "" {
		out = append(out, SourceProcfs)
	}
	if c.RedisURL != "" {
		out = append(out, SourceRedis)
	}
	return out
}

// Detect returns the detector configuration.
func (c Config) Detect() detect.Config {
	return detect.Config{
		Windows:       slices.Clone(c.Windows),
		Bucket:        c.Bucket,
		MaxBuckets:    c.MaxBuckets,
		MinBuckets:    c.MinBuckets,
		Grace:         c.Grace,
		WarmupShare:   c.WarmupShare,
		WarmupSE:      c.WarmupSE,
		WarmupMinAge:  c.WarmupMinAge,
		PartialShare:  c.PartialShare,
		Alpha:         c.PValue,
		MinGrowth:     float64(c.MinGrowth),
		MinGrowthFor:  map[time.Duration]float64(c.MinGrowthWindows),
		MinRate:       float64(c.MinRate),
		StepRatio:     c.StepRatio,
		StepRamp:      c.StepRamp,
		GuardSE:       c.GuardSE,
		StepSigma:     c.StepSigma,
		FastShare:     c.FastShare,
		FastKeepShare: c.FastKeepShare,
		GuardMidShare: c.GuardMidShare,
		LaterMin:      c.GuardLastMin,
		RestartDrop:   c.RestartDrop,
		HoldAfter:     c.HoldAfter,
		HoldShare:     c.HoldShare,
		HoldAlpha:     c.HoldPValue,
		ClearAfter:    c.ClearAfter,
		Cycle:         c.Cycle,
	}
}

// Validate checks the configuration; errors name the environment variable.
func (c Config) Validate() error {
	if c.Interval <= 0 {
		return fmt.Errorf("SOAK_MEMORY_INTERVAL: must be > 0, got %q", c.Interval)
	}
	srcs := c.ResolvedSources()
	for _, s := range srcs {
		if s != SourceScrape && s != SourceProcfs && s != SourceSelf && s != SourceRedis {
			return fmt.Errorf("SOAK_MEMORY_SOURCES: unknown source %q (want scrape, procfs, self or redis)", s)
		}
	}
	if err := c.validateRedis(srcs); err != nil {
		return err
	}
	if slices.Contains(srcs, SourceScrape) {
		if c.ScrapeURL == "" {
			return fmt.Errorf("SOAK_MEMORY_SCRAPE_URL: required when SOAK_MEMORY_SOURCES includes scrape")
		}
		u, err := url.Parse(c.ScrapeURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("SOAK_MEMORY_SCRAPE_URL: must be an http(s) URL, got %q", c.ScrapeURL)
		}
		if c.ScrapeTimeout <= 0 {
			return fmt.Errorf("SOAK_MEMORY_SCRAPE_TIMEOUT: must be > 0, got %q", c.ScrapeTimeout)
		}
		if c.ScrapeMaxBytes <= 0 {
			return fmt.Errorf("SOAK_MEMORY_SCRAPE_MAX_BYTES: must be > 0, got %d", c.ScrapeMaxBytes)
		}
		for _, m := range []struct{ name, v string }{
			{"SOAK_MEMORY_SCRAPE_HEAP_METRIC", c.ScrapeHeapMetric},
			{"SOAK_MEMORY_SCRAPE_RSS_METRIC", c.ScrapeRSSMetric},
			{"SOAK_MEMORY_SCRAPE_START_METRIC", c.ScrapeStartMetric},
		} {
			if _, err := parseSelector(m.v); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		if c.ScrapeHeapMetric == "" && c.ScrapeRSSMetric == "" {
			return fmt.Errorf("SOAK_MEMORY_SCRAPE_HEAP_METRIC: it and SOAK_MEMORY_SCRAPE_RSS_METRIC are both empty")
		}
	}
	if slices.Contains(srcs, SourceProcfs) {
		if c.PID < 0 {
			return fmt.Errorf("SOAK_MEMORY_PID: must be >= 0, got %d", c.PID)
		}
		if c.PID == 0 && c.ProcessMatch == "" {
			return fmt.Errorf("SOAK_MEMORY_PID: it or SOAK_MEMORY_PROCESS_MATCH is required when SOAK_MEMORY_SOURCES includes procfs")
		}
		if c.ProcessMatch != "" {
			if _, err := regexp.Compile(c.ProcessMatch); err != nil {
				return fmt.Errorf("SOAK_MEMORY_PROCESS_MATCH: %w", err)
			}
		}
	}
	if (slices.Contains(srcs, SourceProcfs) || slices.Contains(srcs, SourceSelf)) && c.ProcfsPath == "" {
		return fmt.Errorf("SOAK_MEMORY_PROCFS_PATH: must not be empty")
	}
	if c.LimitBytes < 0 {
		return fmt.Errorf("SOAK_MEMORY_LIMIT_BYTES: must be >= 0, got %d", c.LimitBytes)
	}
	if c.HeapLimitBytes < 0 {
		return fmt.Errorf("SOAK_MEMORY_HEAP_LIMIT_BYTES: must be >= 0, got %d", c.HeapLimitBytes)
	}
	if c.EvaluateInterval <= 0 {
		return fmt.Errorf("SOAK_LEAK_EVALUATE_INTERVAL: must be > 0, got %q", c.EvaluateInterval)
	}
	if err := c.Detect().Validate(); err != nil {
		field, rest, _ := strings.Cut(err.Error(), ":")
		return fmt.Errorf("%s:%s", detectVar(field), rest)
	}
	return nil
}

// detectVar maps a detect.Config.Validate error (which names the Go field)
// to the environment variable.
func detectVar(field string) string {
	return map[string]string{
		"Windows":       "SOAK_LEAK_WINDOWS",
		"Bucket":        "SOAK_LEAK_BUCKET",
		"MaxBuckets":    "SOAK_LEAK_MAX_BUCKETS",
		"MinBuckets":    "SOAK_LEAK_MIN_BUCKETS",
		"Grace":         "SOAK_LEAK_GRACE",
		"WarmupShare":   "SOAK_LEAK_WARMUP_SHARE",
		"WarmupSE":      "SOAK_LEAK_WARMUP_SE",
		"WarmupMinAge":  "SOAK_LEAK_WARMUP_MIN_AGE",
		"PartialShare":  "SOAK_LEAK_PARTIAL_SHARE",
		"Alpha":         "SOAK_LEAK_P_VALUE",
		"MinGrowth":     "SOAK_LEAK_MIN_GROWTH",
		"MinGrowthFor":  "SOAK_LEAK_MIN_GROWTH_BY_WINDOW",
		"MinRate":       "SOAK_LEAK_MIN_RATE",
		"StepRatio":     "SOAK_LEAK_STEP_RATIO",
		"StepRamp":      "SOAK_LEAK_STEP_RAMP",
		"GuardSE":       "SOAK_LEAK_GUARD_SE",
		"RestartDrop":   "SOAK_LEAK_RESTART_DROP",
		"StepSigma":     "SOAK_LEAK_STEP_SIGMA",
		"FastShare":     "SOAK_LEAK_FAST_SHARE",
		"FastKeepShare": "SOAK_LEAK_FAST_KEEP_SHARE",
		"GuardMidShare": "SOAK_LEAK_GUARD_MID_SHARE",
		"HoldAfter":     "SOAK_LEAK_HOLD_AFTER",
		"HoldShare":     "SOAK_LEAK_HOLD_SHARE",
		"HoldAlpha":     "SOAK_LEAK_HOLD_P_VALUE",
		"ClearAfter":    "SOAK_LEAK_CLEAR_AFTER",
		"Cycle":         "SOAK_LEAK_CYCLE",
	}[field]
}
