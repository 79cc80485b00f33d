// Package bench holds the agent's capacity benchmark: 10,000 clients held
// against the Node fixture at 2,000 acked events per second, per driver. It
// has no production code; run it with `make bench` (scripts/bench.sh), which
// writes the figures to docs/benchmarks.md.
package bench
