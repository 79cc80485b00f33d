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
	BackoffMin     time.Duration `envconfig:"BACKOFF_MIN" default:"1s" desc:"Base of the reconnect backoff, as socket.io-client's reconnectionDelay: the n-th consecutive failed attempt since a connection last opened waits min(max, base*2^n*(1 +/- jitter*u)), u uniform in [0, 1); a connection that opens resets n to 0, so the first reconnect after a disconnect waits base +/- jitter."`
	BackoffMax     time.Duration `envconfig:"BACKOFF_MAX" default:"5s" desc:"Cap of the reconnect backoff, as socket.io-client's reconnectionDelayMax: no reconnect waits longer."`
	BackoffJitter  float64       `envconfig:"BACKOFF_JITTER" default:"0.5" desc:"Randomization factor of the reconnect backoff in [0, 1], as socket.io-client's randomizationFactor."`
	ShortLived     time.Duration `envconfig:"SHORT_LIVED" default:"10s" desc:"A connection that ends within this time of opening also counts in soak_connections_short_lived_total (flapping shows there, not as a growing reconnect delay); 0 means 10s."`
}

// defaultShortLived is SOAK_SHORT_LIVED when a Config built in code leaves
// it zero.
const defaultShortLived = 10 * time.Second

// shortLived is the configured short-lived bound, or its default.
func (c Config) shortLived() time.Duration {
	if c.ShortLived == 0 {
		return defaultShortLived
	}
	return c.ShortLived
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
	case !(c.BackoffJitter >= 0 && c.BackoffJitter <= 1):
		return fmt.Errorf("SOAK_BACKOFF_JITTER: must be in [0, 1], got %v", c.BackoffJitter)
	case c.ShortLived < 0:
		return fmt.Errorf("SOAK_SHORT_LIVED: must be >= 0, got %q", c.ShortLived)
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
