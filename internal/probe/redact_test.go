package probe

import (
	"strings"
	"testing"
)

func TestRedactConnectErrorData(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"retryAfter":30}`, `{"retryAfter":30}`},
		{`"plain string"`, `"plain string"`},
		{`{"token":"x"}`, "[REDACTED]"},
		{`{"user":{"Password":"x"}}`, "[REDACTED]"},
		{`{"reason":"bad auth"}`, "[REDACTED]"},
		{`["api_key_missing"]`, "[REDACTED]"},
		{`{"n":[1,2,{"sessionId":"s"}]}`, "[REDACTED]"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := RedactConnectErrorData(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	e := &ConnectError{Reason: FailConnectError, Message: "m", Data: `{"a":1}`}
	if got := e.Error(); !strings.Contains(got, `(data {"a":1})`) {
		t.Errorf("Error() = %q", got)
	}
}
