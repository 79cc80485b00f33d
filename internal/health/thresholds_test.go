package health

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
			For   string `yaml:"for"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestThresholdsMatchRules reads the alert rules and checks that the
// constants here carry the same thresholds and `for:` durations.
func TestThresholdsMatchRules(t *testing.T) {
	b, err := os.ReadFile("../../deploy/prometheus/soak-exporter.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	type rule struct{ expr, forDur string }
	rules := map[string]rule{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				rules[r.Alert] = rule{r.Expr, r.For}
			}
		}
	}
	num := func(t *testing.T, expr, pattern string) float64 {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(expr)
		if m == nil {
			t.Fatalf("%q not found in %q", pattern, expr)
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		alert     string
		pattern   string // the threshold, as a regexp with one group
		want      float64
		wantFor   time.Duration
		secondary []struct {
			pattern string
			want    float64
		}
	}{
		{alert: AlertConnectSuccess, pattern: `ratio_rate5m < ([0-9.]+)`, want: ConnectSuccessMin, wantFor: ConnectSuccessFor,
			secondary: []struct {
				pattern string
				want    float64
			}{{`rate5m >= ([0-9.]+)`, ConnectMinAttemptRate}}},
		{alert: AlertConnectLatency, pattern: `p95_rate5m > ([0-9.]+)`, want: ConnectP95Max.Seconds(), wantFor: ConnectP95For},
		{alert: AlertEventLatency, pattern: `p95_rate5m > ([0-9.]+)`, want: EventP95Max.Seconds(), wantFor: EventP95For},
		{alert: AlertEventLoss, pattern: `ratio_rate5m > ([0-9.]+)`, want: EventLossMax, wantFor: EventLossFor},
		{alert: AlertDisconnects, pattern: `\)\s*> ([0-9.]+)`, want: DisconnectRateMax, wantFor: DisconnectRateFor},
		{alert: AlertPoolBelow, pattern: `\]\)\s*> ([0-9.]+)`, want: 0, wantFor: PoolBelowFor},
		{alert: AlertLeak, pattern: `== ([0-9.]+)`, want: 1, wantFor: LeakFor},
		{alert: AlertOverloaded, pattern: `\) > ([0-9.]+)`, want: DroppedMax, wantFor: DroppedFor},
	}
	for _, tt := range tests {
		t.Run(tt.alert, func(t *testing.T) {
			r, ok := rules[tt.alert]
			if !ok {
				t.Fatalf("alert %s not in the rule file", tt.alert)
			}
			if got := num(t, r.expr, tt.pattern); got != tt.want {
				t.Errorf("threshold: rule file has %v, Go has %v", got, tt.want)
			}
			for _, s := range tt.secondary {
				if got := num(t, r.expr, s.pattern); got != s.want {
					t.Errorf("guard %s: rule file has %v, Go has %v", s.pattern, got, s.want)
				}
			}
			d, err := time.ParseDuration(r.forDur)
			if err != nil {
				t.Fatal(err)
			}
			if d != tt.wantFor {
				t.Errorf("for: rule file has %v, Go has %v", d, tt.wantFor)
			}
		})
	}
}
