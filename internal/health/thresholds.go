// Package health keeps a short rolling window of what the agent sees per
// target (connections, probe outcomes, latencies), answers "last minute /
// last ten minutes" questions for the landing page, and logs one warning
// when a target's state changes against the alert thresholds (and one line
// when it recovers), never one line per event.
package health

import "time"

// The alert thresholds of deploy/prometheus/soak-exporter.rules.yml, in ONE
// place for the landing page and the logs. thresholds_test.go checks that
// they equal the rule file's numbers.
const (
	// ConnectSuccessMin: SoakConnectionSuccessRatioLow fires below it.
	ConnectSuccessMin = 0.995
	// ConnectSuccessFor is that alert's `for:`.
	ConnectSuccessFor = 10 * time.Minute
	// ConnectMinAttemptRate (attempts per second) guards the connect alerts.
	ConnectMinAttemptRate = 0.05
	// ConnectP95Max: SoakConnectionLatencyHigh fires above it.
	ConnectP95Max = 500 * time.Millisecond
	// ConnectP95For is that alert's `for:`.
	ConnectP95For = 15 * time.Minute
	// EventP95Max: SoakEventLatencyHigh fires above it.
	EventP95Max = 200 * time.Millisecond
	// EventP95For is that alert's `for:`.
	EventP95For = 10 * time.Minute
	// EventLossMax: SoakEventLoss fires when the loss ratio is above it.
	EventLossMax = 0.0
	// EventLossFor is that alert's `for:`.
	EventLossFor = 10 * time.Minute
	// DisconnectRateMax: SoakDisconnectRateHigh fires when abnormal
	// disconnects per desired client per minute are above it.
	DisconnectRateMax = 0.01
	// DisconnectRateFor is that alert's `for:`.
	DisconnectRateFor = 15 * time.Minute
	// PoolBelowFor is SoakPoolBelowDesired's `for:`.
	PoolBelowFor = 10 * time.Minute
	// LeakFor is SoakMemoryLeakSuspected's `for:`.
	LeakFor = 15 * time.Minute
	// DroppedMax: SoakAgentOverloaded fires when the dropped rate is above it.
	DroppedMax = 0.0
	// DroppedFor is that alert's `for:`.
	DroppedFor = 10 * time.Minute
)

// Alert names, as in the rule file.
const (
	AlertConnectSuccess = "SoakConnectionSuccessRatioLow"
	AlertConnectLatency = "SoakConnectionLatencyHigh"
	AlertEventLatency   = "SoakEventLatencyHigh"
	AlertEventLoss      = "SoakEventLoss"
	AlertDisconnects    = "SoakDisconnectRateHigh"
	AlertPoolBelow      = "SoakPoolBelowDesired"
	AlertLeak           = "SoakMemoryLeakSuspected"
	AlertOverloaded     = "SoakAgentOverloaded"
)
