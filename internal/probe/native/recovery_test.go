package native

import (
	"context"
	"encoding/json"
	"testing"
	"time"

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

// TestRecoveringHandshake plays a recovering server: the CONNECT carries
// the offered pid and offset, the missed packets come before the answer and
// reach OnEvent in order, and the offset stays the offered one until an
// event brings a new one (as socket.io-client keeps it across reconnects).
func TestRecoveringHandshake(t *testing.T) {
	fs := newFakeServer(t, func(s *fakeSession) {
		if !s.open(25000, 20000) || !s.expect(`40{"offset":"7-1","pid":"p1","token":"t"}`) {
			return
		}
		if !s.send(`42["tick",{"seq":8},"8-1"]`) || !s.send(`42["tick",{"seq":9},"9-1"]`) || !s.send(`40{"sid":"s2","pid":"p1"}`) {
			return
		}
		_, _ = s.readUntilError()
	})
	tg := fs.target()
	tg.Auth = json.RawMessage(`{"token":"t"}`)
	events := make(chan string, 4)
	ctx := probe.WithResume(context.Background(), probe.Resume{PID: "p1", Offset: "7-1"})
	c, err := newTestDriver(Options{}).Dial(ctx, tg, probe.Handlers{OnEvent: func(name string, args []json.RawMessage) { events <- string(args[0]) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rc := c.(probe.Recoverable)
	if r := rc.Recovery(); !r.Recovered || r.PID != "p1" || r.Replayed != 2 {
		t.Fatalf("recovery %+v, want recovered p1 with 2 replayed", r)
	}
	for _, want := range []string{`{"seq":8}`, `{"seq":9}`} {
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("event %s, want %s", got, want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("replayed event %s never delivered", want)
		}
	}
	if got := rc.LastOffset(); got != "9-1" {
		t.Fatalf("LastOffset = %q, want 9-1", got)
	}
}

// TestOffsetOutlivesAReconnectWithoutEvents: a recovered session that
// breaks before any event offers the offset it offered before.
func TestOffsetOutlivesAReconnectWithoutEvents(t *testing.T) {
	fs := newFakeServer(t, func(s *fakeSession) {
		if !s.open(25000, 20000) || !s.expect(`40{"offset":"7-1","pid":"p1"}`) || !s.send(`40{"sid":"s2","pid":"p1"}`) {
			return
		}
		_, _ = s.readUntilError()
	})
	ctx := probe.WithResume(context.Background(), probe.Resume{PID: "p1", Offset: "7-1"})
	c, err := newTestDriver(Options{}).Dial(ctx, fs.target(), probe.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rc := c.(probe.Recoverable)
	if !rc.Recovery().Recovered || rc.LastOffset() != "7-1" {
		t.Fatalf("recovered %v, last offset %q; want true, the offered 7-1", rc.Recovery().Recovered, rc.LastOffset())
	}
}
