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

// BenchmarkEchoCPUPerEvent is the agent's CPU per acked echo event with an
// in-memory driver (no network, no server): the pool, its stream and send
// workers, the tracker and the metrics, i.e. what the probe architecture
// itself costs. 200 clients at 20,000 events/s for 4 s; CPU from getrusage.
func BenchmarkEchoCPUPerEvent(b *testing.B) {
	for b.Loop() {
		reg := prometheus.NewRegistry()
		cfg := testConfig()
		cfg.PoolConfig = pool.Config{Clients: 200, ConnectRate: 100000, ConnectTimeout: time.Second,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
		cfg.EventRate, cfg.PayloadBytes, cfg.AckTimeout = 20000, 64, time.Second
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
		a0 := soaktest.Sum(b, reg, "soak_events_acked_total")
		c0 := cpuNow()
		time.Sleep(4 * time.Second) // benchmark: the measured steady phase
		c1 := cpuNow()
		a1 := soaktest.Sum(b, reg, "soak_events_acked_total")
		cancel()
		<-done
		b.ReportMetric(float64(c1-c0)/(a1-a0), "cpu-ns/event")
	}
}

// BenchmarkScenarioStepCPU is BenchmarkEchoCPUPerEvent for a scenario of
// one flow of one acked step, the echo probe off: the agent's CPU per
// answered step, to compare with an echo event's in the same run.
func BenchmarkScenarioStepCPU(b *testing.B) {
	file := filepath.Join(b.TempDir(), "one-step.yaml")
	if err := os.WriteFile(file, []byte("rate: 20000\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: echo\n        payload: '{\"seq\": {{seq}}}'\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		reg := prometheus.NewRegistry()
		cfg := testConfig()
		cfg.PoolConfig = pool.Config{Clients: 200, ConnectRate: 100000, ConnectTimeout: time.Second,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
		cfg.EventRate = 0
		cfg.ScenarioConfig.File = file
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
		a0 := soaktest.Sum(b, reg, "soak_scenario_steps_answered_total")
		c0 := cpuNow()
		time.Sleep(4 * time.Second) // benchmark: the measured steady phase
		c1 := cpuNow()
		a1 := soaktest.Sum(b, reg, "soak_scenario_steps_answered_total")
		cancel()
		<-done
		b.ReportMetric(float64(c1-c0)/(a1-a0), "cpu-ns/event")
	}
}
