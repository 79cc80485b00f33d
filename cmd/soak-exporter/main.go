// Command soak-exporter keeps a pool of real Socket.IO clients connected to a
// service forever, probes it with acked echo events, samples its memory, and
// exports what it sees as Prometheus metrics. With no target configured it
// soaks a built-in demo server. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/buildinfo"
	"github.com/generic-corp/soak-exporter/internal/demo"
	"github.com/generic-corp/soak-exporter/internal/envcheck"
	"github.com/generic-corp/soak-exporter/internal/health"
	"github.com/generic-corp/soak-exporter/internal/heapsnap"
	"github.com/generic-corp/soak-exporter/internal/leak"
	"github.com/generic-corp/soak-exporter/internal/leak/analyze"
	"github.com/generic-corp/soak-exporter/internal/leak/detect"
	"github.com/generic-corp/soak-exporter/internal/logging"
	"github.com/generic-corp/soak-exporter/internal/oneshot"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/probe/zishang"
	"github.com/generic-corp/soak-exporter/internal/selfmem"
	"github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/web"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Aliases give the embedded configurations distinct field names.
type (
	TargetConfig  = target.Config
	AgentConfig   = agent.Config
	WebConfig     = web.Config
	HealthConfig  = health.Config
	LoggingConfig = logging.Config
	LeakConfig    = leak.Config
	HeapConfig    = heapsnap.Config
)

// config is every package's Config, embedded so that their variables keep
// the plain SOAK_ prefix. main reads it once with envconfig.
type config struct {
	TargetConfig
	AgentConfig
	WebConfig
	HealthConfig
	LoggingConfig
	LeakConfig
	HeapConfig

	targets []*probe.Target // built from TargetConfig by loadConfig
}

