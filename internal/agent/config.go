// Package agent keeps a pool of Socket.IO clients connected to a target
// forever (ramp-up at a bounded rate, reconnects with exponential backoff and
// full jitter, resizing) and drives the acked-echo probe through them on an
// open-loop schedule. It knows clients only through probe.Driver.
package agent

import (
	"fmt"
	"time"
)

// Config is the pool's configuration, read from SOAK_* variables.
type Config struct {
	Clients        int           `envconfig:"CLIENTS" default:"50" desc:"Socket.IO clients to keep connected (spread evenly over the targets)."`
	ConnectRate    float64       `envconfig:"CONNECT_RATE" default:"50" desc:"Connection attempts per second at most, with jitter (ramp-up and reconnects)."`
	ConnectTimeout time.Duration `envconfig:"CONNECT_TIMEOUT" default:"10s" desc:"Bound on one connection attempt: TCP, TLS, WebSocket upgrade, Engine.IO open and namespace CONNECT."`
	BackoffMin     time.Duration `envconfig:"BACKOFF_MIN" default:"500ms" desc:"Base of the exponential reconnect backoff (full jitter: a delay is uniform in [0, min(max, base*2^n)))."`
	BackoffMax     time.Duration `envconfig:"BACKOFF_MAX" default:"30s" desc:"Cap of the reconnect backoff."`
	EventName      string        `envconfig:"EVENT_NAME" default:"echo" desc:"Event the acked-echo probe emits; the server must ack it."`
	EventRate      float64       `envconfig:"EVENT_RATE" default:"100" desc:"Acked-echo events per second in total over the pool (open loop; 0 disables the probe)."`
	PayloadBytes   int           `envconfig:"EVENT_PAYLOAD_BYTES" default:"64" desc:"Size of the JSON payload of one echo event (carries sequence number and scheduled send time, padded)."`
	AckTimeout     time.Duration `envconfig:"ACK_TIMEOUT" default:"5s" desc:"An ack later than this after the scheduled send time counts as lost (and as late if it arrives afterwards)."`
}

// minPayloadBytes is the smallest payload that holds the sequence number and
// the scheduled time: {"seq":N,"t":N,"pad":""} with 20-digit numbers.
const minPayloadBytes = 64

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
	case c.EventName == "":
		return fmt.Errorf("SOAK_EVENT_NAME: must not be empty")
	case c.EventRate < 0 || c.EventRate != c.EventRate:
		return fmt.Errorf("SOAK_EVENT_RATE: must be >= 0, got %v", c.EventRate)
	case c.PayloadBytes < minPayloadBytes || c.PayloadBytes > 1<<20:
		return fmt.Errorf("SOAK_EVENT_PAYLOAD_BYTES: must be in [%d, 1048576], got %d", minPayloadBytes, c.PayloadBytes)
	case c.AckTimeout <= 0:
		return fmt.Errorf("SOAK_ACK_TIMEOUT: must be > 0, got %q", c.AckTimeout)
	}
	return nil
}

// Split divides the pool over n targets: clients as evenly as possible (the
// first ones get one more), the event rate in proportion to the clients.
func (c Config) Split(n int) []Config {
	out := make([]Config, n)
	for i := range out {
		out[i] = c
		out[i].Clients = c.Clients / n
		if i < c.Clients%n {
			out[i].Clients++
		}
		if c.Clients > 0 {
			out[i].EventRate = c.EventRate * float64(out[i].Clients) / float64(c.Clients)
		} else {
			out[i].EventRate = c.EventRate / float64(n)
		}
	}
	return out
}
