package probes_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/probes/fanout"
	"github.com/generic-corp/soak-exporter/internal/probes/push"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestProbesOverMsgpack runs the echo, push and fan-out probes against the
// Node fixture with socket.io-msgpack-parser (SOAK_PARSER=msgpack), over
// long-polling upgraded to WebSocket: every probe's figures come out as
// over the default parser, with nothing lost.
func TestProbesOverMsgpack(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	node := testfixture.Start(t, testfixture.Options{PushInterval: 50 * time.Millisecond, Env: []string{"PARSER=msgpack"}})
	tc := target.Config{Driver: "native", TargetURL: node.URL(), SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20, Parser: "msgpack"}
	if err := tc.Validate(); err != nil {
		t.Fatal(err)
	}
	tgs, err := tc.Targets()
	if err != nil {
		t.Fatal(err)
	}
	cfg := rigConfig(10, push.Config{Event: "tick"}, fanout.Config{Event: "publish", Rate: 5, Timeout: 2 * time.Second})
	cfg.EventRate = 100
	reg := prometheus.NewRegistry()
	a, err := agent.New(cfg, agent.Options{Driver: native.New(native.Options{}), Targets: tgs, Registerer: reg, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	sum := func(name string, labels ...string) float64 { return soaktest.Sum(t, reg, name, labels...) }
	soaktest.WaitWithin(t, "echo, push and fan-out over msgpack", 30*time.Second, func() bool {
		return sum("soak_events_acked_total") >= 200 && sum("soak_push_received_total") >= 100 && sum("soak_fanout_delivered_total") >= 45
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"soak_events_lost_total", "soak_push_lost_total", "soak_push_malformed_total", "soak_fanout_lost_total", "soak_acks_unexpected_total"} {
		if v := sum(name); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	if v := sum("soak_disconnects_total") - sum("soak_disconnects_total", "reason", string(probe.ReasonClientClose)); v != 0 {
		t.Errorf("%v disconnects other than the agent's own close", v)
	}
}
