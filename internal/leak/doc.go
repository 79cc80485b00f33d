// Package leak samples the memory of the target (and of the agent itself)
// and tells when it is leaking.
//
// Sources (Sampler): scrape reads the target's Prometheus endpoint, procfs
// reads a process in the same PID namespace, self reads the agent. Each
// reading is a series (source, kind) with kind heap or rss. A Monitor owns
// the sampling ticker: every SOAK_MEMORY_INTERVAL it samples every source
// (a failing source is counted in soak_memory_sample_errors_total and
// retried next time, never fatal), feeds one detector per series (package
// detect) and every SOAK_LEAK_EVALUATE_INTERVAL re-evaluates them; a
// Collector exports the last evaluation, so scrapes do no detection work.
//
// The statistics are in package stats, the detector in package detect, the
// offline `leak analyze` command in package analyze and the quality
// benchmark in package quality. See docs/leak-detection.md.
package leak
