package scenario

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExamplesParse(t *testing.T) {
	for _, name := range []string{"chat.yaml", "dashboard.yaml"} {
		t.Run(name, func(t *testing.T) {
			sc, err := Load(filepath.Join("..", "..", "..", "examples", name))
			if err != nil {
				t.Fatal(err)
			}
			if sc.Rate <= 0 || len(sc.Flows) == 0 || len(sc.OnConnect) == 0 {
				t.Fatalf("parsed %+v", sc)
			}
		})
	}
	sc, err := Load(filepath.Join("..", "..", "..", "examples", "chat.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	send := sc.Flows[0].Steps[0]
	if send.Expect != ExpectReply || send.ReplyEvent != "message:new" || send.Match != "clientMsgId" || send.Timeout != 5*time.Second {
		t.Fatalf("send step %+v", send)
	}
	if got := strings.Join(sc.Events(), ","); got != "welcome,message:new" {
		t.Fatalf("events %s", got)
	}
	if think := sc.Flows[0].Steps[1]; think.Kind != KindThink || think.Think != 200*time.Millisecond {
		t.Fatalf("think step %+v", think)
	}
}

func TestParseErrorsNameLineAndField(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no rate", "flows: []\n", "t.yaml:1: rate: required (flows per second over the whole agent)"},
		{"bad rate", "rate: -1\nflows: []\n", `t.yaml:1: rate: must be a number in (0, 100000], got "-1"`},
		{"unknown top field", "rate: 1\nflowz: []\n", `t.yaml:2: flowz: unknown field; did you mean "flows"?`},
		{"unknown step field", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        timout: 1s\n",
			`t.yaml:7: flows[0].steps[0].timout: unknown field; did you mean "timeout"?`},
		{"bad timeout", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        timeout: -1s\n",
			`t.yaml:7: flows[0].steps[0].timeout: must be > 0, got "-1s"`},
		{"var not captured", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        payload: '{\"a\": {{var room}}}'\n",
			"t.yaml:7: flows[0].steps[0].payload: {{var room}} is not captured by an earlier step"},
		{"match not unique", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        payload: '{\"id\": \"x\"}'\n        reply: {event: r, match: id}\n",
			`t.yaml:8: flows[0].steps[0].reply.match: the payload's "id" must hold {{seq}} or {{uuid}}, so that each reply answers one request`},
		{"duplicate step", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n      - name: s\n        emit: e\n",
			"t.yaml:7: flows[0].steps[1].name: duplicate step name \"s\" (first at line 5)"},
		{"two actions", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        wait: w\n",
			"t.yaml:5: flows[0].steps[0]: a step has exactly one of emit, wait and think"},
		{"flow without emit", "rate: 1\nflows:\n  - name: f\n    steps:\n      - think: 1s\n",
			"t.yaml:3: flows[0].steps: a flow needs at least one emit step"},
		{"bad label", "rate: 1\nflows:\n  - name: F G\n    steps:\n      - name: s\n        emit: e\n",
			`t.yaml:3: flows[0].name: must match [a-z0-9_:.-]{1,40}, got "F G"`},
		{"bad payload", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        payload: '{\"a\": {{sek}}}'\n",
			"t.yaml:7: flows[0].steps[0].payload: unknown placeholder {{sek}} at offset 6"},
		{"capture is visible to later steps only", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: a\n        emit: e\n        payload: '{\"r\": {{var r}}}'\n        capture: {r: x}\n",
			"t.yaml:7: flows[0].steps[0].payload: {{var r}} is not captured by an earlier step"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "t.yaml")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestYAMLPayloadBecomesJSON(t *testing.T) {
	sc, err := Parse([]byte("rate: 1\non_connect:\n  - name: j\n    emit: j\n    capture: {room: roomId}\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        payload:\n          room: \"{{var room}}\"\n          n: \"{{seq}}\"\n          text: \"hi {{seq}}\"\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Flows[0].Steps[0].Payload.String(); got != `{"n":{{seq}},"room":{{var room}},"text":"hi {{seq}}"}` {
		t.Fatalf("payload %s", got)
	}
}
