package native

import (
	"encoding/json"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

func TestResumeAuth(t *testing.T) {
	r := probe.Resume{PID: "p1", Offset: "0-1"}
	for _, tc := range []struct {
		name, auth, want, wantErr string
	}{
		{name: "no auth", want: `{"offset":"0-1","pid":"p1"}`},
		{name: "empty object", auth: `{}`, want: `{"offset":"0-1","pid":"p1"}`},
		{name: "token kept", auth: `{"token":"s3cret"}`, want: `{"offset":"0-1","pid":"p1","token":"s3cret"}`},
		{name: "not an object", auth: `["s3cret"]`, wantErr: "auth payload is not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resumeAuth(json.RawMessage(tc.auth), r)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q (never the payload)", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestNoteOffset(t *testing.T) {
	for _, tc := range []struct {
		name, pid string
		args      []string
		want      string
	}{
		{name: "last string argument", pid: "p", args: []string{`{"seq":1}`, `"17-3"`}, want: "17-3"},
		{name: "recovery off", pid: "", args: []string{`{"seq":1}`, `"17-3"`}, want: ""},
		{name: "last not a string", pid: "p", args: []string{`"a"`, `{"seq":1}`}, want: ""},
		{name: "no arguments", pid: "p", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{rec: probe.Recovery{PID: tc.pid}}
			var args []json.RawMessage
			for _, a := range tc.args {
				args = append(args, json.RawMessage(a))
			}
			c.noteOffset(args)
			if got := c.LastOffset(); got != tc.want {
				t.Fatalf("LastOffset = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConnectReplyPID(t *testing.T) {
	for in, want := range map[string]string{
		`{"sid":"s","pid":"p"}`: "p",
		`{"sid":"s"}`:           "",
		`not json`:              "",
	} {
		if got := connectReplyPID([]byte(in)); got != want {
			t.Errorf("connectReplyPID(%s) = %q, want %q", in, got, want)
		}
	}
}
