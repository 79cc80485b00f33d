package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		json    bool
		debug   bool
	}{
		{name: "json", cfg: Config{Level: "info", Format: "json"}, json: true},
		{name: "auto on a buffer is json", cfg: Config{Level: "debug", Format: "auto"}, json: true, debug: true},
		{name: "console", cfg: Config{Level: "info", Format: "console"}},
		{name: "bad level", cfg: Config{Level: "loud", Format: "json"}, wantErr: "SOAK_LOG_LEVEL:"},
		{name: "bad format", cfg: Config{Level: "info", Format: "xml"}, wantErr: "SOAK_LOG_FORMAT:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(tc.cfg, &buf)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("dbg")
			log.Info("hello")
			_ = log.Sync()
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if want := map[bool]int{true: 2, false: 1}[tc.debug]; len(lines) != want {
				t.Fatalf("%d lines, want %d: %q", len(lines), want, buf.String())
			}
			var m map[string]any
			isJSON := json.Unmarshal([]byte(lines[len(lines)-1]), &m) == nil
			if isJSON != tc.json {
				t.Fatalf("json = %v, want %v: %q", isJSON, tc.json, lines[len(lines)-1])
			}
			if tc.json && m["msg"] != "hello" {
				t.Fatalf("msg = %v", m["msg"])
			}
		})
	}
}
