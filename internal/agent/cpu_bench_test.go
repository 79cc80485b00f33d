package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerAnswer runs the agent with cfg (200 clients on the in-memory
// driver) for 4 s after a warm-up and reports its CPU per answer counted in
// metric, from getrusage.
func cpuPerAnswer(b *testing.B, cfg agent.Config, metric string) {
	b.Helper()
	for b.Loop() {
		reg := prometheus.NewRegistry()
		cfg.PoolConfig = pool.Config{Clients: 200, ConnectRate: 100000, ConnectTimeout: time.Second,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
		a, err := agent.New(cfg, agent.Options{Driver: soaktest.NewMemDriver(), Targets: targets("t1"), Registerer: reg, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		for a.Connected() < 200 {
			time.Sleep(time.Millisecond) // benchmark: waiting for real goroutines
		}
		time.Sleep(500 * time.Millisecond) // benchmark: warm-up
		a0 := soaktest.Sum(b, reg, metric)
		c0 := cpuNow()
		time.Sleep(4 * time.Second) // benchmark: the measured steady phase
		c1 := cpuNow()
		a1 := soaktest.Sum(b, reg, metric)
		cancel()
		<-done
		b.ReportMetric(float64(c1-c0)/(a1-a0), "cpu-ns/event")
	}
}

// BenchmarkEchoCPUPerEvent is the agent's CPU per acked echo event with an
// in-memory driver (no network, no server): the pool, its stream and send
// workers, the tracker and the metrics, i.e. what the probe architecture
// itself costs. 200 clients at 20,000 events/s.
func BenchmarkEchoCPUPerEvent(b *testing.B) {
	cfg := testConfig()
	cfg.EventRate, cfg.PayloadBytes, cfg.AckTimeout = 20000, 64, time.Second
	cpuPerAnswer(b, cfg, "soak_events_acked_total")
}

// BenchmarkScenarioStepCPU is the same for a scenario of one flow of one
// acked step, the echo probe off: compare with an echo event in the same
// run (issue: a step costs at most 1.3x an echo event).
func BenchmarkScenarioStepCPU(b *testing.B) {
	file := filepath.Join(b.TempDir(), "one-step.yaml")
	if err := os.WriteFile(file, []byte("rate: 20000\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: echo\n        payload: '{\"seq\": {{seq}}}'\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.EventRate = 0
	cfg.ScenarioConfig.File = file
	cpuPerAnswer(b, cfg, "soak_scenario_steps_answered_total")
}
