package grafana

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestQueriesParse checks every panel query (variables expanded) with
// Prometheus' own parser, by loading them as recording rules into
// `promtool check rules`.
func TestQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found on PATH: install it with " +
			"`apt-get install -y --no-install-recommends prometheus` (Debian package, Prometheus 2.42+)")
	}
	qs, err := PanelQueries()
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, q := range qs {
		e, err := Expand(q.Expr, DefaultVars("1m"))
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel%d:%s", q.PanelID, q.RefID), Expr: e})
	}
	file := map[string]any{"groups": []any{map[string]any{"name": "dashboard-queries", "rules": rules}}}
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "queries.rules.yml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", p).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard queries: %v\n%s", err, out)
	}
}
