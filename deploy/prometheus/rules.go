package prometheus

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/generic-corp/soak-exporter/internal/contract"
)

// RuleFileName is the file name of the shipped rule file, relative to this
// package's directory.
const RuleFileName = "soak-exporter.rules.yml"

// RunbookBaseURL is where every alert's runbook_url points to, followed by
// "#" and the lower-case alert name.
const RunbookBaseURL = "https://github.com/generic-corp/soak-exporter/blob/main/docs/runbooks.md"

// AgentJobRegex is the job label pattern the agent alerts expect: scrape
// the agent under a job whose name starts with "soak-exporter".
const AgentJobRegex = "soak-exporter.*"

//go:embed soak-exporter.rules.yml
var shippedRuleFile string

// ShippedRuleFile returns a copy of the shipped rule file, soak-exporter.rules.yml.
func ShippedRuleFile() []byte { return []byte(shippedRuleFile) }

// RuleFile is a Prometheus rule file, as far as soak-exporter uses it.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is one group of a rule file.
type RuleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Limit    int    `yaml:"limit,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is a recording rule (Record set) or an alerting rule (Alert set).
type Rule struct {
	Record        string            `yaml:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

// ParseRuleFile decodes a rule file strictly: unknown fields, a second YAML
// document and rules that are neither or both recording and alerting fail.
func ParseRuleFile(data []byte) (*RuleFile, error) {
	var f RuleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode rule file: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode rule file: more than one YAML document")
	}
	for _, g := range f.Groups {
		for i, r := range g.Rules {
			if (r.Record == "") == (r.Alert == "") {
				return nil, fmt.Errorf("rule group %q, rule %d: exactly one of record and alert must be set", g.Name, i)
			}
			if strings.TrimSpace(r.Expr) == "" {
				return nil, fmt.Errorf("rule group %q, rule %d: empty expr", g.Name, i)
			}
		}
	}
	return &f, nil
}

// Alerts returns the alerting rules of every group, in file order.
func (f *RuleFile) Alerts() []Rule {
	var out []Rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// Records returns the recording rules of every group, in file order.
func (f *RuleFile) Records() []Rule {
	var out []Rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// RecordNames returns the names of the recording rules, in file order.
func (f *RuleFile) RecordNames() []string {
	var out []string
	for _, r := range f.Records() {
		out = append(out, r.Record)
	}
	return out
}

// RunbookURL returns the runbook_url an alert named alert must carry.
func RunbookURL(alert string) string {
	return RunbookBaseURL + "#" + strings.ToLower(alert)
}

// ContractMetricNames returns the metric families of the agent's metric
// contract, without histogram series suffixes: what the agent registers, as
// package contract derives it from the agent's own constructors. It is
// empty if the agent cannot be built (then every check against it fails).
func ContractMetricNames() []string {
	fams, err := contract.Families()
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(fams))
	for _, f := range fams {
		out = append(out, f.Name)
	}
	return out
}

// ContractHistogramNames returns the contract's histogram families, whose
// classic series carry the _bucket, _sum and _count suffixes.
func ContractHistogramNames() []string {
	fams, err := contract.Families()
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range fams {
		if f.Histogram {
			out = append(out, f.Name)
		}
	}
	return out
}

// IsAllowedMetric reports whether an expression may use the metric name:
// a contract name (with a histogram suffix where the family is a
// histogram), one of extra (for example recording rule names), the agent's
// own go_* and process_* metrics, or Prometheus' synthetic up.
func IsAllowedMetric(name string, extra []string) bool {
	switch {
	case name == "up",
		strings.HasPrefix(name, "go_"),
		strings.HasPrefix(name, "process_"),
		slices.Contains(ContractMetricNames(), name),
		slices.Contains(extra, name):
		return true
	}
	for _, h := range ContractHistogramNames() {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if name == h+suffix {
				return true
			}
		}
	}
	return false
}
