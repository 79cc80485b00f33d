// Command gen writes deploy/k8s/base/prometheusrule.yaml from the shipped
// Prometheus rule file. Run it through `go generate ./deploy/k8s`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/generic-corp/soak-exporter/deploy/k8s"
	"github.com/generic-corp/soak-exporter/deploy/prometheus"
)

func main() {
	out := flag.String("o", k8s.PrometheusRuleFile, "file to write")
	flag.Parse()
	b, err := k8s.PrometheusRule(prometheus.ShippedRuleFile())
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}
