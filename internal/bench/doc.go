// Package bench holds the agent's capacity benchmark: 10,000 clients held
// against the Node fixture at 2,000 acked events per second, per driver, and
// the same load held by the npm socket.io-client in one Node process as an
// anchor, each against two bare TCP echo clients measured in the same run
// (one in Go with a goroutine per connection, one in C on one epoll set:
// testdata/epollclient.c). It has no production code; run it with `make
// bench` (scripts/bench.sh), which writes the figures to
// docs/benchmarks-latest.md.
package bench
