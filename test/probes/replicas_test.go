package probes_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probes/fanout"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestTwoReplicasOverRedis runs two fixture processes joined by the Redis
// adapter, with the agent's clients spread over both (targets "a" and "b").
func TestTwoReplicasOverRedis(t *testing.T) {
	soaktest.Integration(t, "node fixture", "redis-server")
	const clientsPer = 10
	redis := testfixture.StartRedis(t)
	a := testfixture.Start(t, testfixture.Options{RedisURL: redis.URL()})
	b := testfixture.Start(t, testfixture.Options{RedisURL: redis.URL()})
	r := startRig(t, []targetSpec{{"a", a.URL()}, {"b", b.URL()}}, clientsPer, pushOn,
		fanout.Config{Event: "publish", Rate: 40, Timeout: time.Second})
	r.waitConnected(15 * time.Second)
	for _, n := range []*testfixture.Node{a, b} {
		n.WaitStats(5*time.Second, func(s testfixture.Stats) bool { return s.Connected == clientsPer && s.Push.Redis })
	}
	pairs := [][2]string{{"a", "a"}, {"a", "b"}, {"b", "a"}, {"b", "b"}}
	snapshot := func() map[[2]string]pairCounts {
		m := map[[2]string]pairCounts{}
		for _, p := range pairs {
			m[p] = r.pair(p[0], p[1])
		}
		return m
	}

	{
		t.Log("push gaps are counted exactly per replica")
		a.PushNow(1)
		b.PushNow(1)
		r.waitPush("a", pushCounts{received: clientsPer})
		r.waitPush("b", pushCounts{received: clientsPer})
		a.PushSkip(3)
		a.PushNow(1)
		b.PushSkip(5)
		b.PushNow(1)
		// Pushes are local to their replica: nothing crosses through Redis.
		r.waitPush("a", pushCounts{received: 2 * clientsPer, lost: 3 * clientsPer})
		r.waitPush("b", pushCounts{received: 2 * clientsPer, lost: 5 * clientsPer})
	}

	{
		t.Log("cross-replica delivery is measured")
		before := snapshot()
		r.fanoutRound(40, 20*time.Second)
		after := snapshot()
		for _, p := range pairs {
			d := after[p].minus(before[p])
			t.Logf("%s->%s: %+v", p[0], p[1], d)
			if d.expected == 0 || d.delivered != d.expected || d.lost != 0 || d.latency != d.delivered {
				t.Errorf("%s->%s: %+v, want everything expected delivered, with latency", p[0], p[1], d)
			}
		}
	}

	{
		t.Log("stopped Redis loses only cross-replica deliveries")
		before := snapshot()
		redis.Signal(syscall.SIGSTOP)
		r.fanoutRound(20, 20*time.Second)
		redis.Signal(syscall.SIGCONT)
		after := snapshot()
		for _, p := range pairs {
			d := after[p].minus(before[p])
			t.Logf("%s->%s with Redis stopped: %+v", p[0], p[1], d)
			same := p[0] == p[1]
			switch {
			case d.expected == 0:
				t.Errorf("%s->%s: nothing expected", p[0], p[1])
			case same && (d.delivered != d.expected || d.lost != 0):
				t.Errorf("%s->%s: same-replica delivery must go on: %+v", p[0], p[1], d)
			case !same && (d.lost != d.expected || d.delivered != 0):
				t.Errorf("%s->%s: cross-replica copies must all be lost: %+v", p[0], p[1], d)
			}
		}
		// Copies queued while Redis was stopped arrive late: they are ignored,
		// and delivery across replicas is whole again.
		before = snapshot()
		r.fanoutRound(20, 20*time.Second)
		after = snapshot()
		for _, p := range pairs {
			if d := after[p].minus(before[p]); d.expected == 0 || d.lost != 0 || d.delivered != d.expected {
				t.Errorf("%s->%s after Redis resumed: %+v", p[0], p[1], d)
			}
		}
	}

	{
		t.Log("a restarted replica is counted and recovered")
		discA := r.value("soak_disconnects_total", "target", "a")
		discB := r.value("soak_disconnects_total", "target", "b")
		b.Restart()
		soaktest.WaitWithin(r.t, "disconnects from b counted", 10*time.Second, func() bool {
			return r.value("soak_disconnects_total", "target", "b") >= discB+clientsPer
		})
		r.waitConnected(15 * time.Second)
		b.WaitStats(10*time.Second, func(s testfixture.Stats) bool { return s.Connected == clientsPer && s.Push.Redis })
		if d := r.value("soak_disconnects_total", "target", "a"); d != discA {
			t.Errorf("disconnects from a went from %v to %v: only b restarted", discA, d)
		}
		t.Logf("disconnects from b: %v", r.value("soak_disconnects_total", "target", "b")-discB)
		before := snapshot()
		r.fanoutRound(40, 20*time.Second)
		after := snapshot()
		for _, p := range pairs {
			if d := after[p].minus(before[p]); d.expected == 0 || d.lost != 0 || d.delivered != d.expected {
				t.Errorf("%s->%s after b restarted: %+v", p[0], p[1], d)
			}
		}
		// The restarted b starts its push sequence afresh: a new baseline, not a loss.
		pb := r.push("b")
		b.PushNow(1)
		b.PushNow(1)
		pb.received += 2 * clientsPer
		r.waitPush("b", pb)
	}
}
