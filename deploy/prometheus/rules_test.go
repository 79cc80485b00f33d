package prometheus

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

const promtoolHint = "promtool not found on PATH: install it with " +
	"`apt-get install -y --no-install-recommends prometheus` (Debian package, Prometheus 2.42+)"

// promtool returns the path of promtool or fails the test loudly.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal(promtoolHint)
	}
	return p
}

func runPromtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func shipped(t *testing.T) *RuleFile {
	t.Helper()
	f, err := ParseRuleFile(ShippedRuleFile())
	if err != nil {
		t.Fatalf("parse shipped rule file: %v", err)
	}
	return f
}

func TestShippedRuleFileMatchesDisk(t *testing.T) {
	disk, err := os.ReadFile(RuleFileName)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk, ShippedRuleFile()) {
		t.Fatal("embedded rule file differs from the file on disk; rebuild")
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	soaktest.Integration(t, "promtool")
	out, err := runPromtool(t, "check", "rules", RuleFileName)
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	soaktest.Integration(t, "promtool")
	files, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool test files in tests/: %v", err)
	}
	out, err := runPromtool(t, append([]string{"test", "rules"}, files...)...)
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

func TestAlertConventions(t *testing.T) {
	runbooks, err := os.ReadFile(filepath.Join("..", "..", "docs", "runbooks.md"))
	if err != nil {
		t.Fatalf("read docs/runbooks.md: %v", err)
	}
	anchors := markdownAnchors(string(runbooks))
	name := regexp.MustCompile(`^Soak[A-Z][a-z]+(?:[A-Z][a-z0-9]+)+$`)
	f := shipped(t)
	if len(f.Alerts()) == 0 {
		t.Fatal("no alerts")
	}
	seen := map[string]bool{}
	for _, a := range f.Alerts() {
		t.Run(a.Alert, func(t *testing.T) {
			if seen[a.Alert] {
				t.Errorf("duplicate alert name")
			}
			seen[a.Alert] = true
			if !name.MatchString(a.Alert) {
				t.Errorf("name %q is not CamelCase with the Soak prefix", a.Alert)
			}
			if s := a.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				t.Errorf("severity %q, want critical|warning|info", s)
			}
			keys := make([]string, 0, len(a.Annotations))
			for k := range a.Annotations {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"description", "runbook_url", "summary"}; !slices.Equal(keys, want) {
				t.Errorf("annotations %v, want exactly %v", keys, want)
			}
			if strings.Contains(a.Annotations["summary"], "{{") {
				t.Errorf("summary must be static: %q", a.Annotations["summary"])
			}
			if !strings.HasPrefix(strings.TrimSpace(a.Expr), "absent(") && !strings.Contains(a.Annotations["description"], "{{") {
				t.Errorf("description is not templated: %q", a.Annotations["description"])
			}
			if got, want := a.Annotations["runbook_url"], RunbookURL(a.Alert); got != want {
				t.Errorf("runbook_url %q, want %q", got, want)
			}
			if !anchors[strings.ToLower(a.Alert)] {
				t.Errorf("docs/runbooks.md has no section with anchor #%s", strings.ToLower(a.Alert))
			}
			d, err := model.ParseDuration(a.For)
			if err != nil {
				t.Fatalf("for: %q: %v", a.For, err)
			}
			if time.Duration(d) < 5*time.Minute {
				t.Errorf("for: %s is too short to ride out a blip (want >= 5m)", a.For)
			}
		})
	}
}

