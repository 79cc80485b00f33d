package heapsnap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Results of a capture, the values of the result label.
const (
	ResultOK       = "ok"
	ResultError    = "error"
	ResultTooLarge = "too_large"
)

// filePrefix starts the name of every file the Capturer writes; retention
// only ever deletes files with it.
const filePrefix = "heap-"

// topLogged is how many growers the log line carries.
const topLogged = 5

// topKept is how many growers the diff files and LastDiff carry.
const topKept = 50

// Option changes how NewCapturer builds a Capturer (mostly for tests).
type Option func(*capOptions)

type capOptions struct {
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	taker Taker
	http  HTTPDoer
}

// WithClock sets the clock that names captures and rate-limits them.
func WithClock(now func() time.Time) Option { return func(o *capOptions) { o.now = now } }

// WithAfter sets the timer used to wait between captures (time.After by
// default).
func WithAfter(f func(time.Duration) <-chan time.Time) Option {
	return func(o *capOptions) { o.after = f }
}

// WithTaker replaces the taker built from the configuration.
func WithTaker(t Taker) Option { return func(o *capOptions) { o.taker = t } }

// WithHTTPClient sets the HTTP client of the takers built from the
// configuration.
func WithHTTPClient(c HTTPDoer) Option { return func(o *capOptions) { o.http = c } }

// Capturer takes two captures of the target when a leak is first suspected,
// Interval apart, diffs them, and takes no more until every suspicion has
// cleared (and Cooldown has passed since the last first capture). Build it
// with NewCapturer, run it with Run, feed it with Suspected.
type Capturer struct {
	cfg   Config
	log   *zap.Logger
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	taker Taker
	wake  chan struct{}

	captures *prometheus.CounterVec
	written  prometheus.Counter
	last     prometheus.Gauge

	mu        sync.Mutex
	suspects  map[string]bool
	armed     bool      // a new suspicion may start an episode
	pending   bool      // an episode waits to start
	notBefore time.Time // earliest start of the pending episode
	lastStart time.Time
	lastDiff  *Diff

	onEpisode func() // tests: called after every episode
}

// NewCapturer builds a Capturer and registers its metrics on reg. cfg must
// be valid and enabled.
func NewCapturer(cfg Config, log *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Capturer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("SOAK_HEAP_SNAPSHOT: is off")
	}
	o := capOptions{now: time.Now, after: time.After, http: &http.Client{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.taker == nil {
		switch cfg.Mode {
		case ModeNode:
			o.taker = InspectorTaker{Addr: cfg.Inspector.Reveal(), Client: o.http}
		case ModeGo:
			o.taker = HTTPTaker{URL: cfg.URL, Client: o.http}
		case ModeURL:
			o.taker = HTTPTaker{URL: cfg.URL, Client: o.http, Extension: ".capture"}
		}
	}
	c := &Capturer{
		cfg: cfg, log: log.Named("heapsnap"), now: o.now, after: o.after, taker: o.taker,
		wake: make(chan struct{}, 1), suspects: map[string]bool{}, armed: true,
		captures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_heap_snapshot_captures_total",
			Help: "Heap captures of the target taken on a leak suspicion, by result (ok, error, too_large).",
		}, []string{"result"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "soak_heap_snapshot_bytes_total",
			Help: "Bytes of heap captures written to SOAK_HEAP_SNAPSHOT_DIR.",
		}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "soak_heap_snapshot_last_timestamp_seconds",
			Help: "Unix time of the last successful heap capture; 0 before the first.",
		}),
	}
	for _, r := range []string{ResultOK, ResultError, ResultTooLarge} {
		c.captures.WithLabelValues(r)
	}
	for _, col := range []prometheus.Collector{c.captures, c.written, c.last} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register heap snapshot metrics: %w", err)
		}
	}
	return c, nil
}

