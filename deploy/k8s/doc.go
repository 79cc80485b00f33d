// Package k8s holds soak-exporter's Kubernetes manifests (a Kustomize base
// and the sidecar and standalone overlays, see README.md), the generator of
// base/prometheusrule.yaml from deploy/prometheus/soak-exporter.rules.yml,
// and the tests that decode every manifest strictly.
//
// Regenerate the PrometheusRule after changing the rule file with
//
//	go generate ./deploy/k8s
package k8s

//go:generate go run ./gen -o base/prometheusrule.yaml
