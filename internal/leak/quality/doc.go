// Package quality is the seeded synthetic benchmark that holds the leak
// detectors to account, built from the specification in
// shared/reference/leak-detection.md: series sampled every 5 s for 96 h with
// a GC sawtooth, a slow AR(1) wander of the live set, white noise, and
// families steady, warm-up, level steps and diurnal swing; leaks of 1, 5 and
// 25 MB/h start at hour 36. Detectors are evaluated every 5 minutes and a
// verdict counts once it has held for 15 minutes (like an alert with
// `for: 15m`).
//
// It compares the old suite's rule, least squares on the raw heap (with a
// threshold tuned to at most 0.05 false alarms a day on steady series) and
// the robust detector of package detect with its default configuration, and
// prints false alarms per simulated day and detection delays. Run it with
// `go run ./internal/leak/cmd/leakbench`.
package quality
