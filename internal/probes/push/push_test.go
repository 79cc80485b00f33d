package push

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"off", Config{}, ""},
		{"ok", Config{Event: "tick", SeqField: "seq", TimeField: "ts"}, ""},
		{"no seq field", Config{Event: "tick"}, "SOAK_PUSH_SEQ_FIELD: must not be empty when SOAK_PUSH_EVENT is set"},
		{"no time field", Config{Event: "tick", SeqField: "seq", ClockShared: true}, "SOAK_PUSH_TIME_FIELD: must not be empty when SOAK_PUSH_CLOCK_SHARED is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if got := errString(err); got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type pushEvent struct {
	sess int    // session number of the slot (a new number is a reconnect)
	arg  string // first argument; "" means none
}

func seqArg(seq int64) string { return `{"seq":` + strconv.FormatInt(seq, 10) + `,"ts":1000}` }

func TestPushAccounting(t *testing.T) {
	type counts struct{ received, lost, dup, ooo, missed, malformed float64 }
	for _, tc := range []struct {
		name   string
		events []pushEvent
		want   counts
	}{
		{"in order", []pushEvent{{1, seqArg(5)}, {1, seqArg(6)}, {1, seqArg(7)}}, counts{received: 3}},
		{"gap", []pushEvent{{1, seqArg(1)}, {1, seqArg(2)}, {1, seqArg(6)}, {1, seqArg(7)}}, counts{received: 4, lost: 3}},
		{"duplicate", []pushEvent{{1, seqArg(1)}, {1, seqArg(1)}, {1, seqArg(2)}, {1, seqArg(2)}}, counts{received: 4, dup: 2}},
		{"out of order", []pushEvent{{1, seqArg(1)}, {1, seqArg(3)}, {1, seqArg(2)}, {1, seqArg(4)}}, counts{received: 4, lost: 1, ooo: 1}},
		{"reconnect gap is missed", []pushEvent{{1, seqArg(1)}, {1, seqArg(2)}, {2, seqArg(10)}, {2, seqArg(11)}}, counts{received: 4, missed: 7}},
		{"first event is a baseline", []pushEvent{{1, seqArg(100)}}, counts{received: 1}},
		{"server restart", []pushEvent{{1, seqArg(50)}, {2, seqArg(1)}, {2, seqArg(2)}}, counts{received: 3}},
		{"float and extra fields", []pushEvent{{1, `{"x":[1,2],"seq":1e0}`}, {1, `{"seq":3.0,"y":"z"}`}}, counts{received: 2, lost: 1}},
		{"malformed", []pushEvent{{1, ""}, {1, `"text"`}, {1, `{"seq":"1"}`}, {1, `{"seq":1.5}`}, {1, `{}`}}, counts{malformed: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			pp := newPart(t, reg, Config{Event: "tick", SeqField: "seq", TimeField: "ts"}, time.Now)
			var ps slotState
			sessions := map[int]*pool.Session{}
			for _, ev := range tc.events {
				if sessions[ev.sess] == nil {
					sessions[ev.sess] = &pool.Session{}
				}
				var args []json.RawMessage
				if ev.arg != "" {
					args = []json.RawMessage{json.RawMessage(ev.arg)}
				}
				pp.observe(&ps, sessions[ev.sess], args)
			}
			got := counts{
				received:  testutil.ToFloat64(pp.m.Received),
				lost:      testutil.ToFloat64(pp.m.Lost),
				dup:       testutil.ToFloat64(pp.m.Duplicated),
				ooo:       testutil.ToFloat64(pp.m.OutOfOrder),
				missed:    testutil.ToFloat64(pp.m.Missed),
				malformed: testutil.ToFloat64(pp.m.Malformed),
			}
			if got != tc.want {
				t.Fatalf("counts = %+v, want %+v", got, tc.want)
			}
			if n := testutil.CollectAndCount(reg, "soak_push_latency_seconds"); n != 1 {
				t.Fatalf("latency series = %d, want 1", n)
			}
		})
	}
}

func TestPushLatencyOnlyWithSharedClock(t *testing.T) {
	now := time.UnixMilli(5000)
	for _, tc := range []struct {
		name   string
		shared bool
		arg    string
		count  uint64
		sum    float64
	}{
		{"not shared", false, `{"seq":1,"ts":4750}`, 0, 0},
		{"shared", true, `{"seq":1,"ts":4750}`, 1, 0.25},
		{"shared, skewed clock reads 0", true, `{"seq":1,"ts":6000}`, 1, 0},
		{"shared, no timestamp", true, `{"seq":1}`, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			pp := newPart(t, reg, Config{Event: "tick", SeqField: "seq", TimeField: "ts", ClockShared: tc.shared}, func() time.Time { return now })
			pp.observe(&slotState{}, &pool.Session{}, []json.RawMessage{json.RawMessage(tc.arg)})
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != "soak_push_latency_seconds" {
					continue
				}
				h := mf.GetMetric()[0].GetHistogram()
				if h.GetSampleCount() != tc.count || h.GetSampleSum() != tc.sum {
					t.Fatalf("latency count %d sum %v, want %d %v", h.GetSampleCount(), h.GetSampleSum(), tc.count, tc.sum)
				}
			}
		})
	}
}

// newPart builds the probe's part for a target "t1" without a pool.
func newPart(t *testing.T, reg prometheus.Registerer, cfg Config, now func() time.Time) *part {
	t.Helper()
	pr, err := New(cfg, pool.Deps{Registerer: reg, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &part{cfg: pr.cfg, m: pr.m.forTarget("t1"), now: now}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	newPart(t, reg, Config{Event: "tick", SeqField: "seq"}, time.Now)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
