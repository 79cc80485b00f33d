package prometheus

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// TestOverrides shortens the durations of a rule file for an end-to-end
// test. A zero field leaves that part of the file alone. Durations are only
// ever shortened: a value already shorter than the override is kept.
type TestOverrides struct {
	// For caps every alert's `for:` (and keep_firing_for).
	For time.Duration
	// Window caps every range selector in every expression, for example
	// rate(x[5m]) becomes rate(x[30s]) with Window 30s. Subqueries
	// ([5m:1m]) are left alone; the shipped file has none.
	Window time.Duration
	// Interval sets every group's evaluation interval.
	Interval time.Duration
}

// rangeSelector matches a range selector such as [5m] or [1h30m] (not a
// subquery, which has a colon).
func rangeSelector() *regexp.Regexp {
	return regexp.MustCompile(`\[((?:[0-9]+(?:ms|[smhdwy]))+)\]`)
}

// DeriveTestRules returns a copy of the rule file src with the overrides
// applied. Names, expressions (except their range windows), labels and
// annotations stay as they are, and so do comments, so the copy can be
// diffed against the shipped file. It is meant for tests only: the shipped
// file keeps its production durations.
func DeriveTestRules(src []byte, o TestOverrides) ([]byte, error) {
	for _, d := range []time.Duration{o.For, o.Window, o.Interval} {
		if d < 0 {
			return nil, fmt.Errorf("derive test rules: negative duration %s", d)
		}
	}
	if _, err := ParseRuleFile(src); err != nil {
		return nil, fmt.Errorf("derive test rules: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("derive test rules: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("derive test rules: not a YAML document")
	}
	groups := mappingValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil, errors.New("derive test rules: no groups")
	}
	for _, g := range groups.Content {
		if o.Interval > 0 {
			setMappingValue(g, "interval", promDuration(o.Interval))
		}
		rules := mappingValue(g, "rules")
		if rules == nil {
			continue
		}
		for _, r := range rules.Content {
			for _, key := range []string{"for", "keep_firing_for"} {
				if v := mappingValue(r, key); v != nil && o.For > 0 {
					short, err := capDuration(v.Value, o.For)
					if err != nil {
						return nil, fmt.Errorf("derive test rules: %s: %w", key, err)
					}
					v.Value = short
				}
			}
			if v := mappingValue(r, "expr"); v != nil && o.Window > 0 {
				expr, err := capRanges(v.Value, o.Window)
				if err != nil {
					return nil, fmt.Errorf("derive test rules: expr: %w", err)
				}
				v.Value = expr
			}
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("derive test rules: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("derive test rules: encode: %w", err)
	}
	return out.Bytes(), nil
}

// capRanges replaces every range selector longer than limit with limit.
func capRanges(expr string, limit time.Duration) (string, error) {
	var firstErr error
	out := rangeSelector().ReplaceAllStringFunc(expr, func(m string) string {
		short, err := capDuration(m[1:len(m)-1], limit)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return "[" + short + "]"
	})
	return out, firstErr
}

// capDuration returns the shorter of the Prometheus duration s and limit,
// formatted as a Prometheus duration.
func capDuration(s string, limit time.Duration) (string, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return "", fmt.Errorf("parse duration %q: %w", s, err)
	}
	if time.Duration(d) <= limit {
		return s, nil
	}
	return promDuration(limit), nil
}

func promDuration(d time.Duration) string { return model.Duration(d).String() }

// mappingValue returns the value node of key in mapping node m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setMappingValue sets key to a plain scalar value in mapping node m,
// inserting the key after "name" when it is missing.
func setMappingValue(m *yaml.Node, key, value string) {
	if v := mappingValue(m, key); v != nil {
		v.Kind, v.Tag, v.Value, v.Style = yaml.ScalarNode, "!!str", value, 0
		return
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	at := 0
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "name" {
			at = i + 2
		}
	}
	m.Content = append(m.Content[:at], append([]*yaml.Node{k, v}, m.Content[at:]...)...)
}
