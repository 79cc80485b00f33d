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
