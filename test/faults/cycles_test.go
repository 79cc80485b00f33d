package faults

import (
	"runtime"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestThousandReconnectCycles keeps 100 clients connected while the server
// kicks everyone ten times (1,000 reconnects), then closes the pool and
// checks that goroutines, the live heap and open file descriptors return to
// their baseline.
func TestThousandReconnectCycles(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	const (
		clients = 100
		kicks   = 10
		// Tolerances: a few goroutines (runtime, timers), 2 MB or 20 % of
		// heap (whichever is larger), 2 file descriptors.
		goroutineSlack = 3
		heapSlackBytes = 2 << 20
		heapSlackRatio = 0.2
		fdSlack        = 2
	)
	node := testfixture.Start(t, testfixture.Options{})
	cfg := config()
	cfg.Clients, cfg.ConnectRate, cfg.EventRate = clients, 1000, 200
	cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	tg := target(t, node.URL(), 1<<20)
	base := measure(t)

	h := startPool(t, cfg, tg)
	var peak resources
	for i := 1; i <= kicks; i++ {
		soaktest.WaitWithin(t, "all connected", 20*time.Second, func() bool { return h.p.Connected() == clients })
		node.WaitStats(10*time.Second, func(s testfixture.Stats) bool { return s.Connected == clients })
		if i == kicks/2 {
			peak = measure(t)
		}
		if n := node.KickAll(); n != clients {
			t.Fatalf("kick %d: kicked %d, want %d", i, n, clients)
		}
		soaktest.WaitWithin(t, "kicks counted", 10*time.Second, func() bool {
			return h.value("soak_disconnects_total", "reason", string(probe.ReasonServerDisconnect)) == float64(clients*i)
		})
	}
	soaktest.WaitWithin(t, "refill", 20*time.Second, func() bool { return h.p.Connected() == clients })
	onlyReasons(t, "disconnects", h.disconnects(), string(probe.ReasonServerDisconnect))
	onlyReasons(t, "connect failures", h.failures())
	if a := h.value("soak_connect_attempts_total", "", ""); a != clients*(kicks+1) {
		t.Errorf("connect attempts = %v, want %d", a, clients*(kicks+1))
	}
	sent, acked, lost := h.accounted()
	h.stop()
	node.WaitStats(10*time.Second, func(s testfixture.Stats) bool { return s.Connected == 0 })

	// Let closed connections' last goroutines and finalizers finish.
	var after resources
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = measure(t)
		if (after.goroutines <= base.goroutines+goroutineSlack && after.fds <= base.fds+fdSlack) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the runtime until closed connections' goroutines and fds are gone
	}
	runtime.KeepAlive(h)
	heapLimit := base.heap + max(uint64(heapSlackBytes), uint64(float64(base.heap)*heapSlackRatio))
	t.Logf("%d reconnects; sent %v = acked %v + lost %v", clients*kicks, sent, acked, lost)
	t.Logf("goroutines: baseline %d, mid-run %d, after close %d", base.goroutines, peak.goroutines, after.goroutines)
	t.Logf("heap (HeapAlloc after GC): baseline %.2f MB, mid-run %.2f MB, after close %.2f MB (limit %.2f MB)",
		mb(base.heap), mb(peak.heap), mb(after.heap), mb(heapLimit))
	t.Logf("fds: baseline %d, mid-run %d, after close %d", base.fds, peak.fds, after.fds)
	if after.goroutines > base.goroutines+goroutineSlack {
		t.Errorf("goroutines: %d after close, baseline %d (+%d allowed)", after.goroutines, base.goroutines, goroutineSlack)
	}
	if after.heap > heapLimit {
		t.Errorf("heap: %.2f MB after close, baseline %.2f MB (limit %.2f MB)", mb(after.heap), mb(base.heap), mb(heapLimit))
	}
	if after.fds > base.fds+fdSlack {
		t.Errorf("fds: %d after close, baseline %d (+%d allowed)", after.fds, base.fds, fdSlack)
	}
	// Against the count after close, not the baseline: run after other tests
	// (go test -count=10), the baseline may still hold their connections'
	// last descriptors, closing.
	if peak.fds < after.fds+clients {
		t.Errorf("fds mid-run %d, after close %d: the count does not see the %d connections", peak.fds, after.fds, clients)
	}
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }
