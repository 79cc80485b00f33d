package oneshot

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// loadtest --scenario soaks the chat example app with the echo probe off
// (the app has no echo handler): it passes on a healthy app, and fails on
// the steps' loss criteria when the app drops replies.
func TestLoadtestScenario(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    string
		wantCode int
	}{
		{"healthy", "", ExitPass},
		{"replies dropped", "/control/faults?drop_every=7", ExitFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := testfixture.StartScript(t, "apps/chat.js", nil)
			if tc.fault != "" {
				app.Get(tc.fault, nil)
			}
			path := jsonPath(t)
			scen := filepath.Join("..", "..", "examples", "chat.yaml")
			r := runMain(t, testDeps(t), "loadtest", "--scenario", scen, "--json", path, app.URL(), "6", "0", "4", "2")
			rep := readJSON[LoadReport](t, path)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.wantCode, r.stdout, r.stderr)
			}
			names := map[string]Criterion{}
			for _, c := range rep.Criteria {
				names[c.Name] = c
			}
			if _, ok := names["event_loss_ratio"]; ok {
				t.Error("with no echo event sent, the echo criteria must give way to the steps'")
			}
			send, ok := names["step_send_loss_ratio"]
			if !ok || len(rep.Steps) == 0 {
				t.Fatalf("no per-step criteria: %+v", rep.Criteria)
			}
			if tc.wantCode == ExitPass && !send.Passed {
				t.Errorf("healthy app: %+v", send)
			}
			if tc.wantCode == ExitFail && send.Passed {
				t.Errorf("dropped replies, yet the send step's loss passed: %+v", send)
			}
			if !strings.Contains(r.stdout, "Step send loss rate") {
				t.Errorf("the text report lacks the step criteria:\n%s", r.stdout)
			}
		})
	}
}
