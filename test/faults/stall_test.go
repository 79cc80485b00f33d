package faults

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestStalledTarget freezes the Node fixture with SIGSTOP, first for longer
// than the ack timeout but well within the ping window (acks are lost, no
// connection ends), then for longer than pingInterval+pingTimeout (every
// client ends with ping_timeout), and checks that /metrics answers as fast
// during the stall as before it and that the pool recovers after SIGCONT
// with every event accounted for.
func TestStalledTarget(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	const (
		clients      = 20
		rate         = 200.0
		ackTimeout   = 400 * time.Millisecond
		pingInterval = 2 * time.Second
		pingTimeout  = 2 * time.Second
		// shortStall exceeds the ack timeout; a client's ping watchdog fires
		// at least pingWait-pingInterval = 2 s after the stop, so a 1 s stall
		// leaves a 1 s margin.
		shortStall = time.Second
	)
	node := testfixture.Start(t, testfixture.Options{PingInterval: pingInterval, PingTimeout: pingTimeout})
	cfg := config()
	cfg.Clients, cfg.EventRate, cfg.AckTimeout = clients, rate, ackTimeout
	cfg.ConnectTimeout = time.Second
	h := startPool(t, cfg, target(t, node.URL(), 1<<20))
	soaktest.WaitWithin(t, "all connected", 10*time.Second, func() bool { return h.p.Connected() == clients })
	node.WaitStats(10*time.Second, func(s testfixture.Stats) bool { return s.Connected == clients })
	soaktest.WaitWithin(t, "acks", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= 200 })

	srv := h.metricsServer()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	before := medianScrape(t, client, srv.URL, 9)

	// Phase 1: a stall longer than the ack timeout, shorter than the ping window.
	sent0 := h.value("soak_events_sent_total", "", "")
	lost0 := h.value("soak_events_lost_total", "", "")
	disc0 := h.value("soak_disconnects_total", "", "")
	node.Signal(syscall.SIGSTOP)
	stopped := time.Now()
	time.Sleep(shortStall / 2) // the fault lasts in wall time: a real process is frozen (SIGSTOP) for shortStall
	during1 := medianScrape(t, client, srv.URL, 9)
	time.Sleep(time.Until(stopped.Add(shortStall))) // the rest of the wall-time freeze of the real process
	sentStall := h.value("soak_events_sent_total", "", "") - sent0
	node.Signal(syscall.SIGCONT)
	stall1 := time.Since(stopped)
	time.Sleep(ackTimeout + 300*time.Millisecond) // every event of the stall is resolved by now
	lost1 := h.value("soak_events_lost_total", "", "") - lost0
	late1 := h.value("soak_events_late_total", "", "")
	if d := h.value("soak_disconnects_total", "", "") - disc0; d != 0 {
		t.Fatalf("%v disconnects (%v) during a %v stall, within the %v ping window", d, h.disconnects(), stall1, pingInterval+pingTimeout)
	}
	// Events scheduled in the stall's last ackTimeout are acked in time after
	// SIGCONT; the others are lost. Allow for a slow machine either way.
	wantMin := rate * (shortStall - ackTimeout).Seconds() * 0.5
	t.Logf("stall 1 (%v): sent during the stall %v, lost %v, late %v (want lost >= %.0f and <= sent during the stall)",
		stall1.Round(time.Millisecond), sentStall, lost1, late1, wantMin)
	if lost1 < wantMin || lost1 > sentStall {
		t.Errorf("lost %v after a %v stall, want in [%.0f, %v]", lost1, stall1, wantMin, sentStall)
	}
	if late1 == 0 {
		t.Errorf("no late ack after the stall: the frozen server's acks arrive after SIGCONT")
	}

	// Phase 2: a stall longer than pingInterval + pingTimeout.
	soaktest.WaitWithin(t, "still all connected", 5*time.Second, func() bool { return h.p.Connected() == clients })
	node.Signal(syscall.SIGSTOP)
	stopped = time.Now()
	soaktest.WaitWithin(t, "ping timeouts", 3*(pingInterval+pingTimeout), func() bool {
		return h.value("soak_disconnects_total", "reason", string(probe.ReasonPingTimeout)) == clients
	})
	pingTimeoutsAfter := time.Since(stopped)
	during2 := medianScrape(t, client, srv.URL, 9)
	// Stay frozen well past the ping window, so that reconnect attempts
	// meet the frozen server too.
	time.Sleep(time.Until(stopped.Add(pingInterval + pingTimeout + 1500*time.Millisecond))) // wall-time freeze of the real process
	node.Signal(syscall.SIGCONT)
	stall2 := time.Since(stopped)
	if pingTimeoutsAfter < pingInterval {
		t.Errorf("all ping timeouts %v after the stop, before the ping interval %v", pingTimeoutsAfter, pingInterval)
	}
	disc := h.disconnects()
	onlyReasons(t, "disconnects", disc, string(probe.ReasonPingTimeout))
	t.Logf("stall 2 (%v): %v ping_timeout disconnects, the last %v after the stop; connect failures %v",
		stall2.Round(time.Millisecond), disc[string(probe.ReasonPingTimeout)], pingTimeoutsAfter.Round(time.Millisecond), h.failures())

	r1, r2 := float64(during1)/float64(before), float64(during2)/float64(before)
	t.Logf("/metrics median scrape: before %v, stall 1 %v (x%.2f), stall 2 %v (x%.2f)", before, during1, r1, during2, r2)
	if r1 > 10 || r2 > 10 {
		t.Errorf("/metrics is more than 10 times slower during the stall: x%.2f, x%.2f", r1, r2)
	}

	// Recovery.
	soaktest.WaitWithin(t, "all reconnected", 20*time.Second, func() bool { return h.p.Connected() == clients })
	acked := h.value("soak_events_acked_total", "", "")
	soaktest.WaitWithin(t, "acks flowing", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= acked+200 })
	onlyReasons(t, "connect failures", h.failures(), string(probe.FailTimeout), string(probe.FailReset))
	sent, ackedAll, lostAll := h.accounted()
	t.Logf("end: sent %v = acked %v + lost %v; late %v", sent, ackedAll, lostAll, h.value("soak_events_late_total", "", ""))
	h.stop()
}
