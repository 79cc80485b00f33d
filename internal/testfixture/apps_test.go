package testfixture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// appClient is a raw Socket.IO client of an example app
// (test/fixture/node/apps): it emits with an ack id and keeps the events
// that arrive meanwhile.
type appClient struct {
	*rawClient
	nextID int
	events []appEvent
}

type appEvent struct {
	name string
	arg  map[string]any
}

func dialApp(t *testing.T, s *Script) *appClient {
	t.Helper()
	c, err := tryDialRaw(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.t = t
	t.Cleanup(c.close)
	c.connect()
	return &appClient{rawClient: c}
}

// packet reads the next Socket.IO packet: an event (42) is queued and nil
// returned; an ack (43<id>) returns its id and first argument.
func (c *appClient) packet(timeout time.Duration) (id int, arg map[string]any, err error) {
	c.t.Helper()
	pkt, err := c.next(timeout)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case strings.HasPrefix(pkt, "42["):
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(pkt[2:]), &args); err != nil || len(args) == 0 {
			c.t.Fatalf("bad event packet %q: %v", pkt, err)
		}
		ev := appEvent{}
		if err := json.Unmarshal(args[0], &ev.name); err != nil {
			c.t.Fatalf("bad event name in %q", pkt)
		}
		if len(args) > 1 {
			if err := json.Unmarshal(args[1], &ev.arg); err != nil {
				c.t.Fatalf("event %q: %v", pkt, err)
			}
		}
		c.events = append(c.events, ev)
		return -1, nil, nil
	case strings.HasPrefix(pkt, "43"):
		i := strings.IndexByte(pkt, '[')
		if i < 0 {
			c.t.Fatalf("bad ack packet %q", pkt)
		}
		id, err := strconv.Atoi(pkt[2:i])
		if err != nil {
			c.t.Fatalf("bad ack id in %q", pkt)
		}
		var args []map[string]any
		if err := json.Unmarshal([]byte(pkt[i:]), &args); err != nil || len(args) == 0 {
			c.t.Fatalf("bad ack packet %q: %v", pkt, err)
		}
		return id, args[0], nil
	}
	c.t.Fatalf("unexpected packet %q", pkt)
	return 0, nil, nil
}

// call emits event with payload (JSON text) and returns the ack's first
// argument.
func (c *appClient) call(event, payload string) map[string]any {
	c.t.Helper()
	ack, err := c.tryCall(event, payload, rawTimeout)
	if err != nil {
		c.t.Fatalf("%s %s: %v", event, payload, err)
	}
	return ack
}

