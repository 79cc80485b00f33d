package scenario_test

import (
	"path/filepath"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestWaitSeesEarlyEventArgs: an awaited event that arrives before its wait
// starts is matched with its arguments, so capture and assert apply to it.
func TestWaitSeesEarlyEventArgs(t *testing.T) {
	app := testfixture.StartScript(t, "apps/chat.js", nil)
	const clients = 6
	a, reg, _ := soak(t, "", app.URL(), clients, func(c *agent.Config) {
		c.ScenarioConfig.File = filepath.Join("testdata", "welcome_capture.yaml")
	})
	sum := func(name string, labels ...string) float64 { return soaktest.Sum(t, reg, name, labels...) }
	soaktest.WaitFor(t, "every client joined its own room", func() bool {
		return sum("soak_scenario_steps_answered_total", "step", "join_own") >= clients
	})
	drain(t, a)
	for _, step := range []string{"welcome", "join_own"} {
		if rej, lost := sum("soak_scenario_steps_rejected_total", "step", step), sum("soak_scenario_steps_lost_total", "step", step); rej != 0 || lost != 0 {
			t.Errorf("step %s: %v rejected, %v lost", step, rej, lost)
		}
	}
	var st appStats
	app.Get("/stats", &st)
	if st.Invalid != 0 {
		t.Fatalf("the app refused %d payloads: the captured user did not reach them", st.Invalid)
	}
}
