package oneshot

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak"
	"github.com/generic-corp/soak-exporter/internal/probe"
)

// MemoryConfig is the leak package's configuration: the memory sources
// (SOAK_MEMORY_*) and the detector's tuning (SOAK_LEAK_*), of which
// leaktest uses the thresholds but not the windows, bucket and grace.
type MemoryConfig = leak.Config

// memReading is one reading of the target's memory; NaN marks a series the
// source did not report. Start is the process start time (Unix seconds),
// 0 when unknown. Warning explains a series missing from an otherwise good
// reading.
type memReading struct {
	Heap, RSS, Start float64
	Warning          string
}

// memSource is what leaktest needs of one of the leak package's samplers.
type memSource interface {
	// Read samples once. It fails only when nothing could be read.
	Read(ctx context.Context) (memReading, error)
	// Describe names the source for the report, e.g. "scrape http://h/metrics".
	Describe() string
	// Guessed tells whether no variable named the source (the target's
	// /metrics was tried).
	Guessed() bool
	// Close releases idle connections.
	Close()
}

// samplerSource adapts a leak.Sampler.
type samplerSource struct {
	s       leak.Sampler
	desc    string
	guessed bool
	close   func()
}

func (a *samplerSource) Read(ctx context.Context) (memReading, error) {
	smp, err := a.s.Sample(ctx)
	r := memReading{Heap: math.NaN(), RSS: math.NaN(), Start: smp.StartTime}
	for _, rd := range smp.Readings {
		switch rd.Kind {
		case leak.KindHeap:
			r.Heap = rd.Bytes
		case leak.KindRSS:
			r.RSS = rd.Bytes
		}
	}
	if math.IsNaN(r.Heap) && math.IsNaN(r.RSS) {
		if err == nil {
			err = errors.New("no heap or RSS reading")
		}
		return r, err
	}
	if err != nil {
		r.Warning = err.Error()
	}
	return r, nil
}

func (a *samplerSource) Describe() string { return a.desc }
func (a *samplerSource) Guessed() bool    { return a.guessed }
func (a *samplerSource) Close() {
	if a.close != nil {
		a.close()
	}
}

// openMemorySource picks the target's memory source: SOAK_MEMORY_SCRAPE_URL,
// else SOAK_MEMORY_PID / SOAK_MEMORY_PROCESS_MATCH (procfs), else a scrape
// of the target's own /metrics (guessed). SOAK_MEMORY_SOURCES, when set,
// restricts the choice. The source is built by the leak package as for the
// agent, its scrape timeout bounded by max(sampling, 1s).
func openMemorySource(cfg MemoryConfig, t *probe.Target, sampling time.Duration, now func() time.Time) (memSource, error) {
	wantScrape, wantProcfs := true, true
	if len(cfg.Sources) > 0 {
		srcs := cfg.ResolvedSources()
		wantScrape, wantProcfs = slices.Contains(srcs, leak.SourceScrape), slices.Contains(srcs, leak.SourceProcfs)
		if !wantScrape && !wantProcfs {
			return nil, fmt.Errorf("SOAK_MEMORY_SOURCES: leaktest reads the target's memory: want scrape or procfs, got %q (self is the agent's own memory)", cfg.Sources)
		}
	}
	guessed := false
	var desc string
	switch {
	case wantScrape && cfg.ScrapeURL != "":
		cfg.Sources = []string{leak.SourceScrape}
	case wantProcfs && (cfg.PID != 0 || cfg.ProcessMatch != ""):
		cfg.Sources = []string{leak.SourceProcfs}
	case wantScrape:
		cfg.ScrapeURL = guessMetricsURL(t)
		cfg.Sources = []string{leak.SourceScrape}
		guessed = true
	default:
		return nil, errors.New("SOAK_MEMORY_PID: set it or SOAK_MEMORY_PROCESS_MATCH to read the target's process (SOAK_MEMORY_SOURCES is procfs)")
	}
	switch {
	case cfg.Sources[0] == leak.SourceScrape:
		desc = "scrape " + cfg.ScrapeURL
	case cfg.PID != 0:
		desc = fmt.Sprintf("procfs pid %d (RSS)", cfg.PID)
	default:
		desc = fmt.Sprintf("procfs process matching %q (RSS)", cfg.ProcessMatch)
	}
	cfg.Interval = max(sampling, time.Second)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 1}
	samplers, err := leak.BuildSamplers(cfg, &http.Client{Transport: tr}, now)
	if err != nil {
		return nil, err
	}
	return &samplerSource{s: samplers[0], desc: desc, guessed: guessed, close: tr.CloseIdleConnections}, nil
}

// guessMetricsURL is the target's base URL with /metrics, in http(s).
func guessMetricsURL(t *probe.Target) string {
	u := *t.URL
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "/metrics", "", "", ""
	return u.String()
}

// memorySourceHelp explains a failed first read.
func memorySourceHelp(src memSource, err error) string {
	s := fmt.Sprintf("cannot read the target's memory from %s: %v\n  ", src.Describe(), err)
	if src.Guessed() {
		s += "No memory source is configured, so the target's own /metrics was tried. "
	}
	return s + "Set SOAK_MEMORY_SCRAPE_URL to the target's Prometheus endpoint (e.g. http://host:3000/metrics with prom-client's default metrics), " +
		"or SOAK_MEMORY_PID (a process id) or SOAK_MEMORY_PROCESS_MATCH (a regular expression matched against command lines) for a process on this host."
}