// Suspected records a change of leak verdict of one series, named
// "source/kind" (e.g. "scrape/heap") or "source". Series of sources not in
// SOAK_HEAP_SNAPSHOT_SOURCES are ignored. The first suspicion while none is
// held starts an episode. It never blocks.
func (c *Capturer) Suspected(source string, suspected bool, at time.Time) {
	src, _, _ := strings.Cut(source, "/")
	if !slices.Contains(c.cfg.Sources, src) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if suspected {
		c.suspects[source] = true
	} else {
		delete(c.suspects, source)
	}
	switch {
	case len(c.suspects) == 0:
		c.armed = true
	case c.armed && !c.pending:
		c.armed = false
		c.pending = true
		// The cooldown runs on the Capturer's clock from its last first
		// capture; at (the monitor's time) is only logged.
		c.notBefore = time.Time{}
		if !c.lastStart.IsZero() {
			c.notBefore = c.lastStart.Add(c.cfg.Cooldown)
		}
		c.log.Debug("leak suspected; heap captures scheduled", zap.String("source", source),
			zap.Time("suspected_at", at), zap.Time("not_before", c.notBefore))
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// LastDiff returns the diff of the last completed episode, nil before the
// first.
func (c *Capturer) LastDiff() *Diff {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastDiff == nil {
		return nil
	}
	d := *c.lastDiff
	d.Top = slices.Clone(d.Top)
	return &d
}

// Run waits for suspicions and takes the captures until ctx is done, then
// returns nil.
func (c *Capturer) Run(ctx context.Context) error {
	if err := os.MkdirAll(c.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("heap snapshot dir: %w", err)
	}
	// The timer is kept while its deadline stands: a wake that changes
	// nothing (another suspicion, a clear and a new one) must not start a
	// second timer for the same deadline.
	var timer <-chan time.Time
	var timerFor time.Time
	for {
		c.mu.Lock()
		pending, notBefore := c.pending, c.notBefore
		c.mu.Unlock()
		if !pending {
			timer = nil
		} else {
			if d := notBefore.Sub(c.now()); d > 0 {
				if timer == nil || !timerFor.Equal(notBefore) {
					timer, timerFor = c.after(d), notBefore
				}
			} else {
				timer = nil
				c.mu.Lock()
				c.pending = false
				c.lastStart = c.now()
				c.mu.Unlock()
				c.episode(ctx)
				if c.onEpisode != nil {
					c.onEpisode()
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		case <-timer:
			timer = nil
		}
	}
}

// episode takes the two captures and the diff.
func (c *Capturer) episode(ctx context.Context) {
	name := filePrefix + c.now().UTC().Format("20060102T150405Z")
	c.log.Info("leak suspected: taking heap captures", zap.String("mode", c.cfg.Mode),
		zap.String("episode", name), zap.Duration("interval", c.cfg.Interval))
	first, ok := c.capture(ctx, name, 1)
	if !ok {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-c.after(c.cfg.Interval):
	}
	second, ok := c.capture(ctx, name, 2)
	if !ok {
		return
	}
	d, err := DiffFiles(first, second, topKept)
	if err != nil {
		c.log.Warn("heap diff failed", zap.String("episode", name), zap.Error(err))
		return
	}
	d.Time = c.now()
	for ext, write := range map[string]func(*os.File) error{
		"-diff.json": func(f *os.File) error { return d.WriteJSON(f) },
		"-diff.txt":  func(f *os.File) error { return d.WriteText(f) },
	} {
		if err := writeFile(filepath.Join(c.cfg.Dir, name+ext), write); err != nil {
			c.log.Warn("heap diff not written", zap.String("episode", name), zap.Error(err))
		}
	}
	c.prune(name)
	c.mu.Lock()
	c.lastDiff = d
	c.mu.Unlock()
	c.log.Info("heap diff: top growers between the two captures", zap.String("episode", name),
		zap.String("format", d.Format), zap.Int64("bytes_added", d.BytesAdded), zap.Int64("count_added", d.CountAdded),
		zap.Strings("top", d.Lines(topLogged)))
}

func writeFile(path string, write func(*os.File) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// capture takes capture i of an episode into a file and returns its path.
func (c *Capturer) capture(ctx context.Context, episode string, i int) (string, bool) {
	path := filepath.Join(c.cfg.Dir, fmt.Sprintf("%s-%d%s", episode, i, c.taker.Ext()))
	partial := path + ".partial"
	room := c.cfg.MaxBytes - c.episodeBytes(episode)
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := c.now()
	var n int64
	err := writeFile(partial, func(f *os.File) error {
		var err error
		n, err = c.taker.Take(cctx, f, room)
		return err
	})
	if err == nil {
		err = os.Rename(partial, path)
	}
	if err != nil {
		_ = os.Remove(partial)
		result := ResultError
		if errors.Is(err, ErrTooLarge) {
			result = ResultTooLarge
		}
		c.captures.WithLabelValues(result).Inc()
		if ctx.Err() == nil {
			c.log.Warn("heap capture failed; no more until the leak verdict clears",
				zap.String("episode", episode), zap.Int("capture", i), zap.String("result", result), zap.Error(err))
		}
		return "", false
	}
	c.captures.WithLabelValues(ResultOK).Inc()
	c.written.Add(float64(n))
	c.last.Set(float64(c.now().UnixNano()) / 1e9)
	c.log.Info("heap capture written", zap.String("file", filepath.Base(path)), zap.Int64("bytes", n),
		zap.Duration("took", c.now().Sub(start)))
	c.prune(episode)
	return path, true
}

type fileInfo struct {
	name, episode string
	size          int64
}

// files lists the Capturer's files in Dir, oldest episode first.
func (c *Capturer) files() []fileInfo {
	ents, err := os.ReadDir(c.cfg.Dir)
	if err != nil {
		return nil
	}
	var out []fileInfo
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, filePrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		ep := n
		if i := strings.Index(n[len(filePrefix):], "-"); i >= 0 {
			ep = n[:len(filePrefix)+i]
		}
		out = append(out, fileInfo{name: n, episode: ep, size: info.Size()})
	}
	slices.SortStableFunc(out, func(a, b fileInfo) int { return strings.Compare(a.episode, b.episode) })
	return out
}

func (c *Capturer) episodeBytes(episode string) int64 {
	var n int64
	for _, f := range c.files() {
		if f.episode == episode {
			n += f.size
		}
	}
	return n
}

// prune deletes the oldest episodes other than current while more than
// Keep episodes are kept or their files exceed MaxBytes.
func (c *Capturer) prune(current string) {
	files := c.files()
	var total int64
	var episodes []string
	for _, f := range files {
		total += f.size
		if len(episodes) == 0 || episodes[len(episodes)-1] != f.episode {
			episodes = append(episodes, f.episode)
		}
	}
	kept := len(episodes)
	for _, ep := range episodes {
		if ep == current || (kept <= c.cfg.Keep && total <= c.cfg.MaxBytes) {
			continue
		}
		for _, f := range files {
			if f.episode != ep {
				continue
			}
			if err := os.Remove(filepath.Join(c.cfg.Dir, f.name)); err != nil {
				c.log.Warn("old heap capture not deleted", zap.String("file", f.name), zap.Error(err))
				continue
			}
			total -= f.size
		}
		kept--
	}
}
