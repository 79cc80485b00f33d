package probes_test

import (
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probes/fanout"
	"github.com/generic-corp/soak-exporter/internal/probes/push"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

var pushOn = push.Config{Event: "tick", SeqField: "seq", TimeField: "ts", ClockShared: true}

type pushCounts struct{ received, lost, dup, ooo, missed float64 }

func (r *rig) push(target string) pushCounts {
	l := []string{"target", target}
	return pushCounts{
		r.value("soak_push_received_total", l...),
		r.value("soak_push_lost_total", l...),
		r.value("soak_push_duplicated_total", l...),
		r.value("soak_push_out_of_order_total", l...),
		r.value("soak_push_missed_total", l...),
	}
}

// waitPush waits until the target's clients have received want pushes in
// all and then checks every push counter.
func (r *rig) waitPush(target string, want pushCounts) {
	r.t.Helper()
	soaktest.WaitWithin(r.t, "pushes received", 10*time.Second, func() bool { return r.value("soak_push_received_total", "target", target) >= want.received })
	if got := r.push(target); got != want {
		r.t.Fatalf("push counters of %s = %+v, want %+v", target, got, want)
	}
}

func TestPushGapsDuplicatesAndReconnectsAreCountedExactly(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	const clients = 20
	node := testfixture.Start(t, testfixture.Options{})
	r := startRig(t, []targetSpec{{"n", node.URL()}}, clients, pushOn, fanout.Config{Event: "publish", Timeout: time.Second})
	r.waitConnected(10 * time.Second)
	node.WaitStats(5*time.Second, func(s testfixture.Stats) bool { return s.Connected == clients })

	want := pushCounts{}
	node.PushNow(1) // baseline of every session
	want.received += clients
	r.waitPush("n", want)

	node.PushSkip(5)
	node.PushNow(1)
	want.received += clients
	want.lost += 5 * clients
	r.waitPush("n", want)

	node.PushDup(2)
	node.PushNow(3) // 2 sent twice, 1 once
	want.received += 5 * clients
	want.dup += 2 * clients
	r.waitPush("n", want)

	node.PushSeq(1, 2) // an old number
	want.received += clients
	want.ooo += clients
	r.waitPush("n", want)

	// Reconnect: what is pushed meanwhile is missed, not lost.
	if kicked := node.KickAll(); kicked != clients {
		t.Fatalf("kicked %d, want %d", kicked, clients)
	}
	soaktest.WaitWithin(r.t, "kicks counted", 10*time.Second, func() bool { return r.value("soak_disconnects_total", "target", "n") >= clients })
	r.waitConnected(10 * time.Second)
	node.WaitStats(5*time.Second, func(s testfixture.Stats) bool { return s.Connected == clients })
	node.PushSkip(7)
	node.PushNow(1)
	want.received += clients
	want.missed += 7 * clients
	r.waitPush("n", want)

	if n := r.value("soak_push_latency_seconds", "target", "n"); n != want.received {
		t.Fatalf("latency observations = %v, want one per push received (%v) with a shared clock", n, want.received)
	}
	if d := r.value("soak_disconnects_total", "target", "n"); d != clients {
		t.Fatalf("disconnects = %v, want %d", d, clients)
	}
}

func TestFanoutOneTargetDeliversEverything(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	const clients = 20
	node := testfixture.Start(t, testfixture.Options{})
	r := startRig(t, []targetSpec{{"n", node.URL()}}, clients, push.Config{},
		fanout.Config{Event: "publish", Rate: 50, Timeout: time.Second})
	r.waitConnected(10 * time.Second)
	node.WaitStats(5*time.Second, func(s testfixture.Stats) bool { return s.Connected == clients })

	r.fanoutRound(50, 20*time.Second)
	sent := r.value("soak_fanout_sent_total", "target", "n")
	got := r.pair("n", "n")
	t.Logf("sent %v, %+v", sent, got)
	if got.expected != sent*(clients-1) {
		t.Fatalf("expected = %v, want sent*(clients-1) = %v", got.expected, sent*(clients-1))
	}
	if got.delivered != got.expected || got.lost != 0 || got.latency != got.delivered {
		t.Fatalf("got %+v, want everything delivered once with its latency", got)
	}
	if f := r.value("soak_fanout_send_failures_total"); f != 0 {
		t.Fatalf("send failures = %v", f)
	}
}
