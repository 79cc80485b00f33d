// Package oneshot is the one-shot CI mode of soak-exporter: the `loadtest`
// and `leaktest` subcommands, which replace the old TypeScript performance
// suite's websocket-load-test and memory-leak-test with the same positional
// parameters, a printed report, pass criteria and exit codes.
//
// Both run on the continuous agent's engine: an agent.Pool with a probe
// driver and probe.Metrics on a fresh registry, and for leaktest the leak
// package's memory sources and detector. Nothing here reimplements the pool,
// the probes or the detector; this package only schedules a bounded run,
// keeps exact percentiles through the pool's taps, and writes the report.
//
// The report is printed as text and, on request, written as JSON (every
// figure), as a self-contained HTML page (inline SVG charts: latency over
// time from a bounded per-interval timeline fed by the observer, the
// connect-time distribution, memory with the least-squares line and the
// robust floor) and as JUnit XML (one test case per criterion). Each
// failed criterion comes with action items: what to look at, as the old
// suite's README advised, completed with what the run measured.
//
// Exit status: 0 every criterion met, 1 a criterion failed (or the run was
// interrupted), 2 bad usage, bad configuration, or the target (or, for
// leaktest, the memory source) unreachable at start.
//
// See docs/ci-mode.md for the mapping from the old suite's commands.
package oneshot
