package quality

import (
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

func TestZZRefire(t *testing.T) {
	for _, c := range []struct {
		seed     uint64
		from, to time.Duration
	}{{1050220, 47*time.Hour + 45*time.Minute, 48*time.Hour + 20*time.Minute}, {1050232, 48 * time.Hour, 48*time.Hour + 40*time.Minute}, {1050158, 77*time.Hour + 30*time.Minute, 78 * time.Hour}} {
		replay(t, Series{Family: RampSteps, Seed: c.seed}, detect.DefaultConfig(), c.to, func(at time.Duration, rep detect.Report) {
			if at >= c.from {
				t.Logf("%d %s held=%v cyc=%v ratio=%.2f | %s | %s", c.seed, detect.FormatDuration(at), rep.Suspected, rep.Cycle, rep.CycleRatio, rep.Reason, rep.HoldReason)
			}
		})
	}
}
