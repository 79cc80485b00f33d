package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// redacted replaces a secret wherever a value is printed.
const redacted = "[REDACTED]"

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
	return redacted
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

// targetView is what fmt shows of a Target: its secrets redacted.
type targetView struct {
	Name          string
	URL           string
	Path          string
	Namespace     string
	Auth          string
	Header        map[string]string
	Query         string
	TLS           string
	MaxFrameBytes int64
}

// view is the target with its secrets (the auth payload, header values,
// query values) redacted.
func (t Target) view() targetView {
	v := targetView{Name: t.Name, Path: t.Path, Namespace: t.Namespace, MaxFrameBytes: t.MaxFrameBytes}
	if t.URL != nil {
		u := *t.URL
		u.User = nil
		if u.RawQuery != "" {
			u.RawQuery = redacted
		}
		v.URL = u.String()
	}
	if len(t.Auth) > 0 {
		v.Auth = redacted
	}
	if len(t.Header) > 0 {
		v.Header = make(map[string]string, len(t.Header))
		for k := range t.Header {
			v.Header[http.CanonicalHeaderKey(k)] = redacted
		}
	}
	if len(t.Query) > 0 {
		v.Query = redacted
	}
	if t.TLS != nil {
		v.TLS = "custom"
	}
	return v
}

// Format prints the target for every fmt verb with its secrets redacted, so
// that a panic message or a debug print of a Target cannot leak them.
func (t Target) Format(f fmt.State, verb rune) {
	v := t.view()
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, strings.Replace(fmt.Sprintf("%#v", v), "probe.targetView", "probe.Target", 1))
	case verb == 'v' && f.Flag('+'):
		_, _ = fmt.Fprintf(f, "%+v", v)
	default:
		_, _ = fmt.Fprintf(f, "%v", v)
	}
}

// MarshalJSON encodes the same redacted view as Format.
func (t Target) MarshalJSON() ([]byte, error) { return json.Marshal(t.view()) }
