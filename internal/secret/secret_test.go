package secret_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/secret"
)

func TestIsSecretVar(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"SOAK_AUTH_TOKEN", true},
		{"SOAK_AUTH_TOKEN_FILE", true},
		{"SOAK_AUTH_JSON", true},
		{"SOAK_HEADERS", true},
		{"SOAK_QUERY", true},
		{"QUERY", true},
		{"SOAK_MEMORY_REDIS_PASSWORD_FILE", true},
		{"SOAK_HEAP_SNAPSHOT_INSPECTOR", true},
		{"SOAK_TLS_KEY_FILE", true},
		{"soak_auth_token", true},
		{"SOAK_CLIENTS", false},
		{"SOAK_TARGET_URL", false},
		{"SOAK_EVENT_RATE", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := secret.IsSecretVar(tt.name); got != tt.want {
				t.Errorf("IsSecretVar(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestSecretIsNeverPrinted(t *testing.T) {
	const token = "s3cr3t-VALUE-42"
	s := secret.Secret(token)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		if out := fmt.Sprintf(verb, s); strings.Contains(out, token) || strings.Contains(out, fmt.Sprintf("%x", token)) {
			t.Errorf("%s printed the secret: %s", verb, out)
		}
	}
	b, err := json.Marshal(struct{ S secret.Secret }{s})
	if err != nil || strings.Contains(string(b), token) {
		t.Errorf("json: %s %v", b, err)
	}
	if s.Reveal() != token {
		t.Error("Reveal lost the value")
	}
	if got := secret.Value("SOAK_QUERY", "access_token:"+token); got != secret.Redacted {
		t.Errorf("Value = %q", got)
	}
	if got := secret.Value("SOAK_CLIENTS", "10"); got != "10" {
		t.Errorf("Value = %q", got)
	}
}
