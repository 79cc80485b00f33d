package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// UID is the dashboard's fixed UID, so that links to it survive re-imports.
const UID = "soak-exporter"

// Selectors shared by the queries. Memory and leak metrics carry no target
// label (they describe the target process, sampled by one agent).
const (
	selTarget = `job=~"$job",instance=~"$instance",target=~"$target"`
	selAgent  = `job=~"$job",instance=~"$instance"`
	selWindow = `job=~"$job",instance=~"$instance",window=~"$window"`
)

// Thresholds of the old performance suite, as in the alert rules.
const (
	connectP95Threshold   = 0.5
	eventP95Threshold     = 0.2
	successRatioThreshold = 0.995
	disconnectThreshold   = 0.01
	fanoutCrossP95        = 0.5
	limitWarnSeconds      = 4 * 3600
)

func ds() *datasourceRef { return &datasourceRef{Type: "prometheus", UID: "${datasource}"} }

func ptr[T any](v T) *T { return &v }

// q is one range query of a panel.
func q(expr, legend string) target {
	return target{Datasource: ds(), EditorMode: "code", Expr: expr, Format: "time_series", Range: true, LegendFormat: legend}
}

func steps(base string, more ...any) thresholds {
	s := []thresholdStep{{Color: base}}
	for i := 0; i+1 < len(more); i += 2 {
		s = append(s, thresholdStep{Color: more[i+1].(string), Value: ptr(more[i].(float64))})
	}
	return thresholds{Mode: "absolute", Steps: s}
}

func noThresholds() thresholds { return steps("green") }

// tsOpts tune a time series panel.
type tsOpts struct {
	min, max   *float64
	thresholds thresholds
	// thresholdStyle is "off", "line" or "line+area".
	thresholdStyle string
	stack          bool
	fill           int
}

func timeseries(title, desc, unit string, o tsOpts, targets ...target) *panel {
	if o.thresholdStyle == "" {
		o.thresholdStyle = "off"
	}
	if o.thresholds.Mode == "" {
		o.thresholds = noThresholds()
	}
	stacking := "none"
	if o.stack {
		stacking = "normal"
	}
	return &panel{
		Type: "timeseries", Title: title, Description: desc, Datasource: ds(),
		FieldConfig: &fieldConfig{
			Defaults: fieldDefaults{
				Unit: unit, Min: o.min, Max: o.max,
				Color: map[string]any{"mode": "palette-classic"},
				Custom: map[string]any{
					"drawStyle":         "line",
					"lineInterpolation": "linear",
					"lineWidth":         1,
					"fillOpacity":       o.fill,
					"showPoints":        "never",
					"spanNulls":         false,
					"stacking":          map[string]any{"mode": stacking, "group": "A"},
					"thresholdsStyle":   map[string]any{"mode": o.thresholdStyle},
					"axisSoftMin":       0,
				},
				Mappings:   []any{},
				Thresholds: o.thresholds,
			},
			Overrides: []any{},
		},
		Options: map[string]any{
			"legend":  map[string]any{"displayMode": "table", "placement": "bottom", "showLegend": true, "calcs": []string{"lastNotNull", "max"}},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		},
		Targets: targets,
	}
}

func stat(title, desc, unit string, th thresholds, targets ...target) *panel {
	return &panel{
		Type: "stat", Title: title, Description: desc, Datasource: ds(),
		FieldConfig: &fieldConfig{
			Defaults: fieldDefaults{
				Unit: unit, Color: map[string]any{"mode": "thresholds"},
				Mappings: []any{}, Thresholds: th,
			},
			Overrides: []any{},
		},
		Options: map[string]any{
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "background",
			"graphMode":     "area",
			"justifyMode":   "auto",
			"orientation":   "auto",
			"textMode":      "value_and_name",
			"wideLayout":    true,
		},
		Targets: targets,
	}
}

// stateTimeline shows 0/1 series (verdicts, up) as coloured bands.
func stateTimeline(title, desc, unit, zero, one, oneColor string, targets ...target) *panel {
	return &panel{
		Type: "state-timeline", Title: title, Description: desc, Datasource: ds(),
		FieldConfig: &fieldConfig{
			Defaults: fieldDefaults{
				Unit: unit, Color: map[string]any{"mode": "thresholds"},
				Custom: map[string]any{"fillOpacity": 70, "lineWidth": 0},
				Mappings: []any{map[string]any{
					"type": "value",
					"options": map[string]any{
						"0": map[string]any{"text": zero, "color": "green", "index": 0},
						"1": map[string]any{"text": one, "color": oneColor, "index": 1},
					},
				}},
				Thresholds: steps("green", 1.0, oneColor),
			},
			Overrides: []any{},
		},
		Options: map[string]any{
			"showValue":   "never",
			"mergeValues": true,
			"alignValue":  "left",
			"rowHeight":   0.9,
			"legend":      map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": false},
			"tooltip":     map[string]any{"mode": "single", "sort": "none"},
		},
		Targets: targets,
	}
}