// tryCall is call that returns errNoPacket when no ack comes within timeout.
func (c *appClient) tryCall(event, payload string, timeout time.Duration) (map[string]any, error) {
	c.t.Helper()
	c.nextID++
	id := c.nextID
	c.send(fmt.Sprintf("42%d[%q,%s]", id, event, payload))
	deadline := time.Now().Add(timeout)
	for {
		got, arg, err := c.packet(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if got == id {
			return arg, nil
		}
		if got >= 0 {
			c.t.Fatalf("ack %d, want %d", got, id)
		}
	}
}

// event returns the first queued or arriving event named name, removed
// from the queue.
func (c *appClient) event(name string) map[string]any {
	c.t.Helper()
	for {
		for i, ev := range c.events {
			if ev.name == name {
				c.events = append(c.events[:i], c.events[i+1:]...)
				return ev.arg
			}
		}
		if id, _, err := c.packet(rawTimeout); err != nil {
			c.t.Fatalf("waiting for %s: %v", name, err)
		} else if id >= 0 {
			c.t.Fatalf("unexpected ack %d while waiting for %s", id, name)
		}
	}
}

func wantOK(t *testing.T, what string, ack map[string]any, ok bool) {
	t.Helper()
	if ack["ok"] != ok {
		t.Fatalf("%s: ack %v, want ok=%v", what, ack, ok)
	}
	if !ok {
		if msg, _ := ack["error"].(string); msg == "" {
			t.Fatalf("%s: refusal %v without an error message", what, ack)
		}
	}
}

func TestChatApp(t *testing.T) {
	app := StartScript(t, "apps/chat.js", nil)
	a, b := dialApp(t, app), dialApp(t, app)
	if user, _ := a.event("welcome")["user"].(string); user == "" {
		t.Fatal("welcome without a user")
	}
	b.event("welcome")

	long := strings.Repeat("x", 2001)
	refused := []struct{ name, event, payload string }{
		{"join without payload", "room:join", `null`},
		{"join without roomId", "room:join", `{}`},
		{"join with empty roomId", "room:join", `{"roomId":""}`},
		{"join with a number", "room:join", `{"roomId":7}`},
		{"send outside the room", "message:send", `{"roomId":"r1","text":"hi","clientMsgId":"m0"}`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			a.t = t
			wantOK(t, tt.name, a.call(tt.event, tt.payload), false)
		})
	}
	a.t = t

	ack := a.call("room:join", `{"roomId":"r1"}`)
	wantOK(t, "join", ack, true)
	if ack["members"] != 1.0 || ack["roomId"] != "r1" {
		t.Fatalf("first join: %v", ack)
	}
	if ack := b.call("room:join", `{"roomId":"r1"}`); ack["members"] != 2.0 {
		t.Fatalf("second join: %v", ack)
	}
	for _, tt := range []struct{ name, payload string }{
		{"text too long", `{"roomId":"r1","text":"` + long + `","clientMsgId":"m1"}`},
		{"text not a string", `{"roomId":"r1","text":5,"clientMsgId":"m1"}`},
		{"no clientMsgId", `{"roomId":"r1","text":"hi"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a.t = t
			wantOK(t, tt.name, a.call("message:send", tt.payload), false)
		})
	}
	a.t = t

	// A valid message (2000 characters is the limit) reaches every member,
	// the sender included.
	text := strings.Repeat("y", 2000)
	wantOK(t, "send", a.call("message:send", `{"roomId":"r1","text":"`+text+`","clientMsgId":"m2"}`), true)
	for _, c := range []*appClient{a, b} {
		msg := c.event("message:new")
		if msg["clientMsgId"] != "m2" || msg["roomId"] != "r1" || msg["text"] != text || msg["from"] == "" || msg["ts"] == nil {
			t.Fatalf("message:new %v", msg)
		}
	}

	wantOK(t, "leave", b.call("room:leave", `{"roomId":"r1"}`), true)
	wantOK(t, "send after leaving", b.call("message:send", `{"roomId":"r1","text":"hi","clientMsgId":"m3"}`), false)

	var st struct{ Invalid, Dropped int }
	app.Get("/stats", &st)
	if want := len(refused) + 3 + 1; st.Invalid != want {
		t.Fatalf("the app counted %d invalid payloads, want %d", st.Invalid, want)
	}
}

func TestDashboardApp(t *testing.T) {
	app := StartScript(t, "apps/dashboard.js", []string{"PUSH_MS=20"})
	c := dialApp(t, app)
	for _, tt := range []struct{ name, event, payload string }{
		{"subscribe without dashboardId", "dashboard:subscribe", `{}`},
		{"subscribe with a number", "dashboard:subscribe", `{"dashboardId":1}`},
		{"unknown action", "session:action", `{"sessionId":"s-1","action":"explode"}`},
		{"action without session", "session:action", `{"action":"pause"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			wantOK(t, tt.name, c.call(tt.event, tt.payload), false)
		})
	}
	c.t = t
	ack := c.call("dashboard:subscribe", `{"dashboardId":"d1"}`)
	wantOK(t, "subscribe", ack, true)
	if sessions, _ := ack["sessions"].([]any); len(sessions) == 0 {
		t.Fatalf("subscribe: no sessions in %v", ack)
	}
	for _, action := range []string{"pause", "resume", "stop"} {
		wantOK(t, action, c.call("session:action", `{"sessionId":"s-1","action":"`+action+`"}`), true)
	}
	// Pushed updates carry the dashboard and one sequence per process.
	var last float64
	for i := range 3 {
		up := c.event("session:update")
		seq, _ := up["seq"].(float64)
		if up["dashboardId"] != "d1" || up["sessionId"] == "" || up["status"] == "" || seq <= 0 {
			t.Fatalf("session:update %v", up)
		}
		if i > 0 && seq != last+1 {
			t.Fatalf("session:update seq %v after %v", seq, last)
		}
		last = seq
	}
}

// TestAppFaults checks the control API shared by the apps: every Nth reply
// dropped, replies delayed, and both cleared.
func TestAppFaults(t *testing.T) {
	app := StartScript(t, "apps/dashboard.js", []string{"PUSH_MS=60000"})
	c := dialApp(t, app)
	action := `{"sessionId":"s-1","action":"pause"}`

	app.Get("/control/faults?drop_every=3", nil)
	answered := 0
	for i := 1; i <= 6; i++ {
		_, err := c.tryCall("session:action", action, 2*time.Second)
		switch {
		case err == nil:
			answered++
		case errors.Is(err, errNoPacket):
			if i%3 != 0 {
				t.Fatalf("reply %d dropped; want only every 3rd", i)
			}
		default:
			t.Fatal(err)
		}
	}
	if answered != 4 {
		t.Fatalf("%d of 6 answered with every 3rd dropped", answered)
	}

	app.Get("/control/faults?delay_ms=150", nil)
	start := time.Now()
	c.call("session:action", action)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered in %v with a 150 ms delay", d)
	}

	app.Get("/control/clear", nil)
	for range 4 {
		c.call("session:action", action)
	}
	var st struct{ Dropped int }
	app.Get("/stats", &st)
	if st.Dropped != 2 {
		t.Fatalf("the app counts %d dropped replies, want 2", st.Dropped)
	}

	// A malformed parameter is refused, not read as "off".
	for _, q := range []string{"drop_every=x", "delay_ms=-5", "drop_every=1.5"} {
		t.Run(q, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, app.URL()+"/control/faults?"+q, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %s, want 400", resp.Status)
			}
		})
	}
}
