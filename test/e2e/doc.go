// Package e2e holds soak-exporter's end-to-end test: the agent binary, the
// Node Socket.IO fixture, a real Prometheus (Debian package, 2.42) loading a
// derived copy of deploy/prometheus/soak-exporter.rules.yml with short
// durations, and a real Alertmanager (0.25), all on 127.0.0.1. Faults are
// injected into the fixture one at a time and each matching alert must
// arrive at Alertmanager and then resolve; every Grafana panel query of
// deploy/grafana must return data from that Prometheus.
//
// It runs with the rest of the suite (`go test ./...`, `make test`) and takes
// about three minutes. It needs node with the fixture's packages,
// prometheus, promtool and prometheus-alertmanager on PATH: `make deps`
// installs them; when one is missing the test fails and says so.
package e2e
