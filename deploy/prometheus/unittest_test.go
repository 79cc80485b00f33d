package prometheus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

// The promtool unit test file format (Prometheus 2.42), decoded strictly so
// that a misspelt key in tests/*.yml fails here.
type unitTestFile struct {
	RuleFiles          []string        `yaml:"rule_files"`
	EvaluationInterval string          `yaml:"evaluation_interval,omitempty"`
	GroupEvalOrder     []string        `yaml:"group_eval_order,omitempty"`
	Tests              []unitTestGroup `yaml:"tests"`
}

type unitTestGroup struct {
	Name           string            `yaml:"name,omitempty"`
	Interval       string            `yaml:"interval,omitempty"`
	InputSeries    []inputSeries     `yaml:"input_series"`
	AlertRuleTests []alertTestCase   `yaml:"alert_rule_test,omitempty"`
	PromQLTests    []promqlTestCase  `yaml:"promql_expr_test,omitempty"`
	ExternalLabels map[string]string `yaml:"external_labels,omitempty"`
	ExternalURL    string            `yaml:"external_url,omitempty"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertTestCase struct {
	EvalTime  string     `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels,omitempty"`
	ExpAnnotations map[string]string `yaml:"exp_annotations,omitempty"`
}

type promqlTestCase struct {
	Expr       string      `yaml:"expr"`
	EvalTime   string      `yaml:"eval_time"`
	ExpSamples []expSample `yaml:"exp_samples"`
}

type expSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

func loadUnitTests(t *testing.T) map[string]unitTestFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool test files in tests/: %v", err)
	}
	out := map[string]unitTestFile{}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f unitTestFile
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(f.RuleFiles) != 1 || f.RuleFiles[0] != "../"+RuleFileName {
			t.Fatalf("%s: rule_files = %v, want [../%s]", p, f.RuleFiles, RuleFileName)
		}
		out[p] = f
	}
	return out
}

// selectCases keeps, from every test file, the alert_rule_test cases of one
// alert that expect it to fire (firing true) or expect silence (false).
func selectCases(files map[string]unitTestFile, alert string, firing bool) (unitTestFile, int) {
	sel := unitTestFile{EvaluationInterval: "1m"}
	n := 0
	for _, f := range files {
		for _, g := range f.Tests {
			var cases []alertTestCase
			for _, c := range g.AlertRuleTests {
				if c.Alertname == alert && (len(c.ExpAlerts) > 0) == firing {
					cases = append(cases, c)
				}
			}
			if len(cases) == 0 {
				continue
			}
			g.AlertRuleTests, g.PromQLTests = cases, nil
			sel.Tests = append(sel.Tests, g)
			n += len(cases)
		}
	}
	return sel, n
}

// TestEveryAlertIsTestedBothWays proves with mutants that every alert has
// promtool tests that see it fire and tests that see it stay silent after
// its `for:` has elapsed: the firing cases must fail against a rule file in
// which the alert can never fire, and the silent cases must fail against one
// in which it always fires; both pass against the shipped rules.
func TestEveryAlertIsTestedBothWays(t *testing.T) {
	soaktest.Integration(t, "promtool")
	files := loadUnitTests(t)
	orig := shipped(t)
	for _, a := range orig.Alerts() {
		for _, firing := range []bool{true, false} {
			name := a.Alert + "/silent"
			mutantExpr := "vector(1)" // always fires once for: has elapsed
			if firing {
				name = a.Alert + "/fires"
				mutantExpr = "absent(vector(1))" // never returns anything
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sel, n := selectCases(files, a.Alert, firing)
				if n == 0 {
					t.Fatalf("no promtool test case with firing=%v for %s in tests/*.yml", firing, a.Alert)
				}
				dir := t.TempDir()
				shippedPath, err := filepath.Abs(RuleFileName)
				if err != nil {
					t.Fatal(err)
				}
				mutant := mutate(t, orig, a.Alert, mutantExpr)
				mutantPath := filepath.Join(dir, "mutant.rules.yml")
				if err := os.WriteFile(mutantPath, mutant, 0o600); err != nil {
					t.Fatal(err)
				}
				for _, tc := range []struct {
					rules    string
					wantPass bool
				}{{shippedPath, true}, {mutantPath, false}} {
					sel.RuleFiles = []string{tc.rules}
					b, err := yaml.Marshal(sel)
					if err != nil {
						t.Fatal(err)
					}
					p := filepath.Join(dir, fmt.Sprintf("selected-%v.test.yml", tc.wantPass))
					if err := os.WriteFile(p, b, 0o600); err != nil {
						t.Fatal(err)
					}
					out, err := runPromtool(t, "test", "rules", p)
					if (err == nil) != tc.wantPass {
						t.Errorf("promtool test rules with %s: passed=%v, want %v\n%s", filepath.Base(tc.rules), err == nil, tc.wantPass, out)
					}
				}
			})
		}
	}
}

func mutate(t *testing.T, f *RuleFile, alert, expr string) []byte {
	t.Helper()
	m := RuleFile{}
	for _, g := range f.Groups {
		ng := g
		ng.Rules = append([]Rule(nil), g.Rules...)
		for i := range ng.Rules {
			if ng.Rules[i].Alert == alert {
				ng.Rules[i].Expr = expr
			}
		}
		m.Groups = append(m.Groups, ng)
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
