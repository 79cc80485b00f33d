package echo

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{EventName: "echo", EventRate: 100, PayloadBytes: 64, AckTimeout: time.Second}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"off", func(c *Config) { c.EventRate = 0 }, ""},
		{"negative rate", func(c *Config) { c.EventRate = -1 }, "SOAK_EVENT_RATE"},
		{"rate at the maximum", func(c *Config) { c.EventRate = MaxEventRate }, ""},
		{"rate above what the agent can send", func(c *Config) { c.EventRate = 1e9 }, "SOAK_EVENT_RATE"},
		{"infinite rate", func(c *Config) { c.EventRate = math.Inf(1) }, "SOAK_EVENT_RATE"},
		{"zero timeout", func(c *Config) { c.AckTimeout = 0 }, "SOAK_ACK_TIMEOUT"},
		{"tiny payload", func(c *Config) { c.PayloadBytes = 10 }, "SOAK_EVENT_PAYLOAD_BYTES"},
		{"empty event", func(c *Config) { c.EventName = "" }, "SOAK_EVENT_NAME"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
				t.Fatalf("err = %v, want prefix %s:", err, tc.want)
			}
		})
	}
}

func TestAppendPayload(t *testing.T) {
	at := time.Unix(1700000000, 123)
	for _, size := range []int{64, 100, 1000} {
		b := appendPayload([]byte("prefix"), 42, at, size)[len("prefix"):]
		if len(b) != size {
			t.Errorf("size %d: got %d bytes", size, len(b))
		}
		var v struct {
			Seq uint64 `json:"seq"`
			T   int64  `json:"t"`
			Pad string `json:"pad"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("size %d: %v: %s", size, err, b)
		}
		if v.Seq != 42 || v.T != at.UnixNano() || strings.Trim(v.Pad, "x") != "" {
			t.Errorf("size %d: decoded %+v", size, v)
		}
	}
}
