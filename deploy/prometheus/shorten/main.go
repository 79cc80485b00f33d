// Command shorten writes a copy of soak-exporter's Prometheus rule file with
// shorter `for:` durations, range windows and evaluation intervals, for
// end-to-end tests that must see alerts fire and resolve within minutes.
// The shipped rule file is never changed.
//
// Usage:
//
//	go run ./deploy/prometheus/shorten -for 20s -window 1m -interval 5s -o /tmp/soak-e2e.rules.yml
//
// Without -in it reads the shipped file embedded in package
// deploy/prometheus; without -o it writes to standard output.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/generic-corp/soak-exporter/deploy/prometheus"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shorten", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o prometheus.TestOverrides
	fs.DurationVar(&o.For, "for", 0, "cap every alert's for: (0 keeps the shipped value)")
	fs.DurationVar(&o.Window, "window", 0, "cap every range selector, e.g. [5m] (0 keeps them)")
	fs.DurationVar(&o.Interval, "interval", 0, "set every group's evaluation interval (0 keeps the global one)")
	in := fs.String("in", "", "rule file to read (default: the shipped "+prometheus.RuleFileName+")")
	out := fs.String("o", "", "file to write (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	src := prometheus.ShippedRuleFile()
	if *in != "" {
		b, err := os.ReadFile(*in)
		if err != nil {
			fmt.Fprintf(stderr, "shorten: %v\n", err)
			return 1
		}
		src = b
	}
	derived, err := prometheus.DeriveTestRules(src, o)
	if err != nil {
		fmt.Fprintf(stderr, "shorten: %v\n", err)
		return 1
	}
	if *out == "" {
		if _, err := stdout.Write(derived); err != nil {
			fmt.Fprintf(stderr, "shorten: %v\n", err)
			return 1
		}
		return 0
	}
	if err := os.WriteFile(*out, derived, 0o644); err != nil {
		fmt.Fprintf(stderr, "shorten: %v\n", err)
		return 1
	}
	return 0
}
