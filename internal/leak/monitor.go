package leak

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Ticker is the part of *time.Ticker the monitor uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Option changes how New builds a Monitor (mostly for tests).
type Option func(*options)

type options struct {
	now       func() time.Time
	newTicker func(time.Duration) Ticker
	client    HTTPDoer
	samplers  []Sampler
	onVerdict func(source string, kind Kind, suspected bool, at time.Time)
	onChange  func(source, kind string, suspected bool, at time.Time)
}

// WithOnChange sets a callback called once per transition of a series' held
// verdict (detect.Report.Suspected), never per evaluation: suspected is the
// new state, at the evaluation time. It runs synchronously in Evaluate with
// no lock held, so it must return quickly (hand slow work such as a heap
// snapshot to a goroutine its owner waits for).
func WithOnChange(f func(source, kind string, suspected bool, at time.Time)) Option {
	return func(o *options) { o.onChange = f }
}

// WithClock sets the clock used to timestamp samples and schedule
// evaluations.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithTicker sets the factory of the sampling ticker.
func WithTicker(f func(time.Duration) Ticker) Option { return func(o *options) { o.newTicker = f } }

// WithHTTPClient sets the client of the scrape source.
func WithHTTPClient(c HTTPDoer) Option { return func(o *options) { o.client = c } }

// WithSamplers replaces the sources built from the configuration.
func WithSamplers(s ...Sampler) Option { return func(o *options) { o.samplers = s } }

// WithVerdictFunc sets a function called, under the monitor's lock (it
// must not block or call back), whenever a series' leak verdict changes.
func WithVerdictFunc(f func(source string, kind Kind, suspected bool, at time.Time)) Option {
	return func(o *options) { o.onVerdict = f }
}

// BuildSamplers builds the sources named by cfg.ResolvedSources. cfg must be
// valid.
func BuildSamplers(cfg Config, client HTTPDoer, now func() time.Time) ([]Sampler, error) {
	var out []Sampler
	for _, src := range cfg.ResolvedSources() {
		switch src {
		case SourceScrape:
			s, err := NewScrape(ScrapeConfig{
				URL: cfg.ScrapeURL, Timeout: min(cfg.ScrapeTimeout, cfg.Interval), MaxBytes: cfg.ScrapeMaxBytes,
				Heap: cfg.ScrapeHeapMetric, RSS: cfg.ScrapeRSSMetric, Start: cfg.ScrapeStartMetric,
			}, client, now)
			if err != nil {
				return nil, fmt.Errorf("memory source scrape: %w", err)
			}
			out = append(out, s)
		case SourceProcfs:
			pc := ProcfsConfig{ProcPath: cfg.ProcfsPath, CgroupPath: cfg.CgroupPath, PID: cfg.PID}
			if cfg.ProcessMatch != "" {
				pc.Match = regexp.MustCompile(cfg.ProcessMatch)
			}
			s, err := NewProcfs(pc, now)
			if err != nil {
				return nil, fmt.Errorf("memory source procfs: %w", err)
			}
			out = append(out, s)
		case SourceRedis:
			s, err := NewRedis(RedisConfig{URL: cfg.RedisURL, PasswordFile: cfg.RedisPasswordFile, Timeout: min(cfg.ScrapeTimeout, cfg.Interval)}, now)
			if err != nil {
				return nil, fmt.Errorf("memory source redis: %w", err)
			}
			out = append(out, s)
		case SourceSelf:
			s, err := NewSelf(cfg.ProcfsPath, cfg.CgroupPath, now)
			if err != nil {
				return nil, fmt.Errorf("memory source self: %w", err)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

type seriesKey struct {
	source string
	kind   Kind
}

type series struct {
	key     seriesKey
	det     *detect.Detector
	last    float64 // last value, bytes
	limit   float64 // limit in force, 0 when unknown
	report  detect.Report
	suspect bool
}

// SeriesReport is the latest evaluation of one series.
type SeriesReport struct {
	Source string
	Kind   Kind
	// Bytes is the last sampled value; Limit the limit in force (0: none).
	Bytes, Limit float64
	Report       detect.Report
}

// Monitor samples memory from its sources every interval, feeds one
// detector per series (source, kind), evaluates them on a schedule and
// exports the results as metrics. Build it with New and run it with Run.
type Monitor struct {
	cfg       Config
	dcfg      detect.Config
	log       *zap.Logger
	now       func() time.Time
	newTicker func(time.Duration) Ticker
	samplers  []Sampler
	onChange  func(source, kind string, suspected bool, at time.Time)
	errors    *prometheus.CounterVec
	onVerdict func(source string, kind Kind, suspected bool, at time.Time)

	mu       sync.Mutex
	series   map[seriesKey]*series
	order    []seriesKey
	lastEval time.Time
	failing  map[string]bool
}

// New builds a Monitor and registers its metrics on reg. cfg must be valid
// (Validate).
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{
		now:       time.Now,
		newTicker: func(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} },
		client:    &http.Client{},
	}
	for _, opt := range opts {
		opt(&o)
	}
	samplers := o.samplers
	if samplers == nil {
		var err error
		if samplers, err = BuildSamplers(cfg, o.client, o.now); err != nil {
			return nil, err
		}
	}
	m := &Monitor{
		cfg: cfg, dcfg: cfg.Detect(), log: log.Named("leak"), now: o.now, newTicker: o.newTicker,
		samplers: samplers, onChange: o.onChange, onVerdict: o.onVerdict, series: map[seriesKey]*series{}, failing: map[string]bool{},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_memory_sample_errors_total",
			Help: "Failed or partial memory samples, by source.",
		}, []string{"source"}),
	}
	if _, err := detect.New(m.dcfg); err != nil {
		return nil, err
	}
	for _, s := range samplers {
		m.errors.WithLabelValues(s.Source())
	}
	if err := reg.Register(m.errors); err != nil {
		return nil, fmt.Errorf("register memory metrics: %w", err)
	}
	if err := reg.Register(&collector{m: m}); err != nil {
		return nil, fmt.Errorf("register leak metrics: %w", err)
	}
	for _, s := range samplers {
		if sc, ok := s.(*Scrape); ok {
			if err := reg.Register(sc.Vitals()); err != nil {
				return nil, fmt.Errorf("register target vitals: %w", err)
			}
		}
	}
	return m, nil
}

