package health

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// Figures are a target's totals over a span of the window.
type Figures struct {
	// Seconds is the span covered.
	Seconds float64
	// Attempts, Established and Failures are connection attempts.
	Attempts, Established, Failures int64
	// ConnectSuccess is 1 - Failures/Attempts (NaN without attempts).
	ConnectSuccess float64
	// ConnectP95 is the p95 connect time in seconds (NaN without data).
	ConnectP95 float64
	// Disconnects counts ends of established connections;
	// AbnormalDisconnects those the agent did not ask for.
	Disconnects, AbnormalDisconnects int64
	// Probe outcomes, all steps.
	Sent, Answered, Rejected, Lost, Late, Skipped, Dropped int64
	// Loss is Lost/Sent (NaN when nothing was sent).
	Loss float64
	// P50, P95, P99 are answered-request latencies in seconds (NaN without
	// data), from the log-bucketed sketch (relative error <= 4.4 %).
	P50, P95, P99 float64
	// Steps are the outcomes per probe step.
	Steps []StepFigures
}

// StepFigures are the outcomes of one probe step.
type StepFigures struct {
	Probe, Step                                            string
	Sent, Answered, Rejected, Lost, Late, Skipped, Dropped int64
}

// ReasonCount is a reason and how often it was seen.
type ReasonCount struct {
	Reason string
	Count  int64
}

// clientDisconnect is the reason of a disconnect the agent asked for.
const clientDisconnect = "io_client_disconnect"

// figures sums n buckets back from head-off (off 0: the current bucket
// included, as Step closes it; off 1: closed seconds only). t.mu held.
func (t *target) figures(n, off int) Figures {
	f := Figures{Seconds: float64(n)}
	var lat, con sketch
	steps := make([]StepFigures, len(t.steps))
	for i, k := range t.steps {
		steps[i].Probe, steps[i].Step = k.probe, k.step
	}
	var fails int64
	for k := 0; k < n; k++ {
		b := &t.buckets[(t.head-off-k+2*windowSeconds)%windowSeconds]
		f.Attempts += int64(b.attempts)
		f.Established += int64(b.established)
		for _, c := range b.failures {
			fails += int64(c)
		}
		for i, c := range b.disconnects {
			f.Disconnects += int64(c)
			if i >= len(t.discs) || t.discs[i] != clientDisconnect {
				f.AbnormalDisconnects += int64(c)
			}
		}
		for i := range steps {
			s := &b.steps[i]
			st := &steps[i]
			st.Sent += int64(s.sent)
			st.Answered += int64(s.answered)
			st.Rejected += int64(s.rejected)
			st.Lost += int64(s.lost)
			st.Late += int64(s.late)
			st.Skipped += int64(s.skipped)
			st.Dropped += int64(s.dropped)
		}
		lat.merge(&b.latency)
		con.merge(&b.connect)
	}
	f.Failures = fails
	for _, st := range steps {
		f.Sent += st.Sent
		f.Answered += st.Answered
		f.Rejected += st.Rejected
		f.Lost += st.Lost
		f.Late += st.Late
		f.Skipped += st.Skipped
		f.Dropped += st.Dropped
	}
	f.Steps = steps
	f.ConnectSuccess, f.Loss = math.NaN(), math.NaN()
	if f.Attempts > 0 {
		f.ConnectSuccess = math.Max(0, 1-float64(f.Failures)/float64(f.Attempts))
	}
	if f.Sent > 0 {
		f.Loss = float64(f.Lost) / float64(f.Sent)
	}
	f.P50, f.P95, f.P99 = lat.quantile(0.5), lat.quantile(0.95), lat.quantile(0.99)
	f.ConnectP95 = con.quantile(0.95)
	return f
}

func (t *target) topReasons(n, off int, names []string, pick func(*bucket) *[maxReasons]uint32) []ReasonCount {
	var sum [maxReasons]int64
	for k := 0; k < n; k++ {
		for i, c := range pick(&t.buckets[(t.head-off-k+2*windowSeconds)%windowSeconds]) {
			sum[i] += int64(c)
		}
	}
	var out []ReasonCount
	for i, c := range sum {
		if c > 0 && i < len(names) {
			out = append(out, ReasonCount{Reason: names[i], Count: c})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

func (t *target) topFailures(n, off int) []ReasonCount {
	return t.topReasons(n, off, t.reasons, func(b *bucket) *[maxReasons]uint32 { return &b.failures })
}

func (t *target) topDisconnects(n, off int) []ReasonCount {
	return t.topReasons(n, off, t.discs, func(b *bucket) *[maxReasons]uint32 { return &b.disconnects })
}

// Condition is an alert condition of a target as the window sees it.
type Condition struct {
	// Alert is the alert rule's name.
	Alert string
	// Text states it in words, e.g. "p95 latency 402 ms > 200 ms".
	Text string
	// Bad: the condition holds now (coloured bad, logged).
	Bad bool
	// For is how long it has held.
	For time.Duration
	// Firing: it has held for the alert rule's `for:`.
	Firing bool
	// After is the rule's `for:`.
	After time.Duration
}

// View is what the landing page shows of a target.
type View struct {
	Target             string
	Connected, Desired int
	// LastConnectReason and LastConnectMessage are the latest failure
	// (the message is untrusted server text).
	LastConnectReason, LastConnectMessage string
	// Minute and TenMinutes are the last 60 and 600 seconds.
	Minute, TenMinutes Figures
	// Conditions are the alert conditions that hold now.
	Conditions []Condition
	// ConnectErrors and Disconnects are the reasons of the last ten minutes,
	// most frequent first.
	ConnectErrors, Disconnects []ReasonCount
}

// Views returns one View per target, sorted by target.
func (h *Health) Views() []View {
	now := h.opts.Now()
	pools := h.pools()
	h.mu.RLock()
	ts := make([]*target, 0, len(h.order))
	for _, n := range h.order {
		ts = append(ts, h.targets[n])
	}
	h.mu.RUnlock()
	out := make([]View, 0, len(ts))
	for _, t := range ts {
		ps := pools[t.name]
		t.mu.Lock()
		v := View{Target: t.name, Connected: ps.Connected, Desired: ps.Desired,
			LastConnectReason: ps.LastConnectReason, LastConnectMessage: ps.LastConnectMessage,
			Minute: t.figures(60, 1), TenMinutes: t.figures(windowSeconds-1, 1),
			ConnectErrors: t.topFailures(windowSeconds-1, 1), Disconnects: t.topDisconnects(windowSeconds-1, 1)}
		for _, c := range evaluate(v.Minute, ps) {
			st := t.conds[c.alert]
			if st == nil || !st.active {
				continue
			}
			v.Conditions = append(v.Conditions, Condition{Alert: c.alert, Text: st.lastText, Bad: true,
				For: now.Sub(st.since), Firing: st.firing, After: c.after})
		}
		t.mu.Unlock()
		out = append(out, v)
	}
	return out
}

// Millis formats seconds as milliseconds ("402 ms", "2.34 ms"); "-" for NaN.
func Millis(s float64) string {
	if math.IsNaN(s) {
		return "-"
	}
	ms := s * 1000
	switch {
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	}
}

// Percent formats a ratio as a percentage ("2.5%"); "-" for NaN. A ratio
// just under 1 is never rounded up to 100 %.
func Percent(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	p := r * 100
	if p >= 99.995 && p < 100 {
		return "99.99%"
	}
	s := strconv.FormatFloat(p, 'f', 2, 64)
	for len(s) > 1 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s + "%"
}
