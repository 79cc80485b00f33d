package health

import (
	"fmt"
	"time"
)

// Config tunes when the state-change warnings are logged. Read it with
// envconfig under the SOAK prefix.
type Config struct {
	WarnAfter time.Duration `envconfig:"HEALTH_WARN_AFTER" default:"1m" desc:"How long an alert condition must hold on the last minute's figures before a target is logged (and shown) as unhealthy; at most 10m."`
	WarnEvery time.Duration `envconfig:"HEALTH_WARN_EVERY" default:"5m" desc:"At most one unhealthy/recovered line per target and condition in this interval; changes in between are counted in the next line."`
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	if c.WarnAfter <= 0 || c.WarnAfter > 10*time.Minute {
		return fmt.Errorf("SOAK_HEALTH_WARN_AFTER: must be > 0 and <= 10m, got %v", c.WarnAfter)
	}
	if c.WarnEvery <= 0 {
		return fmt.Errorf("SOAK_HEALTH_WARN_EVERY: must be > 0, got %v", c.WarnEvery)
	}
	return nil
}
