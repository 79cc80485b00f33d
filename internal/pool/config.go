package pool

import (
	"fmt"
	"time"
)

// Config is the pool's configuration, read from SOAK_* variables. What the
// clients do once connected is the probes' configuration.
type Config struct {
	Clients        int           `envconfig:"CLIENTS" default:"50" desc:"Socket.IO clients to keep connected (spread evenly over the targets)."`
	ConnectRate    float64       `envconfig:"CONNECT_RATE" default:"50" desc:"Connection attempts per second at most, with jitter (ramp-up and reconnects)."`
	ConnectTimeout time.Duration `envconfig:"CONNECT_TIMEOUT" default:"10s" desc:"Bound on one connection attempt: TCP, TLS, WebSocket upgrade, Engine.IO open and namespace CONNECT."`
	BackoffMin     time.Duration `envconfig:"BACKOFF_MIN" default:"500ms" desc:"Base of the exponential reconnect backoff (full jitter: a delay is uniform in [0, min(max, base*2^n)))."`
	BackoffMax     time.Duration `envconfig:"BACKOFF_MAX" default:"30s" desc:"Cap of the reconnect backoff."`
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	switch {
	case c.Clients < 0:
		return fmt.Errorf("SOAK_CLIENTS: must be >= 0, got %d", c.Clients)
	case !(c.ConnectRate > 0):
		return fmt.Errorf("SOAK_CONNECT_RATE: must be > 0, got %v", c.ConnectRate)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("SOAK_CONNECT_TIMEOUT: must be > 0, got %q", c.ConnectTimeout)
	case c.BackoffMin <= 0:
		return fmt.Errorf("SOAK_BACKOFF_MIN: must be > 0, got %q", c.BackoffMin)
	case c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("SOAK_BACKOFF_MAX: must be >= SOAK_BACKOFF_MIN (%s), got %q", c.BackoffMin, c.BackoffMax)
	}
	return nil
}

// Split divides the clients over n targets as evenly as possible (the first
// ones get one more).
func (c Config) Split(n int) []Config {
	out := make([]Config, n)
	for i := range out {
		out[i] = c
		out[i].Clients = c.Clients / n
		if i < c.Clients%n {
			out[i].Clients++
		}
	}
	return out
}

// Share is the part of a rate that the pool with clients of total clients
// over n targets takes: in proportion to its clients, or evenly when the
// agent has none.
func Share(clients, total, n int) float64 {
	if total > 0 {
		return float64(clients) / float64(total)
	}
	return 1 / float64(n)
}
