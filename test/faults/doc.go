// Package faults holds the agent's fault-survival tests: the whole pool
// (internal/agent with the native driver) runs against the Node fixture, a
// fake Engine.IO server, a TCP proxy that cuts connections, a silent
// listener, a refused port or a name that does not resolve, and the tests
// check that every fault shows under the right reason in the metrics, that
// every event is accounted for (sent = acked + lost + in flight), that
// /metrics keeps answering, that the pool recovers, and that nothing leaks
// (goroutines, heap, file descriptors) over many reconnect cycles.
//
// All traffic stays on loopback; even the DNS test answers its lookups from a
// local fake resolver. The tests need the fixture's dependencies:
//
//	npm ci --prefix test/fixture/node
//	go test -race ./test/faults
//
// BenchmarkSelfSoak runs the agent against the fixture for a long time
// (SOAK_SELF_SOAK_DURATION, 30m by default) with kicks every minute and
// judges the agent's own RSS with its own leak detector; see
// docs/benchmarks-self-soak.md.
package faults
