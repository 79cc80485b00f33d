package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/deploy/prometheus"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yml")
	if err := os.WriteFile(in, []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x_total[5m]) > 0\n        for: 10m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		check    func(t *testing.T, stdout string)
	}{
		{"shipped file to stdout", []string{"-for", "20s", "-window", "1m", "-interval", "5s"}, 0, func(t *testing.T, out string) {
			f, err := prometheus.ParseRuleFile([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range f.Alerts() {
				if a.For != "20s" {
					t.Errorf("%s: for %s", a.Alert, a.For)
				}
			}
			if strings.Contains(out, "[5m]") {
				t.Error("a 5m window survived")
			}
		}},
		{"input file", []string{"-in", in, "-for", "30s"}, 0, func(t *testing.T, out string) {
			if !strings.Contains(out, "for: 30s") || !strings.Contains(out, "[5m]") {
				t.Errorf("unexpected output:\n%s", out)
			}
		}},
		{"output file", []string{"-o", filepath.Join(dir, "out.yml"), "-for", "1m"}, 0, func(t *testing.T, out string) {
			if out != "" {
				t.Errorf("stdout not empty")
			}
			b, err := os.ReadFile(filepath.Join(dir, "out.yml"))
			if err != nil || !strings.Contains(string(b), "for: 1m") {
				t.Errorf("output file: %v\n%s", err, b)
			}
		}},
		{"bad flag", []string{"-for", "soon"}, 2, nil},
		{"missing input", []string{"-in", filepath.Join(dir, "nope.yml")}, 1, nil},
		{"negative", []string{"-window", "-1m"}, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr.String())
			}
			if tc.check != nil {
				tc.check(t, stdout.String())
			}
		})
	}
}