// leakStateTimeline is a state timeline of the leak detector's state
// encoded as 0 warming up, 1 no leak, 2 leak suspected.
func leakStateTimeline(title, desc string, targets ...target) *panel {
	p := stateTimeline(title, desc, "short", "", "", "", targets...)
	p.FieldConfig.Defaults.Mappings = []any{map[string]any{
		"type": "value",
		"options": map[string]any{
			"0": map[string]any{"text": "warming up", "color": "blue", "index": 0},
			"1": map[string]any{"text": "no leak", "color": "green", "index": 1},
			"2": map[string]any{"text": "leak suspected", "color": "red", "index": 2},
		},
	}}
	p.FieldConfig.Defaults.Thresholds = steps("blue", 1.0, "green", 2.0, "red")
	return p
}

func heatmap(title, desc string, t target) *panel {
	t.Format = "heatmap"
	return &panel{
		Type: "heatmap", Title: title, Description: desc, Datasource: ds(),
		FieldConfig: &fieldConfig{
			Defaults: fieldDefaults{
				Unit: "s", Color: map[string]any{"mode": "palette-classic"},
				Custom: map[string]any{
					"hideFrom":          map[string]any{"legend": false, "tooltip": false, "viz": false},
					"scaleDistribution": map[string]any{"type": "linear"},
				},
				Mappings: []any{}, Thresholds: noThresholds(),
			},
			Overrides: []any{},
		},
		Options: map[string]any{
			"calculate":    false,
			"cellGap":      1,
			"cellValues":   map[string]any{"unit": "ops"},
			"color":        map[string]any{"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "fill": "dark-orange", "reverse": false, "steps": 64, "scale": "exponential"},
			"exemplars":    map[string]any{"color": "rgba(255,0,255,0.7)"},
			"filterValues": map[string]any{"le": 1e-9},
			"legend":       map[string]any{"show": true},
			"rowsFrame":    map[string]any{"layout": "auto"},
			"tooltip":      map[string]any{"mode": "single", "yHistogram": true, "showColorScale": false},
			"yAxis":        map[string]any{"axisPlacement": "left", "unit": "s", "reverse": false},
		},
		Targets: []target{t},
	}
}

// layout places panels left to right in rows of 24 grid units.
type layout struct {
	panels []*panel
	id     int
	x, y   int
	rowH   int
}

func (l *layout) nextID() int { l.id++; return l.id }

func (l *layout) row(title string) {
	l.newLine()
	l.panels = append(l.panels, &panel{
		ID: l.nextID(), Type: "row", Title: title, Collapsed: ptr(false),
		GridPos: gridPos{H: 1, W: 24, X: 0, Y: l.y}, Panels: []*panel{},
	})
	l.y++
}

func (l *layout) newLine() {
	if l.x > 0 {
		l.y += l.rowH
		l.x, l.rowH = 0, 0
	}
}

func (l *layout) add(w, h int, p *panel) {
	if l.x+w > 24 {
		l.newLine()
	}
	p.ID = l.nextID()
	p.GridPos = gridPos{H: h, W: w, X: l.x, Y: l.y}
	for i := range p.Targets {
		p.Targets[i].RefID = string(rune('A' + i))
	}
	l.panels = append(l.panels, p)
	l.x += w
	l.rowH = max(l.rowH, h)
}

// quantile reads the classic buckets, or the native histogram where the
// classic buckets are not ingested (as the recording rules do).
func quantile(q float64, metric, sel, by string) string {
	return fmt.Sprintf("histogram_quantile(%g, sum by (%s, le) (rate(%s_bucket{%s}[$__rate_interval])))", q, by, metric, sel) +
		fmt.Sprintf(" or histogram_quantile(%g, sum by (%s) (rate(%s{%s}[$__rate_interval])))", q, by, metric, sel)
}

func panels() []*panel {
	l := &layout{}

	l.row("Overview")
	l.add(8, 8, timeseries("Pool: desired vs connected",
		"Clients the agent should keep connected (desired) and those connected now, per agent and target. A connected line below desired for long fires SoakPoolBelowDesired.",
		"short", tsOpts{min: ptr(0.0)},
		q(`sum by (instance, target) (soak_clients_desired{`+selTarget+`})`, "desired {{target}} @ {{instance}}"),
		q(`sum by (instance, target) (soak_clients_connected{`+selTarget+`})`, "connected {{target}} @ {{instance}}"),
	))
	l.add(8, 8, timeseries("Connect success ratio",
		"Share of connection attempts that succeeded over 5 minutes (recording rule target:soak_connect_success:ratio_rate5m, the series SoakConnectionSuccessRatioLow uses). Red line: 99.5%. No data while the pool is full and makes no attempts.",
		"percentunit", tsOpts{max: ptr(1.0), thresholds: steps("red", successRatioThreshold, "green"), thresholdStyle: "line"},
		q(`target:soak_connect_success:ratio_rate5m{`+selTarget+`}`, "{{target}} @ {{instance}}"),
	))
	l.add(8, 8, timeseries("Connect p95 vs 500 ms",
		"95th percentile of successful connect durations over 5 minutes (recording rule target:soak_connect_duration_seconds:p95_rate5m, used by SoakConnectionLatencyHigh). Red line: 0.5 s.",
		"s", tsOpts{min: ptr(0.0), thresholds: steps("green", connectP95Threshold, "red"), thresholdStyle: "line"},
		q(`target:soak_connect_duration_seconds:p95_rate5m{`+selTarget+`}`, "{{target}} @ {{instance}}"),
	))
	l.add(8, 8, timeseries("Event latency p95 vs 200 ms",
		"95th percentile of acked-event latency over 5 minutes, measured from the scheduled send time (recording rule target_event:soak_event_latency_seconds:p95_rate5m, used by SoakEventLatencyHigh). Red line: 0.2 s.",
		"s", tsOpts{min: ptr(0.0), thresholds: steps("green", eventP95Threshold, "red"), thresholdStyle: "line"},
		q(`target_event:soak_event_latency_seconds:p95_rate5m{`+selTarget+`}`, "{{event}} {{target}} @ {{instance}}"),
	))
	l.add(8, 8, timeseries("Event loss ratio",
		"Share of sent events whose ack did not arrive within the ack timeout, over 5 minutes (recording rule target_event:soak_events_lost:ratio_rate5m, used by SoakEventLoss). Anything above 0 is loss.",
		"percentunit", tsOpts{min: ptr(0.0), thresholds: steps("green", 1e-9, "red"), thresholdStyle: "line"},
		q(`target_event:soak_events_lost:ratio_rate5m{`+selTarget+`}`, "{{event}} {{target}} @ {{instance}}"),
	))
	l.add(8, 8, timeseries("Abnormal disconnects per client per minute",
		"Disconnects the agent did not ask for (all reasons but io_client_disconnect), per desired client per minute, over 5 minutes: the series SoakDisconnectRateHigh compares with 1%.",
		"percentunit", tsOpts{min: ptr(0.0), thresholds: steps("green", disconnectThreshold, "red"), thresholdStyle: "line"},
		q(`target:soak_disconnects_abnormal:rate5m{`+selTarget+`} * 60 / soak_clients_desired{`+selTarget+`}`, "{{target}} @ {{instance}}"),
	))

	l.row("Latency")
	l.add(12, 9, timeseries("Event latency percentiles",
		"p50, p95 and p99 of acked-event latency from the classic histogram buckets, measured from the scheduled send time (open loop, no coordinated omission). Red line: the 0.2 s p95 threshold.",
		"s", tsOpts{min: ptr(0.0), thresholds: steps("green", eventP95Threshold, "red"), thresholdStyle: "line"},
		q(quantile(0.5, "soak_event_latency_seconds", selTarget, "target, event"), "p50 {{event}} {{target}}"),
		q(quantile(0.95, "soak_event_latency_seconds", selTarget, "target, event"), "p95 {{event}} {{target}}"),
		q(quantile(0.99, "soak_event_latency_seconds", selTarget, "target, event"), "p99 {{event}} {{target}}"),
	))
	l.add(12, 9, heatmap("Event latency heatmap",
		"Distribution of acked-event latency over time (classic buckets of soak_event_latency_seconds, events per second per bucket; needs the classic buckets ingested). A band moving up means the target slows down; a second band means some events are slow.",
		q(`sum by (le) (rate(soak_event_latency_seconds_bucket{`+selTarget+`}[$__rate_interval]))`, "{{le}}"),
	))
	l.add(12, 8, timeseries("Connect duration percentiles",
		"p50, p95 and p99 of successful connect durations (Engine.IO open plus namespace CONNECT). Red line: the 0.5 s p95 threshold.",
		"s", tsOpts{min: ptr(0.0), thresholds: steps("green", connectP95Threshold, "red"), thresholdStyle: "line"},
		q(quantile(0.5, "soak_connect_duration_seconds", selTarget, "target"), "p50 {{target}}"),
		q(quantile(0.95, "soak_connect_duration_seconds", selTarget, "target"), "p95 {{target}}"),
		q(quantile(0.99, "soak_connect_duration_seconds", selTarget, "target"), "p99 {{target}}"),
	))
	l.add(12, 8, timeseries("Event outcomes",
		"Events per second: sent, acked in time, lost (no ack within the ack timeout), late (ack after the timeout), skipped (client not connected when due).",
		"ops", tsOpts{min: ptr(0.0)},
		q(`sum by (target, event) (rate(soak_events_sent_total{`+selTarget+`}[$__rate_interval]))`, "sent {{event}} {{target}}"),
		q(`sum by (target, event) (rate(soak_events_acked_total{`+selTarget+`}[$__rate_interval]))`, "acked {{event}} {{target}}"),
		q(`sum by (target, event) (rate(soak_events_lost_total{`+selTarget+`}[$__rate_interval]))`, "lost {{event}} {{target}}"),
		q(`sum by (target, event) (rate(soak_events_late_total{`+selTarget+`}[$__rate_interval]))`, "late {{event}} {{target}}"),
		q(`sum by (target, event) (rate(soak_events_skipped_total{`+selTarget+`}[$__rate_interval]))`, "skipped {{event}} {{target}}"),
	))

	l.row("Connections")
	l.add(8, 8, timeseries("Connect attempts",
		"Connection attempts per second (successful or not). Zero while the pool is full; a steady rate means clients keep reconnecting.",
		"ops", tsOpts{min: ptr(0.0)},
		q(`sum by (instance, target) (rate(soak_connect_attempts_total{`+selTarget+`}[$__rate_interval]))`, "{{target}} @ {{instance}}"),
	))
	l.add(8, 8, timeseries("Connect failures by reason",
		"Failed connection attempts per second by reason: timeout, refused, dns, tls, handshake, connect_error, reset, protocol, other.",
		"ops", tsOpts{min: ptr(0.0), stack: true, fill: 30},
		q(`sum by (target, reason) (rate(soak_connect_failures_total{`+selTarget+`}[$__rate_interval]))`, "{{reason}} {{target}}"),
	))
	l.add(8, 8, timeseries("Disconnects by reason",
		"Established connections that ended, per second, by reason. io_client_disconnect is the agent's own (resize, shutdown); every other reason is abnormal.",
		"ops", tsOpts{min: ptr(0.0), stack: true, fill: 30},
		q(`sum by (target, reason) (rate(soak_disconnects_total{`+selTarget+`}[$__rate_interval]))`, "{{reason}} {{target}}"),
	))

	l.row("Fan-out and push")
	l.add(8, 8, timeseries("Fan-out deliveries per pair",
		"Fan-out probe (SOAK_FANOUT_RATE): messages emitted per second by the clients of each sender target, writes that failed, and per second the expected deliveries that arrived (delivered) or had not arrived when the fan-out timeout passed (lost), per sender target → receiver target. Pairs of different targets cross replicas through the Socket.IO adapter (Redis). Filtered by the receiver's target.",
		"ops", tsOpts{min: ptr(0.0)},
		q(`sum by (sender_target, target) (rate(soak_fanout_delivered_total{`+selTarget+`}[$__rate_interval]))`, "delivered {{sender_target}} → {{target}}"),
		q(`sum by (sender_target, target) (rate(soak_fanout_lost_total{`+selTarget+`}[$__rate_interval]))`, "lost {{sender_target}} → {{target}}"),
		q(`sum by (target) (rate(soak_fanout_sent_total{`+selTarget+`}[$__rate_interval]))`, "sent by {{target}}"),
		q(`sum by (target) (rate(soak_fanout_send_failures_total{`+selTarget+`}[$__rate_interval]))`, "send failures {{target}}"),
	))
	l.add(8, 8, timeseries("Fan-out loss ratio per pair",
		"Share of expected fan-out deliveries lost (not arrived within SOAK_FANOUT_TIMEOUT) over 5 minutes, per sender target → receiver target (recording rule sender_target_target:soak_fanout_lost:ratio_rate5m, used by SoakFanoutLoss). Loss on the cross-replica pairs only, with same-replica pairs at 0, points to the adapter (Redis) between replicas.",
		"percentunit", tsOpts{min: ptr(0.0), thresholds: steps("green", 1e-9, "red"), thresholdStyle: "line"},
		q(`sender_target_target:soak_fanout_lost:ratio_rate5m{`+selTarget+`}`, "{{sender_target}} → {{target}} @ {{instance}}"),
	))
	l.add(8, 8, timeseries("Fan-out latency p50/p95 per pair",
		"p50 and p95 of fan-out delivery latency from the send to the arrival at another pool client, both on the agent's own clock (no clock skew), per sender target → receiver target, every pair including same-replica ones. Red line: the 0.5 s cross-replica threshold.",
		"s", tsOpts{min: ptr(0.0), thresholds: steps("green", fanoutCrossP95, "red"), thresholdStyle: "line"},
		q(quantile(0.5, "soak_fanout_latency_seconds", selTarget, "sender_target, target"), "p50 {{sender_target}} → {{target}}"),
		q(quantile(0.95, "soak_fanout_latency_seconds", selTarget, "sender_target, target"), "p95 {{sender_target}} → {{target}}"),
	))
	l.add(6, 8, timeseries("Cross-replica fan-out p95 vs 500 ms",
		"95th percentile of fan-out delivery latency over 5 minutes for pairs whose sender and receiver targets differ (recording rule sender_target_target:soak_fanout_latency_seconds:cross_replica_p95_rate5m, used by SoakFanoutCrossReplicaLatencyHigh): messages that went through the adapter (Redis) to another replica. No data with a single target. Red line: 0.5 s.",
		"s", tsOpts{min: ptr(0.0), thresholds: steps("green", fanoutCrossP95, "red"), thresholdStyle: "line"},
		q(`sender_target_target:soak_fanout_latency_seconds:cross_replica_p95_rate5m{`+selTarget+`}`, "{{sender_target}} → {{target}} @ {{instance}}"),
	))
	l.add(6, 8, timeseries("Server push events",
		"Server-push probe (SOAK_PUSH_EVENT), events per second per target: received (every copy), lost (sequence gaps within a client session, SoakPushLoss), missed (gaps across a reconnect: not loss), duplicated, out of order, malformed (no readable sequence field).",
		"ops", tsOpts{min: ptr(0.0)},
		q(`sum by (target) (rate(soak_push_received_total{`+selTarget+`}[$__rate_interval]))`, "received {{target}}"),
		q(`sum by (target) (rate(soak_push_lost_total{`+selTarget+`}[$__rate_interval]))`, "lost {{target}}"),
		q(`sum by (target) (rate(soak_push_missed_total{`+selTarget+`}[$__rate_interval]))`, "missed (reconnect) {{target}}"),
		q(`sum by (target) (rate(soak_push_duplicated_total{`+selTarget+`}[$__rate_interval]))`, "duplicated {{target}}"),
		q(`sum by (target) (rate(soak_push_out_of_order_total{`+selTarget+`}[$__rate_interval]))`, "out of order {{target}}"),
		q(`sum by (target) (rate(soak_push_malformed_total{`+selTarget+`}[$__rate_interval]))`, "malformed {{target}}"),
	))
	l.add(6, 8, timeseries("Server push loss ratio",
		"Share of server-push sequence numbers lost within client sessions, lost / (received + lost), over 5 minutes (recording rule target:soak_push_lost:ratio_rate5m, used by SoakPushLoss). Anything above 0 is loss.",
		"percentunit", tsOpts{min: ptr(0.0), thresholds: steps("green", 1e-9, "red"), thresholdStyle: "line"},
		q(`target:soak_push_lost:ratio_rate5m{`+selTarget+`}`, "{{target}} @ {{instance}}"),
	))
	l.add(6, 8, timeseries("Server push latency p95",
		"95th percentile of one-way server-push latency from the event's timestamp field to its arrival. Only observed when SOAK_PUSH_CLOCK_SHARED is set (agent and server share a clock, e.g. sidecar); empty otherwise.",
		"s", tsOpts{min: ptr(0.0)},
		q(quantile(0.95, "soak_push_latency_seconds", selTarget, "target"), "p95 {{target}}"),
	))

	l.row("Memory")
	l.add(12, 9, timeseries("Target memory with fitted trend",
		"Memory of the target as sampled (heap and RSS per source: scrape, procfs, self), the memory limit, and the fitted floor of the GC sawtooth at the end of each leak window (soak_leak_baseline_bytes, Theil-Sen): a floor that keeps rising is a leak, a sawtooth over a flat floor is not.",
		"bytes", tsOpts{},
		q(`soak_memory_bytes{`+selAgent+`}`, "{{kind}} via {{source}} @ {{instance}}"),
		q(`soak_leak_baseline_bytes{`+selWindow+`}`, "fitted floor {{kind}} via {{source}} ({{window}})"),
		q(`soak_memory_limit_bytes{`+selAgent+`}`, "limit {{kind}} via {{source}}"),
	))
	l.add(12, 9, timeseries("Leak slope (floor Theil-Sen and raw OLS)",
		"Growth rate of the target's memory per window: theil_sen is the slope of the sawtooth floor (what the detector judges), ols the old suite's least squares on raw samples (reported for comparison; the old pass rule was < 5 MB/h).",
		"Bps", tsOpts{},
		q(`soak_leak_slope_bytes_per_second{`+selWindow+`}`, "{{estimator}} {{kind}} via {{source}} ({{window}})"),
	))
	l.add(8, 8, stateTimeline("Leak verdicts",
		"soak_leak_suspected per source, kind and window: red while the detector (floor trend, significance and persistence guard) suspects a leak. Held for 15 minutes it fires SoakMemoryLeakSuspected.",
		"bool_yes_no", "no leak", "leak suspected", "red",
		q(`soak_leak_suspected{`+selWindow+`}`, "{{kind}} via {{source}} ({{window}})"),
	))
	l.add(8, 8, stat("Time to memory limit",
		"Projected time until the target's memory reaches its limit at the fitted floor slope (empty or infinite when memory is not growing or no limit is known). Red below 4 hours, as SoakMemoryLimitProjected.",
		"s", steps("red", float64(limitWarnSeconds), "orange", float64(6*limitWarnSeconds), "green"),
		q(`soak_leak_seconds_to_limit{`+selWindow+`}`, "{{kind}} via {{source}} ({{window}})"),
	))
	l.add(8, 8, timeseries("Fit quality: trend p-value and R²",
		"One-sided Mann-Kendall (Hamed-Rao) p-value of the upward trend (low means significant) and R² of the fits. R² alone was the old suite's confidence; the GC sawtooth keeps it low on raw heap.",
		"percentunit", tsOpts{min: ptr(0.0), max: ptr(1.0)},
		q(`soak_leak_trend_p_value{`+selWindow+`}`, "p-value {{kind}} via {{source}} ({{window}})"),
		q(`soak_leak_r_squared{`+selWindow+`}`, "R² {{estimator}} {{kind}} via {{source}} ({{window}})"),
	))
	l.add(12, 7, timeseries("Leak window samples",
		"Samples in each leak window; a verdict needs a full window, so a low count after a restart of the target explains a missing verdict.",
		"short", tsOpts{min: ptr(0.0)},
		q(`soak_leak_window_samples{`+selWindow+`}`, "{{kind}} via {{source}} ({{window}})"),
	))
	l.add(12, 7, leakStateTimeline("Leak detector state",
		"What the leak detector says per source and kind (soak_leak_state): warming up (no verdict yet: the window is not full, the first 3 h after a (re)start, or gaps; the reason label and the landing page say which), no leak, or leak suspected by at least one window (unheld: the alert reads soak_leak_suspected). Visible from the first samples, long before a verdict.",
		q(`max by (instance, source, kind) (2 * soak_leak_state{`+selAgent+`,state="leak_suspected"} or soak_leak_state{`+selAgent+`,state="no_leak"} or 0 * soak_leak_state{`+selAgent+`,state="warming_up"})`, "{{kind}} via {{source}}"),
	))
	l.add(12, 7, stateTimeline("Daily cycle shown",
		"1 once the target's memory floor has shown a daily cycle since its last restart (soak_leak_daily_cycle, SOAK_LEAK_CYCLE): from then on every window is judged against the floor a day earlier, so the daily rise is not read as a leak. Before it (the first 34 h at least) a daily rise can raise a leak alert.",
		"bool_yes_no", "no cycle seen", "daily cycle", "blue",
		q(`soak_leak_daily_cycle{`+selAgent+`}`, "{{kind}} via {{source}}"),
	))
	l.add(12, 7, timeseries("Memory sample errors",
		"Failed memory samples per second, per source (scrape URL unreachable, process not found in /proc...). Errors leave gaps in the leak windows.",
		"ops", tsOpts{min: ptr(0.0)},
		q(`sum by (instance, source) (rate(soak_memory_sample_errors_total{`+selAgent+`}[$__rate_interval]))`, "{{source}} @ {{instance}}"),
	))

	l.row("Agent")
	l.add(6, 7, timeseries("Agent CPU",
		"CPU used by the agent process itself (1 = one core), from process_cpu_seconds_total.",
		"percentunit", tsOpts{min: ptr(0.0)},
		q(`rate(process_cpu_seconds_total{`+selAgent+`}[$__rate_interval])`, "{{instance}}"),
	))
	l.add(6, 7, timeseries("Agent memory",
		"Resident memory of the agent process and its Go heap in use. Steady growth here is the agent's problem, not the target's.",
		"bytes", tsOpts{min: ptr(0.0)},
		q(`process_resident_memory_bytes{`+selAgent+`}`, "RSS {{instance}}"),
		q(`go_memstats_heap_inuse_bytes{`+selAgent+`}`, "Go heap in use {{instance}}"),
	))
	l.add(6, 7, timeseries("Agent goroutines",
		"Goroutines of the agent. It should track the pool size; unbounded growth is an agent leak.",
		"short", tsOpts{min: ptr(0.0)},
		q(`go_goroutines{`+selAgent+`}`, "{{instance}}"),
	))
	l.add(6, 7, timeseries("Agent dropped events",
		"Events the agent could not send because its own send backlog was full (agent overload, not a target fault): fires SoakAgentOverloaded when sustained.",
		"ops", tsOpts{min: ptr(0.0), thresholds: steps("green", 1e-9, "red"), thresholdStyle: "line"},
		q(`sum by (instance, target, event) (rate(soak_events_dropped_total{`+selTarget+`}[$__rate_interval]))`, "{{event}} {{target}} @ {{instance}}"),
	))
	l.add(12, 6, stateTimeline("Agent scrape status",
		"Prometheus' up series for each agent: red while a scrape fails (SoakAgentDown after 5 minutes).",
		"bool_on_off", "down", "up", "green",
		q(`up{`+selAgent+`}`, "{{instance}}"),
	))
	l.add(12, 6, stat("Agent version",
		"Version and revision of each agent (soak_build_info), to tell which build produced the figures.",
		"short", noThresholds(),
		q(`count by (version, revision, goversion) (soak_build_info{`+selAgent+`})`, "{{version}} ({{revision}}, {{goversion}})"),
	))

	l.row("Scenarios")
	l.add(8, 8, timeseries("Scenario steps by outcome",
		"Scenario probe (SOAK_SCENARIO_FILE): steps per second per step name, by outcome: answered in time, rejected (answered, but the step's assert failed: the application said no), lost (no answer within the step's timeout). Empty without a scenario.",
		"ops", tsOpts{min: ptr(0.0)},
		q(`sum by (step) (rate(soak_scenario_steps_answered_total{`+selTarget+`}[$__rate_interval]))`, "answered {{step}}"),
		q(`sum by (step) (rate(soak_scenario_steps_rejected_total{`+selTarget+`}[$__rate_interval]))`, "rejected {{step}}"),
		q(`sum by (step) (rate(soak_scenario_steps_lost_total{`+selTarget+`}[$__rate_interval]))`, "lost {{step}}"),
	))
	l.add(8, 8, timeseries("Scenario step latency p95",
		"95th percentile of each scenario step's latency, from its scheduled time (open loop) to its answer. Red line: the 0.2 s event latency threshold of the old suite.",
		"s", tsOpts{min: ptr(0.0), thresholds: steps("green", 0.2, "red"), thresholdStyle: "line"},
		q(quantile(0.95, "soak_scenario_step_latency_seconds", selTarget, "step"), "p95 {{step}}"),
	))
	l.add(8, 8, timeseries("Scenario flows",
		"Flows per second: completed (every step answered), aborted (a step lost or rejected), skipped (due on a client not connected or still in on_connect), and clients whose on_connect steps failed.",
		"ops", tsOpts{min: ptr(0.0)},
		q(`sum by (flow) (rate(soak_scenario_flows_completed_total{`+selTarget+`}[$__rate_interval]))`, "completed {{flow}}"),
		q(`sum by (flow) (rate(soak_scenario_flows_aborted_total{`+selTarget+`}[$__rate_interval]))`, "aborted {{flow}}"),
		q(`sum (rate(soak_scenario_flows_skipped_total{`+selTarget+`}[$__rate_interval]))`, "skipped"),
		q(`sum (rate(soak_scenario_connect_steps_failed_total{`+selTarget+`}[$__rate_interval]))`, "on_connect failed"),
	))

	l.row("Target vitals and evidence")
	l.add(8, 7, timeseries("Target CPU and event-loop lag",
		"The target's CPU (1 = one core, from its process_cpu_seconds_total) and, for Node, its event-loop lag, from the same scrape as its memory (SOAK_MEMORY_SCRAPE_URL): latency that rises with CPU at 100 % or a long event-loop lag is the target's own saturation.",
		"short", tsOpts{min: ptr(0.0)},
		q(`soak_target_cpu_ratio{`+selAgent+`}`, "cpu @ {{instance}}"),
		q(`soak_target_event_loop_lag_seconds{`+selAgent+`}`, "lag {{stat}} (s) @ {{instance}}"),
	))
	l.add(8, 7, stat("Heap captures",
		"Heap captures taken since the agent started, when a leak was suspected (SOAK_HEAP_SNAPSHOT), by result; the diff of what grew is logged and written beside the captures in SOAK_HEAP_SNAPSHOT_DIR.",
		"short", noThresholds(),
		q(`sum by (result) (soak_heap_snapshot_captures_total{`+selAgent+`})`, "{{result}}"),
	))
	l.add(8, 7, timeseries("Agent memory per client",
		"Memory the agent's Go runtime holds from the operating system divided by the clients connected now: what one more client costs the agent.",
		"bytes", tsOpts{min: ptr(0.0)},
		q(`soak_agent_memory_per_client_bytes{`+selAgent+`}`, "{{instance}}"),
	))
	return l.panels
}

func variables() []variable {
	queryVar := func(name, label, desc, query string) variable {
		return variable{
			Name: name, Label: label, Description: desc, Type: "query", Datasource: ds(),
			Query: query, Definition: query, Refresh: 2, Sort: 1,
			Multi: true, IncludeAll: true, AllValue: ".*",
			Current: map[string]any{}, Options: []any{},
		}
	}
	return []variable{
		{
			Name: "datasource", Label: "Data source", Description: "Prometheus data source that scrapes the soak-exporter agents.",
			Type: "datasource", Query: "prometheus", Refresh: 1,
			Current: map[string]any{}, Options: []any{},
		},
		queryVar("job", "Job", "Scrape job of the agents.", `label_values(soak_build_info, job)`),
		queryVar("instance", "Instance", "Agent instance.", `label_values(soak_build_info{job=~"$job"}, instance)`),
		queryVar("target", "Target", "Socket.IO target (SOAK_TARGET_NAME).", `label_values(soak_clients_desired{job=~"$job",instance=~"$instance"}, target)`),
		queryVar("window", "Leak window", "Leak detection window (SOAK_LEAK_WINDOWS).", `label_values(soak_leak_suspected{job=~"$job",instance=~"$instance"}, window)`),
	}
}

// Build returns the dashboard JSON, formatted as committed in
// soak-exporter.json.
func Build() ([]byte, error) {
	d := dashboard{
		Annotations:  annotations{List: []any{}},
		Description:  "Socket.IO soak test: pool, connection and event SLOs against the old suite's thresholds, fan-out across replicas and server push, target memory and leak detection, and the soak-exporter agent itself.",
		Editable:     true,
		GraphTooltip: 1,
		Links: []link{{
			Title: "Runbooks", Type: "link", Tags: []string{}, TargetBlank: true, Icon: "doc",
			URL:     "https://github.com/generic-corp/soak-exporter/blob/main/docs/runbooks.md",
			Tooltip: "What each Soak alert means and what to do",
		}},
		Panels:        panels(),
		Refresh:       "30s",
		SchemaVersion: 39,
		Tags:          []string{"soak-exporter", "socket.io", "slo"},
		Templating:    templating{List: variables()},
		Time:          timeRange{From: "now-6h", To: "now"},
		Timepicker:    map[string]any{},
		Timezone:      "",
		Title:         "Soak exporter",
		UID:           UID,
		Version:       1,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode dashboard: %w", err)
	}
	return buf.Bytes(), nil
}
