package native

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// TestRealServerTransports dials real socket.io 4 servers with each
// transport setting and checks the transport the connection ends on, acks,
// server events with acks, pings over polling and a clean close.
// echoArg is echoed by the server: every JSON type, as the parsers carry
// them (keys sorted, as the msgpack conversion prints them).
const echoArg = `{"a":1,"b":[true,null,1.5,-7],"c":"x","d":{"e":"ü"}}`

func TestRealServerTransports(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		proxy      bool // through a proxy that drops the Upgrade headers
		transports []string
		want       string // transport the connection ends on
		parser     string
	}{
		{name: "websocket", transports: []string{"websocket"}, want: "websocket"},
		{name: "polling", transports: []string{"polling"}, want: "polling"},
		{name: "polling only server", env: []string{"TRANSPORTS=polling"}, transports: []string{"polling"}, want: "polling"},
		{name: "upgrade", transports: []string{"polling", "websocket"}, want: "websocket"},
		{name: "upgrade offered none", env: []string{"TRANSPORTS=polling"}, transports: []string{"polling", "websocket"}, want: "polling"},
		{name: "upgrade refused by proxy", proxy: true, transports: []string{"polling", "websocket"}, want: "polling"},
		{name: "msgpack websocket", env: []string{"PARSER=msgpack"}, parser: ParserMsgpack, transports: []string{"websocket"}, want: "websocket"},
		{name: "msgpack polling", env: []string{"PARSER=msgpack"}, parser: ParserMsgpack, transports: []string{"polling"}, want: "polling"},
		{name: "msgpack upgrade", env: []string{"PARSER=msgpack"}, parser: ParserMsgpack, transports: []string{"polling", "websocket"}, want: "websocket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Fast pings: several ping/pong rounds happen during the test.
			n := startVariant(t, append([]string{"PING_INTERVAL=100", "PING_TIMEOUT=2000", "EMIT_ON_CONNECT=1"}, tc.env...)...)
			target := n.URL()
			if tc.proxy {
				target = upgradeDroppingProxy(t, n.URL())
			}
			acks := make(chan []json.RawMessage, 8)
			events := make(chan string, 8)
			closed := make(chan probe.DisconnectReason, 1)
			h := probe.Handlers{
				OnAck:   func(_ uint64, args []json.RawMessage) { acks <- args },
				OnEvent: func(name string, _ []json.RawMessage) { events <- name },
				OnClose: func(r probe.DisconnectReason, _ error) { closed <- r },
			}
			conn, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, target), Transports: tc.transports, Parser: tc.parser}, h)
			if err != nil {
				t.Fatal(err)
			}
			if got := conn.(interface{ Transport() string }).Transport(); got != tc.want {
				t.Errorf("transport %q, want %q", got, tc.want)
			}
			select {
			case name := <-events:
				if name != "hello" {
					t.Errorf("event %q, want hello", name)
				}
			case <-testCtx(t).Done():
				t.Fatal("no event")
			}
			// Concurrent emits: over polling they share POSTs.
			const emits = 20
			errs := make(chan error, emits)
			for i := range emits {
				go func() { errs <- conn.Emit(testCtx(t), "echo", int64(i), json.RawMessage(echoArg)) }()
			}
			for range emits {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			for range emits {
				select {
				case args := <-acks:
					if len(args) != 1 || string(args[0]) != echoArg {
						t.Errorf("ack %s", args)
					}
				case <-testCtx(t).Done():
					t.Fatal("missing acks")
				}
			}
			// The server acks "pings" once it has seen 5 pongs: the session
			// lived through several ping rounds on its transport.
			if err := conn.Emit(testCtx(t), "pongs", 99); err != nil {
				t.Fatal(err)
			}
			select {
			case args := <-acks:
				if len(args) != 1 || string(args[0]) == "0" {
					t.Errorf("pong count %s", args)
				}
			case <-testCtx(t).Done():
				t.Fatal("no pong count")
			}
			if err := conn.Close(testCtx(t)); err != nil {
				t.Error(err)
			}
			if r := <-closed; r != probe.ReasonClientClose {
				t.Errorf("closed with %q", r)
			}
			waitClientGoroutines(t, 0)
		})
	}
}

// TestRealServerPollingFailures: refusals over long-polling carry the
// server's reason and a hint.
func TestRealServerPollingFailures(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{name: "polling disabled", env: []string{"TRANSPORTS=websocket"}, want: []string{"400", `"Transport unknown"`, "SOAK_TRANSPORTS=websocket"}},
		{name: "allowRequest rejects", env: []string{"REJECT_REASON=ip 10.1.2.3 is banned"}, want: []string{"403", "ip 10.1.2.3 is banned"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := startVariant(t, tc.env...)
			_, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, n.URL()), Transports: []string{"polling"}}, probe.Handlers{})
			ce := asConnectError(t, err)
			t.Logf("error: %v", err)
			if ce.Reason != probe.FailHandshake {
				t.Errorf("reason %q", ce.Reason)
			}
			for _, w := range tc.want {
				if !strings.Contains(ce.Message, w) {
					t.Errorf("message %q lacks %q", ce.Message, w)
				}
			}
			waitClientGoroutines(t, 0)
		})
	}
}
