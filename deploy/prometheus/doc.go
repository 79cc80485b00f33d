// Package prometheus ships soak-exporter's Prometheus rule file
// (soak-exporter.rules.yml: recording rules and the Soak* alerts) and the
// helpers that other artefacts and tests build on it:
//
//   - ShippedRuleFile returns the shipped file, embedded, byte for byte.
//   - ParseRuleFile decodes a rule file strictly into RuleFile.
//   - DeriveTestRules derives a copy for end-to-end tests with shorter
//     `for:` durations, range windows and evaluation intervals, so the shipped
//     file itself never has to be weakened. The command in ./shorten wraps it.
//   - ExprMetricNames and IsAllowedMetric check that expressions (rules and
//     dashboard queries) only use the metric contract of the agent.
//
// The promtool unit tests live in tests/ and run with
//
//	promtool check rules deploy/prometheus/soak-exporter.rules.yml
//	promtool test rules deploy/prometheus/tests/*.yml
//
// and through `go test ./deploy/prometheus/`, which needs promtool on PATH
// (apt-get install -y --no-install-recommends prometheus).
package prometheus
