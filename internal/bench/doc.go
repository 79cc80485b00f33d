// Package bench holds the agent's capacity benchmark: 10,000 clients held
// against the Node fixture at 2,000 acked events per second, per driver, and
// the same load held by the npm socket.io-client in one Node process as an
// anchor. It has no production code; run it with `make bench`
// (scripts/bench.sh), which writes the figures to docs/benchmarks.md.
package bench
