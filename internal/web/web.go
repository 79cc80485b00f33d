// Package web serves the agent's HTTP endpoints: /metrics, /-/healthy,
// /-/ready, a landing page with a one-screen summary, and optionally
// /debug/pprof. TLS and basic auth come from an exporter-toolkit web
// configuration file, as with other Prometheus exporters.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// Config is the HTTP side's configuration, read from SOAK_* variables.
type Config struct {
	ListenAddress string `envconfig:"LISTEN_ADDRESS" default:":9477" desc:"Address of /metrics, /-/healthy, /-/ready and the landing page."`
	WebConfigFile string `envconfig:"WEB_CONFIG_FILE" desc:"Path to an exporter-toolkit web configuration file (TLS, basic auth) for the agent's own endpoint."`
	EnablePprof   bool   `envconfig:"ENABLE_PPROF" default:"false" desc:"Serve /debug/pprof/ on the metrics port."`
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
		return fmt.Errorf("SOAK_LISTEN_ADDRESS: want host:port, got %q", c.ListenAddress)
	}
	if c.WebConfigFile != "" {
		if err := web.Validate(c.WebConfigFile); err != nil {
			return fmt.Errorf("SOAK_WEB_CONFIG_FILE: %w", err)
		}
	}
	return nil
}

// Options are the server's collaborators.
type Options struct {
	// Gatherer is what /metrics serves and the landing page summarises.
	Gatherer prometheus.Gatherer
	// Registerer receives the handler's own instrumentation (may be nil).
	Registerer prometheus.Registerer
	// Ready reports the agent's own readiness (never the target's).
	Ready func() bool
	// Page describes the landing page's static parts.
	Page Page
	// Notes returns per-target notes (last errors) for the landing page.
	Notes func() []Note
	// Health gives the recent (last minute, last ten minutes) figures per
	// target; the page shows only totals without it.
	Health HealthView
	// Memory gives the memory and leak section (may be nil).
	Memory MemoryView
	// HeapDiff, if set, gives the lines of the last heap-capture diff (what
	// grew while a leak was suspected), shown in the memory section.
	HeapDiff func() []string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is the agent's HTTP server.
type Server struct {
	cfg  Config
	log  *zap.Logger
	srv  *http.Server
	opts Options
}

// New builds the server and its routes.
func New(cfg Config, log *zap.Logger, o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{cfg: cfg, log: log, opts: o}
	mux := http.NewServeMux()
	var h http.Handler = promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
		ErrorLog:          zap.NewStdLog(log.Named("promhttp")),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
		Registry:          o.Registerer,
	})
	if o.Registerer != nil {
		h = promhttp.InstrumentMetricHandler(o.Registerer, h)
	}
	mux.Handle("/metrics", h)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Healthy.\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil && !o.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("Not ready.\n"))
			return
		}
		_, _ = w.Write([]byte("Ready.\n"))
	})
	if cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", s.landing())
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return s
}

// Handler returns the routes, for tests.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Listen opens the listening socket, so that a port in use stops the
// program at start.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("SOAK_LISTEN_ADDRESS: %w", err)
	}
	return ln, nil
}

// Run serves on ln until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	systemd := false
	file := s.cfg.WebConfigFile
	flags := &web.FlagConfig{WebSystemdSocket: &systemd, WebConfigFile: &file}
	slogger := slog.New(zapslog.NewHandler(s.log.Core(), zapslog.WithName("exporter-toolkit")))
	errc := make(chan error, 1)
	go func() { errc <- web.Serve(ln, s.srv, flags, slogger) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutdown http: %w", err)
	}
	return nil
}