// Run samples every interval until ctx is done, then returns nil. The first
// sample is taken at once.
func (m *Monitor) Run(ctx context.Context) error {
	t := m.newTicker(m.cfg.Interval)
	defer t.Stop()
	defer m.closeSamplers()
	m.log.Info("memory sampling started", zap.Duration("interval", m.cfg.Interval),
		zap.Strings("sources", m.sourceNames()), zap.Durations("windows", m.dcfg.Windows))
	for {
		m.Tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// closeSamplers closes the sources that hold connections (redis).
func (m *Monitor) closeSamplers() {
	for _, s := range m.samplers {
		if c, ok := s.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
}

func (m *Monitor) sourceNames() []string {
	out := make([]string, len(m.samplers))
	for i, s := range m.samplers {
		out[i] = s.Source()
	}
	return out
}

// Tick samples every source once and evaluates the detectors when
// EvaluateInterval has passed since the last evaluation. Run calls it on
// every tick; one-shot callers may call it directly.
func (m *Monitor) Tick(ctx context.Context) {
	for _, s := range m.samplers {
		sctx, cancel := context.WithTimeout(ctx, m.cfg.Interval)
		smp, err := s.Sample(sctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.record(s.Source(), smp, err)
	}
	now := m.now()
	m.mu.Lock()
	due := m.lastEval.IsZero() || now.Sub(m.lastEval) >= m.cfg.EvaluateInterval
	m.mu.Unlock()
	if due {
		m.Evaluate(now)
	}
}

func (m *Monitor) record(source string, s Sample, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.errors.WithLabelValues(source).Inc()
		if !m.failing[source] {
			m.log.Warn("memory sample failed; retrying every interval", zap.String("source", source), zap.Error(err))
		} else {
			m.log.Debug("memory sample failed", zap.String("source", source), zap.Error(err))
		}
		m.failing[source] = true
	} else if m.failing[source] {
		m.log.Info("memory sampling recovered", zap.String("source", source))
		m.failing[source] = false
	}
	for _, r := range s.Readings {
		k := seriesKey{source, r.Kind}
		se := m.series[k]
		if se == nil {
			det, derr := detect.New(m.dcfg)
			if derr != nil { // validated in New
				continue
			}
			se = &series{key: k, det: det}
			m.series[k] = se
			m.order = append(m.order, k)
			slices.SortFunc(m.order, func(a, b seriesKey) int {
				if a.source != b.source {
					return compare(a.source, b.source)
				}
				return compare(string(a.kind), string(b.kind))
			})
		}
		if aerr := se.det.Add(detect.Point{Time: s.Time, Bytes: r.Bytes, Start: s.StartTime}); aerr != nil {
			m.log.Debug("memory sample dropped", zap.String("source", source), zap.String("kind", string(r.Kind)), zap.Error(aerr))
			continue
		}
		se.last = r.Bytes
		se.limit = m.limitFor(source, r)
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// limitFor returns the limit that applies to a reading: configured limits
// for the target's sources, else what the source discovered.
func (m *Monitor) limitFor(source string, r Reading) float64 {
	if source != SourceSelf {
		if r.Kind == KindHeap && m.cfg.HeapLimitBytes > 0 {
			return float64(m.cfg.HeapLimitBytes)
		}
		if m.cfg.LimitBytes > 0 {
			return float64(m.cfg.LimitBytes)
		}
	}
	return r.Limit
}

// Evaluate recomputes every series' figures as of now, logs changes of the
// held verdict and reports them to the WithOnChange callback. Tick calls it
// on schedule.
func (m *Monitor) Evaluate(now time.Time) {
	type change struct {
		source, kind string
		suspected    bool
	}
	var changes []change
	defer func() {
		if m.onChange == nil {
			return
		}
		for _, c := range changes {
			m.onChange(c.source, c.kind, c.suspected, now)
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastEval = now
	for _, k := range m.order {
		se := m.series[k]
		prev := se.report
		se.report = se.det.Evaluate(now, se.limit)
		if se.report.Restarts > prev.Restarts {
			m.log.Info("target restart detected; leak windows start afresh",
				zap.String("source", k.source), zap.String("kind", string(k.kind)))
		}
		suspect := se.report.Suspected
		if suspect != se.suspect {
			changes = append(changes, change{k.source, string(k.kind), suspect})
			fields := []zap.Field{zap.String("source", k.source), zap.String("kind", string(k.kind)), zap.String("reason", se.report.Reason)}
			if suspect {
				m.log.Warn("memory leak suspected", fields...)
			} else {
				m.log.Info("memory leak no longer suspected", fields...)
			}
			se.suspect = suspect
			if m.onVerdict != nil {
				m.onVerdict(k.source, k.kind, suspect, now)
			}
		}
	}
}

// Reports returns the latest evaluation of every series, ordered by source
// and kind.
func (m *Monitor) Reports() []SeriesReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]SeriesReport, 0, len(m.order))
	for _, k := range m.order {
		se := m.series[k]
		out = append(out, SeriesReport{Source: k.source, Kind: k.kind, Bytes: se.last, Limit: se.limit, Report: se.report})
	}
	return out
}
