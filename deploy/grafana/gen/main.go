// Command gen writes soak-exporter's Grafana dashboard JSON
// (deploy/grafana/soak-exporter.json) from the Go builder in package
// grafana. Run it through `go generate ./deploy/grafana`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/generic-corp/soak-exporter/deploy/grafana"
)

func main() {
	out := flag.String("o", "soak-exporter.json", "file to write")
	flag.Parse()
	b, err := grafana.Build()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}