func TestRulesUseContractMetrics(t *testing.T) {
	f := shipped(t)
	records := f.RecordNames()
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			names := ExprMetricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s%s: no metric found in %q", r.Record, r.Alert, r.Expr)
			}
			for _, n := range names {
				if !IsAllowedMetric(n, records) {
					t.Errorf("%s%s: metric %q is not in the contract nor a recording rule", r.Record, r.Alert, n)
				}
			}
		}
	}
	// Recording rules must be defined before they are used in their group
	// (rules of a group run in order) and follow level:metric:operation.
	level := regexp.MustCompile(`^[a-z_]+:[a-z_]+:[a-z0-9_]+$`)
	for _, g := range f.Groups {
		var defined []string
		for _, r := range g.Rules {
			for _, n := range ExprMetricNames(r.Expr) {
				if slices.Contains(records, n) && slices.Contains(ruleNames(g), n) && !slices.Contains(defined, n) {
					t.Errorf("%s%s uses %s before the group defines it", r.Record, r.Alert, n)
				}
			}
			if r.Record != "" {
				if !level.MatchString(r.Record) {
					t.Errorf("recording rule %q is not level:metric:operation", r.Record)
				}
				defined = append(defined, r.Record)
			}
		}
	}
}

func ruleNames(g RuleGroup) []string {
	var out []string
	for _, r := range g.Rules {
		out = append(out, r.Record)
	}
	return out
}

// markdownAnchors returns the GitHub-style anchors of the headings in md.
func markdownAnchors(md string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		out[b.String()] = true
	}
	return out
}

