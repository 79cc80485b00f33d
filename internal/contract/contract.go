// Package contract derives the agent's metric contract (every metric family
// the agent can export, and which are histograms) from the registry the agent
// itself builds, with every probe enabled, so that the alert rules, the
// dashboard and the docs are checked against what the code registers rather
// than against a hand-kept list.
package contract

import (
	"context"
	"errors"
	"net/url"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/heapsnap"
	"github.com/generic-corp/soak-exporter/internal/leak"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
)

// Family is one metric family of the contract.
type Family struct {
	// Name is the family's name (without histogram suffixes).
	Name string
	// Histogram tells whether its classic series carry _bucket, _sum and
	// _count suffixes.
	Histogram bool
}

// Families returns the agent's metric families, sorted by name: the pools',
// every probe's, the leak monitor's (with the target vitals of the scrape
// source), the heap capturer's and the build info, as registered by
// the same constructors the daemon calls. The agent's go_* and process_*
// metrics are left out.
func Families() ([]Family, error) {
	reg := prometheus.NewRegistry()
	rec := &recorder{Registerer: reg}
	rec.MustRegister(versioncollector.NewCollector("soak"))
	var cfg agent.Config
	cfg.PoolConfig = pool.Config{Clients: 2, ConnectRate: 1, ConnectTimeout: time.Second, BackoffMin: time.Second, BackoffMax: time.Second}
	cfg.EchoConfig.EventName, cfg.EchoConfig.EventRate, cfg.EchoConfig.PayloadBytes, cfg.EchoConfig.AckTimeout = "echo", 1, 64, time.Second
	cfg.PushConfig.Event, cfg.PushConfig.SeqField = "tick", "seq"
	cfg.FanoutConfig.Event, cfg.FanoutConfig.Rate, cfg.FanoutConfig.Timeout, cfg.FanoutConfig.IDField = "publish", 1, time.Second, "id"
	cfg.FanoutConfig.JoinEvent = "join"
	cfg.RecoveryConfig.BreakRate = 1
	// The scenario probe reads a file; its metrics do not depend on it.
	f, err := os.CreateTemp("", "soak-contract-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString("rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n"); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	cfg.ScenarioConfig.File = f.Name()
	u, _ := url.Parse("http://127.0.0.1:1")
	targets := []*probe.Target{{Name: "a", URL: u, Path: "/socket.io/", Namespace: "/"}, {Name: "b", URL: u, Path: "/socket.io/", Namespace: "/"}}
	if _, err := agent.New(cfg, agent.Options{Driver: noDriver{}, Targets: targets, Registerer: rec}); err != nil {
		return nil, err
	}
	lc := leak.DefaultConfig()
	lc.ScrapeURL = "http://127.0.0.1:1/metrics" // the scrape source adds the target vitals
	if _, err := leak.New(lc, zap.NewNop(), rec); err != nil {
		return nil, err
	}
	hc := heapsnap.DefaultConfig()
	hc.Mode, hc.URL = heapsnap.ModeGo, "http://127.0.0.1:1/debug/pprof/heap"
	if _, err := heapsnap.NewCapturer(hc, zap.NewNop(), rec); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	hist := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			hist[mf.GetName()] = true
		}
	}
	var out []Family
	for _, n := range rec.names {
		if !slices.ContainsFunc(out, func(f Family) bool { return f.Name == n }) {
			out = append(out, Family{Name: n, Histogram: hist[n]})
		}
	}
	slices.SortFunc(out, func(a, b Family) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// recorder is a Registerer that notes the name of every descriptor it
// registers, so that families without series yet are listed too.
type recorder struct {
	prometheus.Registerer
	names []string
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// noDriver dials nothing: the contract needs the agent built, not run.
type noDriver struct{}

func (noDriver) Name() string { return "none" }
func (noDriver) Dial(context.Context, *probe.Target, probe.Handlers) (probe.Conn, error) {
	return nil, errors.New("contract: no driver")
}
