// Package secret holds the one rule for configuration secrets: the Secret
// type, which no printer shows, and the list of variables whose values are
// secrets, shared by every path that prints configuration or errors.
package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Redacted replaces a secret wherever a value is printed.
const Redacted = "[REDACTED]"

// Secret is a configuration string that must never be printed: fmt (every
// verb, %v, %+v, %#v, %s, %q, %x included), encoding/json and so zap's
// reflection-based fields show "[REDACTED]" for a set secret and "" for an
// empty one. Reveal returns the value for the one place that sends it.
type Secret string

// Reveal returns the secret's value. Use it only to send the secret.
func (s Secret) Reveal() string { return string(s) }

// String returns "[REDACTED]", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString is String quoted, for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format prints String for every verb, so that no verb (%x, %q, %d...)
// bypasses the redaction.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// MarshalJSON encodes String.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes String, for encoders that prefer text.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// secretWords are the parts of a variable name that mark its value as a
// secret. A match anywhere in the name counts, so SOAK_AUTH_TOKEN_FILE (a
// path) is treated like a secret too: redacting a path costs nothing,
// printing a token costs a rotation.
var secretWords = [...]string{"TOKEN", "AUTH", "HEADERS", "QUERY", "PASSWORD", "SECRET", "INSPECTOR", "KEY", "CREDENTIAL"}

// IsSecretVar reports whether the value of the environment variable (with or
// without its SOAK_ prefix) must never be printed, in any error, log line,
// help text or page. It is the one rule every path that prints
// configuration uses.
func IsSecretVar(name string) bool {
	upper := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(upper, w) {
			return true
		}
	}
	return false
}

// Value returns value, or Redacted when the variable is a secret (and value
// is not empty): the form to quote a configuration value in a message.
func Value(name, value string) string {
	if value != "" && IsSecretVar(name) {
		return Redacted
	}
	return value
}

// ReadFile reads the file a secret variable names. Its error names the
// variable and never the path (a path may hold a token) nor the content.
func ReadFile(variable, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: cannot read the file: %w", variable, err)
	}
	return b, nil
}