func TestExprMetricNames(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"plain", `up`, []string{"up"}},
		{"rate with matchers", `rate(soak_events_sent_total{job=~"$job",target="a{b}"}[$__rate_interval])`, []string{"soak_events_sent_total"}},
		{"aggregation by before", `sum by (le, target) (rate(soak_event_latency_seconds_bucket[5m]))`, []string{"soak_event_latency_seconds_bucket"}},
		{"aggregation by after", `sum(rate(x_total[1m])) without (reason)`, []string{"x_total"}},
		{"binary ops and keywords", `a:b:c < 0.995 and on (job) group_left(target) d_total >= bool 1e3 or vector(0) unless e offset 5m`, []string{"a:b:c", "d_total", "e"}},
		{"quantile", `histogram_quantile(0.95, sum by (le) (rate(h_bucket{instance=~"${instance:regex}"}[5m])))`, []string{"h_bucket"}},
		{"strings skipped", `label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{"no metric", `vector(1) * 2`, nil},
		{"duplicates once", `x / x`, []string{"x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExprMetricNames(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("ExprMetricNames(%q) = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestIsAllowedMetric(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"soak_clients_connected", true},
		{"soak_event_latency_seconds_bucket", true},
		{"soak_connect_duration_seconds_count", true},
		{"soak_events_sent_total_bucket", false},
		{"process_cpu_seconds_total", true},
		{"go_goroutines", true},
		{"up", true},
		{"my:record:rate5m", true},
		{"soak_made_up_total", false},
		{"nodejs_heap_size_used_bytes", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsAllowedMetric(tc.name, []string{"my:record:rate5m"}); got != tc.want {
				t.Errorf("IsAllowedMetric(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

func TestParseRuleFileStrict(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", "groups:\n  - name: g\n    rules:\n      - record: a:b:c\n        expr: up\n", true},
		{"unknown field", "groups:\n  - name: g\n    rules:\n      - record: a:b:c\n        expr: up\n        fro: 5m\n", false},
		{"wrong type", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels: [x]\n", false},
		{"record and alert", "groups:\n  - name: g\n    rules:\n      - record: a:b:c\n        alert: A\n        expr: up\n", false},
		{"neither", "groups:\n  - name: g\n    rules:\n      - expr: up\n", false},
		{"empty expr", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: ''\n", false},
		{"two documents", "groups: []\n---\ngroups: []\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRuleFile([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Errorf("ParseRuleFile: err = %v, want ok = %v", err, tc.ok)
			}
		})
	}
}

func TestDeriveTestRules(t *testing.T) {
	soaktest.Integration(t, "promtool")
	src := ShippedRuleFile()
	o := TestOverrides{For: 20 * time.Second, Window: time.Minute, Interval: 5 * time.Second}
	derived, err := DeriveTestRules(src, o)
	if err != nil {
		t.Fatal(err)
	}
	orig := shipped(t)
	got, err := ParseRuleFile(derived)
	if err != nil {
		t.Fatalf("derived copy does not parse: %v\n%s", err, derived)
	}
	if len(got.Groups) != len(orig.Groups) {
		t.Fatalf("groups: %d, want %d", len(got.Groups), len(orig.Groups))
	}
	window := regexp.MustCompile(`\[([^\]]+)\]`)
	for gi, g := range got.Groups {
		if g.Interval != "5s" {
			t.Errorf("group %s interval %q, want 5s", g.Name, g.Interval)
		}
		if len(g.Rules) != len(orig.Groups[gi].Rules) {
			t.Fatalf("group %s: %d rules, want %d", g.Name, len(g.Rules), len(orig.Groups[gi].Rules))
		}
		for ri, r := range g.Rules {
			want := orig.Groups[gi].Rules[ri]
			if r.Alert != want.Alert || r.Record != want.Record {
				t.Errorf("rule %d renamed: %q%q", ri, r.Alert, r.Record)
			}
			if !mapsEqual(r.Labels, want.Labels) || !mapsEqual(r.Annotations, want.Annotations) {
				t.Errorf("%s%s: labels or annotations changed", r.Alert, r.Record)
			}
			if r.Alert != "" && r.For != "20s" {
				t.Errorf("%s: for %q, want 20s", r.Alert, r.For)
			}
			for _, m := range window.FindAllStringSubmatch(r.Expr, -1) {
				if m[1] != "1m" {
					t.Errorf("%s%s: range [%s], want [1m]", r.Alert, r.Record, m[1])
				}
			}
			if strings.ReplaceAll(want.Expr, "[5m]", "[1m]") != r.Expr {
				t.Errorf("%s%s: expr changed beyond its windows:\n%s\nwant\n%s", r.Alert, r.Record, r.Expr, want.Expr)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "derived.rules.yml")
	if err := os.WriteFile(path, derived, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runPromtool(t, "check", "rules", path); err != nil {
		t.Fatalf("promtool check rules on the derived copy: %v\n%s", err, out)
	}
}

func TestDeriveTestRulesKeepsShorterAndZero(t *testing.T) {
	src := []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x_total[30s]) > 0 and y[2h] offset 1h\n        for: 10s\n")
	tests := []struct {
		name     string
		o        TestOverrides
		wantFor  string
		wantExpr string
	}{
		{"zero keeps everything", TestOverrides{}, "10s", "rate(x_total[30s]) > 0 and y[2h] offset 1h"},
		{"only longer values shrink", TestOverrides{For: time.Minute, Window: time.Minute}, "10s", "rate(x_total[30s]) > 0 and y[1m] offset 1h"},
		{"shorter overrides apply", TestOverrides{For: 5 * time.Second, Window: 15 * time.Second}, "5s", "rate(x_total[15s]) > 0 and y[15s] offset 1h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := DeriveTestRules(src, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			f, err := ParseRuleFile(out)
			if err != nil {
				t.Fatal(err)
			}
			r := f.Groups[0].Rules[0]
			if r.For != tc.wantFor || r.Expr != tc.wantExpr {
				t.Errorf("for %q expr %q, want %q %q", r.For, r.Expr, tc.wantFor, tc.wantExpr)
			}
			if f.Groups[0].Interval != "" {
				t.Errorf("interval %q set without override", f.Groups[0].Interval)
			}
		})
	}
	if _, err := DeriveTestRules(src, TestOverrides{For: -time.Second}); err == nil {
		t.Error("negative override accepted")
	}
	if _, err := DeriveTestRules([]byte("groups: [{name: g, rules: [{alert: A, expr: up, for: soon}]}]"), TestOverrides{For: time.Second}); err == nil {
		t.Error("invalid duration accepted")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
