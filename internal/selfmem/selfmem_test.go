package selfmem

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestBytesPerClient(t *testing.T) {
	n := 0
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() int { return n }))
	if got := testutil.CollectAndCount(reg, MetricBytesPerClient); got != 0 {
		t.Fatalf("%d samples with no client connected, want none", got)
	}
	n = 10
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	per := mfs[0].GetMetric()[0].GetGauge().GetValue()
	if held := float64(heldBytes()); per <= 0 || per < held/10*0.5 || per > held/10*2 {
		t.Fatalf("per client %v, runtime holds %v for 10 clients", per, held)
	}
	problems, err := testutil.CollectAndLint(NewCollector(func() int { return 1 }))
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	if !strings.HasSuffix(MetricBytesPerClient, "_bytes") {
		t.Fatal("unit suffix")
	}
}

func TestReleaseWhenReady(t *testing.T) {
	for _, tc := range []struct {
		name      string
		readyAt   time.Duration // -1: never
		cancelAt  time.Duration // 0: never
		err       error
		wantAt    time.Duration // -1: not released
		wantInLog string
	}{
		{name: "pool up after 3 s", readyAt: 3 * time.Second, wantAt: releaseMinWait, wantInLog: "released"},
		{name: "ready at once", readyAt: 0, wantAt: releaseMinWait, wantInLog: "released"},
		{name: "pool up after 2 min", readyAt: 2*time.Minute + 500*time.Millisecond, wantAt: 2*time.Minute + time.Second, wantInLog: "released"},
		{name: "pool never fully up", readyAt: -1, wantAt: releaseMaxWait, wantInLog: "released"},
		{name: "stopped first", readyAt: -1, cancelAt: time.Minute, wantAt: -1},
		{name: "kernel refuses", readyAt: time.Second, err: errors.New("madvise: invalid argument"), wantAt: releaseMinWait, wantInLog: "not released"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				core, logs := observer.New(zap.InfoLevel)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tc.cancelAt > 0 {
					time.AfterFunc(tc.cancelAt, cancel)
				}
				start := time.Now()
				calls := 0
				var at time.Duration
				ready := func() bool { return tc.readyAt >= 0 && time.Since(start) >= tc.readyAt }
				release := func() (int64, error) { calls++; at = time.Since(start); return 1 << 20, tc.err }
				ReleaseWhenReady(ctx, zap.New(core), ready, release)
				if tc.wantAt < 0 {
					if calls != 0 || logs.Len() != 0 {
						t.Fatalf("released %d times, %d log lines; want none", calls, logs.Len())
					}
					return
				}
				if calls != 1 || at != tc.wantAt {
					t.Fatalf("released %d times, at %v; want once at %v", calls, at, tc.wantAt)
				}
				if all := logs.All(); len(all) != 1 || !strings.Contains(all[0].Message, tc.wantInLog) {
					t.Fatalf("log %v, want one line with %q", all, tc.wantInLog)
				}
			})
		})
	}
}