func (c *config) validate() error {
	for _, v := range []interface{ Validate() error }{c.LoggingConfig, c.TargetConfig, c.AgentConfig, c.LeakConfig, c.HeapConfig, c.WebConfig, c.HealthConfig} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// loadConfig reads and validates the configuration. Its error is one line
// that names the variable.
func loadConfig() (*config, error) {
	var c config
	if err := envconfig.Process("soak", &c); err != nil {
		return nil, errors.New(envcheck.ParseError(err))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	targets, err := c.TargetConfig.Targets() // reads the token and CA files
	if err != nil {
		return nil, err
	}
	c.targets = targets
	return &c, nil
}

const usageHeader = `soak-exporter: keeps a pool of Socket.IO clients connected to a service
forever, probes it, samples its memory, and exports Prometheus metrics.

Usage:
  soak-exporter                 run the agent (configured by the SOAK_ variables below;
                                with no SOAK_TARGET_URL it soaks a built-in demo target)
  soak-exporter loadtest [flags] [server_url] [connections] [event_rate] [duration] [warmup]
  soak-exporter leaktest [flags] [server_url] [duration_minutes] [sampling_seconds] [activity_rate]
                                one-shot CI runs with the old suite's pass criteria
                                (exit 0 pass, 1 a criterion failed, 2 bad usage or target
                                unreachable; each has --help; see docs/ci-mode.md)
  soak-exporter leak analyze [--json] FILE
                                run the leak detector over recorded memory samples
  soak-exporter heap diff [--json] [--top N] BEFORE AFTER
                                what grew between two heap captures (V8 .heapsnapshot or
                                pprof heap profiles; exit 2 on bad input)
  soak-exporter --help | --version

Exit status: 0 clean shutdown, 1 runtime failure, 2 bad usage or configuration.
SIGTERM and SIGINT stop the agent cleanly; SIGHUP is logged and ignored (the
configuration is the environment, which a running process cannot reread:
restart to apply a change).

Durations take a Go duration (500ms, 5s, 1h30m) or a number of seconds (5, 0.5).
A SOAK_ variable that is not listed below is warned about at start, with the
closest known name; its value is never printed.

Environment variables:
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHeader)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var c config
	format := "{{range .}}  {{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"
	if err := envconfig.Usagef("soak", &c, tw, format); err != nil {
		fmt.Fprintf(w, "cannot list variables: %v\n", err)
	}
	_ = tw.Flush()
}

// knownVars lists every SOAK_ variable a Config of the agent or of the
// one-shot mode declares, from the structs envconfig reads.
func knownVars() ([]envcheck.Var, error) {
	return envcheck.Vars("soak", append([]any{&config{}}, oneshot.EnvSpecs()...)...)
}

// prepareEnv gives every duration variable the one syntax (Go duration or
// seconds) and returns the unknown SOAK_ variables of the environment.
func prepareEnv() ([]envcheck.Unknown, error) {
	vars, err := knownVars()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if err := envcheck.NormalizeDurations(vars, os.LookupEnv, os.Setenv); err != nil {
		return nil, err
	}
	return envcheck.FindUnknown("soak", os.Environ(), vars), nil
}

func run(args []string, stdout, stderr io.Writer) int {
	buildinfo.Stamp() // first: everything below may print the version
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "-help", "help":
			usage(stdout)
			return exitOK
		case "heap":
			if len(args) < 2 || args[1] != "diff" {
				fmt.Fprintln(stderr, "soak-exporter: usage: soak-exporter heap diff [--json] [--top N] BEFORE AFTER")
				return exitUsage
			}
			return heapsnap.DiffMain(args[2:], stdout, stderr)
		case "leak":
			if len(args) < 2 || args[1] != "analyze" {
				fmt.Fprintln(stderr, "soak-exporter: usage: soak-exporter leak analyze [--json] FILE")
				return exitUsage
			}
			return analyze.AnalyzeMain(args[2:], stdout, stderr)
		case "loadtest", "leaktest":
			unknown, err := prepareEnv()
			if err != nil {
				fmt.Fprintf(stderr, "soak-exporter %s: %v\n", args[0], err)
				return exitUsage
			}
			for _, u := range unknown {
				fmt.Fprintf(stderr, "soak-exporter %s: warning: %s\n", args[0], u)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return oneshot.Main(ctx, args[0], args[1:], oneshot.Deps{NewDriver: newDriver, Version: version.Version}, stdout, stderr)
		case "--version", "-version", "version":
			fmt.Fprintln(stdout, version.Print("soak-exporter"))
			return exitOK
		default:
			fmt.Fprintf(stderr, "soak-exporter: unknown command %q (see --help)\n", args[0])
			return exitUsage
		}
	}
	// Caught from the start: SIGHUP's default action would kill the agent
	// without a clean disconnect.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	unknown, err := prepareEnv()
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter: %v\n", err)
		return exitUsage
	}
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter: %v\n", err)
		return exitUsage
	}
	log, err := logging.New(cfg.LoggingConfig, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	for _, u := range unknown {
		// The name only: the value of an unknown variable may be a secret.
		log.Warn(u.String(), zap.String("variable", u.Name), zap.String("did_you_mean", u.Closest))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runAgent(ctx, cfg, log, hup)
}

// ignoreHangups logs each SIGHUP until ctx ends. Prometheus exporters
// reload their configuration on SIGHUP; the agent's configuration is its
// environment, which cannot change in a running process, so there is
// nothing to reload: it says so and keeps running.
func ignoreHangups(ctx context.Context, hup <-chan os.Signal, log *zap.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP received: nothing reloaded, the configuration comes from environment variables, which cannot change in a running process; restart the agent to apply a change")
		}
	}
}

// newDriver selects the client driver.
func newDriver(c target.Config, log *zap.Logger) probe.Driver {
	if c.Driver == "zishang520" {
		return zishang.New(zishang.Options{Log: log.Named("zishang520")})
	}
	return native.New(native.Options{Logger: log.Named("native"), ReaderGoroutines: !c.EventLoop})
}

// runAgent wires the parts and runs them until ctx ends.
func runAgent(ctx context.Context, cfg *config, log *zap.Logger, hup <-chan os.Signal) int {
	log.Info("starting soak-exporter", zap.String("version", version.Info()), zap.String("build", version.BuildContext()))
	selfmem.SetLimit(log)
	targets := cfg.targets

	// The demo target outlives the pools so that they can disconnect cleanly.
	demoCtx, demoStop := context.WithCancel(context.WithoutCancel(ctx))
	defer demoStop()
	var demoGroup errgroup.Group
	defer func() { demoStop(); _ = demoGroup.Wait() }()
	mode := "configured targets"
	if len(targets) == 0 {
		srv := demo.New(log, demo.Options{})
		if err := srv.Listen(demoCtx, "127.0.0.1:0"); err != nil {
			log.Error("cannot start the built-in demo target", zap.Error(err))
			return exitFailure
		}
		demoGroup.Go(func() error { return srv.Run(demoCtx) })
		t, err := cfg.TargetConfig.Target(srv.URL())
		if err != nil {
			log.Error("demo target", zap.Error(err))
			return exitFailure
		}
		t.Name = "demo"
		t.Transports = []string{"websocket"} // the demo server speaks WebSocket only
		targets = []*probe.Target{t}
		mode = "built-in demo target at " + srv.URL()
		log.Info("SOAK_TARGET_URL is not set: soaking the built-in demo target (an in-process Socket.IO server that acks \"echo\"); set SOAK_TARGET_URL to soak your service",
			zap.String("demo_url", srv.URL()))
	}
	if cfg.TLSInsecure {
		log.Warn("SOAK_TLS_INSECURE_SKIP_VERIFY is set: the target's certificate is not verified")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("soak"),
	)
	driver := newDriver(cfg.TargetConfig, log)
	// The health window sees every outcome: the landing page's recent
	// figures and the state-change warnings come from it.
	var ag *agent.Agent
	hl := health.New(cfg.HealthConfig, health.Options{Logger: log.Named("health"),
		Pools: func() []health.PoolState { return poolStates(ag) }})
	ag, err := agent.New(cfg.AgentConfig, agent.Options{
		Driver: driver, Targets: targets, Registerer: reg, Logger: log, Observer: hl,
		ReleasePages: selfmem.ReleaseStartupPages,
	})
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return exitUsage
	}

	// Heap captures, when enabled, are taken when the leak verdict of one of
	// the target's memory series turns to suspected.
	var capturer *heapsnap.Capturer
	var leakOpts []leak.Option
	if cfg.HeapConfig.Enabled() {
		if capturer, err = heapsnap.NewCapturer(cfg.HeapConfig, log.Named("heap"), reg); err != nil {
			log.Error("bad configuration", zap.Error(err))
			return exitUsage
		}
		// The held verdict, not every evaluation's: a capture per suspicion.
		leakOpts = append(leakOpts, leak.WithOnChange(func(source, kind string, suspected bool, at time.Time) {
			capturer.Suspected(source+"/"+kind, suspected, at)
		}))
	}
	monitor, err := leak.New(cfg.LeakConfig, log, reg, leakOpts...)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return exitUsage
	}

	mem := web.NewMemoryHistory(func() []web.MemorySeries { return memorySeries(monitor) }, time.Minute, 360, nil, nil)
	srv := web.New(cfg.WebConfig, log.Named("web"), web.Options{
		Health: hl,
		Memory: mem,
		HeapDiff: func() []string {
			if capturer == nil {
				return nil
			}
			if d := capturer.LastDiff(); d != nil {
				return d.Lines(10)
			}
			return nil
		},
		Gatherer:   reg,
		Registerer: reg,
		Ready:      ag.Running,
		Page:       web.Page{Version: version.Version, Mode: mode, Driver: driver.Name()},
		Notes:      func() []web.Note { return notes(ag.Pools()) },
	})
	ln, err := srv.Listen()
	if err != nil {
		log.Error("cannot listen", zap.Error(err))
		return exitUsage
	}
	fields := []zap.Field{zap.String("address", ln.Addr().String()), zap.String("driver", driver.Name())}
	if nd, ok := driver.(*native.Driver); ok {
		// Which transport carries plain ws:// connections (SOAK_NATIVE_EVENT_LOOP).
		tr := "goroutine_per_connection"
		if nd.EventLoop() {
			tr = "event_loop"
		}
		fields = append(fields, zap.String("websocket_transport", tr))
	}
	log.Info("serving metrics", append(fields, zap.Int("clients", cfg.Clients), zap.Int("targets", len(targets)))...)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx, ln) })
	g.Go(func() error { return monitor.Run(gctx) })
	g.Go(func() error { return hl.Run(gctx) })
	g.Go(func() error { return mem.Run(gctx) })
	if capturer != nil {
		g.Go(func() error { return capturer.Run(gctx) })
	}
	g.Go(func() error { return ag.Run(gctx) })
	g.Go(func() error { ignoreHangups(gctx, hup, log); return nil })
	err = g.Wait()
	if err != nil {
		log.Error("stopped on error", zap.Error(err))
		return exitFailure
	}
	log.Info("stopped cleanly")
	return exitOK
}

func notes(pools []*pool.Pool) []web.Note {
	out := make([]web.Note, 0, len(pools))
	for _, p := range pools {
		n := web.Note{Target: p.Target().Name}
		if e := p.LastConnectError(); !e.Time.IsZero() {
			n.LastConnectError = e.Time.UTC().Format("15:04:05") + " " + e.Reason
			if e.Message != "" {
				n.LastConnectError += ": " + e.Message
			}
		}
		if e := p.LastDisconnect(); !e.Time.IsZero() {
			n.LastDisconnect = e.Time.UTC().Format("15:04:05") + " " + e.Reason
		}
		out = append(out, n)
	}
	return out
}

// poolStates is what the health window needs of the pools.
func poolStates(ag *agent.Agent) []health.PoolState {
	if ag == nil {
		return nil
	}
	pools := ag.Pools()
	out := make([]health.PoolState, 0, len(pools))
	for _, p := range pools {
		e := p.LastConnectError()
		out = append(out, health.PoolState{Target: p.Target().Name, Connected: p.Connected(), Desired: p.Desired(),
			LastConnectReason: e.Reason, LastConnectMessage: e.Message})
	}
	return out
}

// memorySeries adapts the leak monitor's reports to the landing page.
func memorySeries(m *leak.Monitor) []web.MemorySeries {
	reps := m.Reports()
	out := make([]web.MemorySeries, 0, len(reps))
	for _, r := range reps {
		s := web.MemorySeries{Source: r.Source, Kind: string(r.Kind), Bytes: r.Bytes, Limit: r.Limit,
			Slope: math.NaN(), Verdict: r.Report.Verdict.String(), Reason: r.Report.Reason,
			Suspected: r.Report.Verdict == detect.LeakSuspected}
		if d := r.Report.Deciding(); d.HasFloor {
			s.Slope = d.FloorSlope
		}
		out = append(out, s)
	}
	return out
}
