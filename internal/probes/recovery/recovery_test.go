package recovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/probes/recovery"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want string
	}{
		{rate: 0}, {rate: 0.5}, {rate: 100},
		{rate: -1, want: "SOAK_RECOVERY_BREAK_RATE: must be in [0, 100] breaks per second, got -1"},
		{rate: 101, want: "SOAK_RECOVERY_BREAK_RATE: must be in [0, 100] breaks per second, got 101"},
	} {
		err := recovery.Config{BreakRate: tc.rate}.Validate()
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.want {
				t.Errorf("rate %v: %q, want %q", tc.rate, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("rate %v: no error, want %q", tc.rate, tc.want)
		}
	}
}

// soak runs an agent of 4 native clients with the recovery probe breaking
// transports at 20/s and the push probe on the fixture's broadcast ticks,
// against a real socket.io 4 server started with env, until cond holds.
func soak(t *testing.T, env []string, cond func(reg *prometheus.Registry) bool) *prometheus.Registry {
	t.Helper()
	node := testfixture.Start(t, testfixture.Options{Script: "variant.js", Env: append([]string{"TICK_MS=20"}, env...)})
	tc := target.Config{Driver: "native", TargetURL: node.URL(), SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}
	ts, err := tc.Targets()
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	// The defaults of every variable (no variable has this prefix).
	if err := envconfig.Process("SOAK_RECOVERY_TEST_DEFAULTS", &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.EventRate = 0 // echo off
	cfg.PoolConfig = pool.Config{Clients: 4, ConnectRate: 1000, ConnectTimeout: 5 * time.Second,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond}
	cfg.PushConfig.Event, cfg.PushConfig.SeqField = "tick", "seq"
	cfg.RecoveryConfig.BreakRate = 20
	reg := prometheus.NewRegistry()
	a, err := agent.New(cfg, agent.Options{Driver: native.New(native.Options{}), Targets: ts, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	soaktest.WaitWithin(t, "the recovery figures", 30*time.Second, func() bool { return cond(reg) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return reg
}

func result(t *testing.T, reg *prometheus.Registry, r string) float64 {
	return soaktest.Sum(t, reg, recovery.MetricReconnects, "result", r)
}

func TestRecoveryAgainstRealServers(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	t.Run("recovered", func(t *testing.T) {
		reg := soak(t, []string{"RECOVERY_MS=60000"}, func(reg *prometheus.Registry) bool {
			return result(t, reg, recovery.ResultRecovered) >= 20
		})
		if n := result(t, reg, recovery.ResultNotRecovered) + result(t, reg, recovery.ResultNotOffered); n != 0 {
			t.Errorf("%v reconnects not recovered by a server with recovery on", n)
		}
		// Away 100-200 ms with a tick every 20 ms: packets were missed, and
		// the server replayed them, so the push probe saw no gap.
		if n := soaktest.Sum(t, reg, recovery.MetricPackets); n < 20 {
			t.Errorf("%v packets replayed over 20 recovered reconnects, want >= 20", n)
		}
		if n := soaktest.Sum(t, reg, "soak_push_missed_total") + soaktest.Sum(t, reg, "soak_push_lost_total"); n != 0 {
			t.Errorf("push probe counted %v ticks missed or lost across recovered reconnects, want 0", n)
		}
		if n := soaktest.Sum(t, reg, "soak_disconnects_total", "reason", "client_break"); n < 20 {
			t.Errorf("disconnects{reason=client_break} = %v, want >= 20", n)
		}
		if problems, err := testutil.CollectAndLint(reg, recovery.MetricBreaks, recovery.MetricReconnects, recovery.MetricPackets); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
	})
	t.Run("session expired", func(t *testing.T) {
		// The session is kept 1 ms: every reconnect offers it, none recovers.
		reg := soak(t, []string{"RECOVERY_MS=1"}, func(reg *prometheus.Registry) bool {
			return result(t, reg, recovery.ResultNotRecovered) >= 10
		})
		if n := result(t, reg, recovery.ResultRecovered); n != 0 {
			t.Errorf("%v reconnects recovered an expired session", n)
		}
		if n := soaktest.Sum(t, reg, "soak_push_missed_total"); n == 0 {
			t.Error("push probe counted no missed ticks without recovery: the test cannot tell")
		}
	})
	t.Run("recovery off", func(t *testing.T) {
		reg := soak(t, nil, func(reg *prometheus.Registry) bool {
			return result(t, reg, recovery.ResultNotOffered) >= 10
		})
		if n := result(t, reg, recovery.ResultRecovered) + result(t, reg, recovery.ResultNotRecovered); n != 0 {
			t.Errorf("%v reconnects offered a session to a server without recovery", n)
		}
	})
}
