package faults

import (
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	poolpkg "github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestRestartThenKicksRefillLikeRealClients is a rolling deploy as the
// pool sees it: the target restarts (failed attempts back off up to the
// cap), then kicks every client ten times. With the reconnect policy of
// socket.io-client (the defaults of SOAK_BACKOFF_*), a connection that opens
// resets its slot's backoff, so the pool is back within the cap plus the
// connect time after the restart, and within base*(1+jitter) plus the
// connect time after every kick, however many came before. The flapping
// shows in soak_connections_short_lived_total.
func TestRestartThenKicksRefillLikeRealClients(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	const (
		clients = 100
		kicks   = 10
		// connectSlack is the connect time allowed beyond the backoff: 100
		// dials at SOAK_CONNECT_RATE=1000 (0.15 s at most) plus the
		// handshakes on a loaded 2-core machine under -race.
		connectSlack = 1500 * time.Millisecond
	)
	var pc poolpkg.Config
	// A prefix nobody sets: the envconfig defaults, i.e. what users get.
	if err := envconfig.Process("SOAK_FAULTS_DEFAULTS_ONLY", &pc); err != nil {
		t.Fatal(err)
	}
	if pc.BackoffMin != time.Second || pc.BackoffMax != 5*time.Second || pc.BackoffJitter != 0.5 {
		t.Fatalf("backoff defaults %v/%v/%v, want socket.io-client's 1s/5s/0.5", pc.BackoffMin, pc.BackoffMax, pc.BackoffJitter)
	}
	pc.Clients, pc.ConnectRate = clients, 1000
	node := testfixture.Start(t, testfixture.Options{})
	cfg := config()
	cfg.PoolConfig = pc
	cfg.EventRate = 100
	h := startPool(t, cfg, target(t, node.URL(), 1<<20))
	soaktest.WaitWithin(t, "all connected", 20*time.Second, func() bool { return h.p.Connected() == clients })

	node.Restart()
	restarted := time.Now()
	limit := pc.BackoffMax + connectSlack
	soaktest.WaitWithin(t, "refill after the restart", 20*time.Second, func() bool { return h.p.Connected() == clients })
	if took := time.Since(restarted); took > limit {
		t.Errorf("after the restart the pool took %v to refill, want <= %v (cap plus connect time)", took.Round(time.Millisecond), limit)
	} else {
		t.Logf("restart: back in %v", took.Round(time.Millisecond))
	}

	perKick := time.Duration(float64(pc.BackoffMin)*(1+pc.BackoffJitter)) + connectSlack
	for i := 1; i <= kicks; i++ {
		node.WaitStats(10*time.Second, func(s testfixture.Stats) bool { return s.Connected == clients })
		if n := node.KickAll(); n != clients {
			t.Fatalf("kick %d: kicked %d, want %d", i, n, clients)
		}
		kicked := time.Now()
		soaktest.WaitWithin(t, "kicks counted", 10*time.Second, func() bool {
			return h.value(poolpkg.MetricDisconnects, "reason", string(probe.ReasonServerDisconnect)) == float64(clients*i)
		})
		soaktest.WaitWithin(t, "refill after a kick", 20*time.Second, func() bool { return h.p.Connected() == clients })
		took := time.Since(kicked)
		if took > perKick {
			t.Errorf("kick %d: the pool took %v to refill, want <= %v (base*(1+jitter) plus connect time)", i, took.Round(time.Millisecond), perKick)
		} else {
			t.Logf("kick %d: back in %v", i, took.Round(time.Millisecond))
		}
	}
	if got := h.value(poolpkg.MetricShortLived, "", ""); got < clients*kicks {
		t.Errorf("%s = %v, want >= %d (every kicked connection lived under %v)", poolpkg.MetricShortLived, got, clients*kicks, pc.ShortLived)
	}
	onlyReasons(t, "connect failures", h.failures(), string(probe.FailRefused), string(probe.FailReset), string(probe.FailHandshake), string(probe.FailTimeout))
}
