package scenario

import (
	"fmt"
	"os"
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
		{"empty file", "", "t.yaml:1: the file is empty; it needs rate and flows"},
		{"unknown field far from any", "rate: 1\nvolume: 3\n", "t.yaml:2: volume: unknown field; known fields: rate, on_connect, flows"},
		{"typo in a short field", "rate: 1\nflows:\n  - name: f\n    wieght: 2\n", `t.yaml:4: flows[0].wieght: unknown field; did you mean "weight"?`},
		{"duplicate capture", "rate: 1\non_connect:\n  - name: j\n    emit: j\n    capture: {a: x, a: y}\nflows: []\n", "t.yaml:5: on_connect[0].capture.a: given twice (first value at line 5)"},
		{"bad capture name", "rate: 1\non_connect:\n  - name: j\n    emit: j\n    capture: {1a: x}\nflows: []\n", "t.yaml:5: on_connect[0].capture.1a: want VARIABLE: dotted.path"},
		{"rate too high", "rate: 100001\nflows: []\n", `t.yaml:1: rate: must be a number in (0, 100000], got "100001"`},
		{"duplicate key", "rate: 1\nrate: 2\nflows: []\n", "t.yaml:2: rate: given twice (first value at line 1)"},
		{"duplicate step key", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        timeout: 1s\n        timeout: 2s\n",
			"t.yaml:8: flows[0].steps[0].timeout: given twice (first value at line 7)"},
		{"NaN timeout", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        timeout: NaN\n",
			`t.yaml:7: flows[0].steps[0].timeout: must be > 0, got "NaN"`},
		{"huge timeout", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        timeout: 1e300\n",
			`t.yaml:7: flows[0].steps[0].timeout: must be > 0, got "1e300"`},
		{"zero think", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n      - think: 0s\n",
			`t.yaml:7: flows[0].steps[1].think: must be a duration > 0 (500ms, or seconds), got "0s"`},
		{"match absent", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        payload: '{\"id\": \"{{uuid}}\"}'\n        reply: {event: r, match: msgId}\n",
			"t.yaml:8: flows[0].steps[0].reply.match: not in the payload"},
		{"capture without answer", "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        expect: none\n        capture: {a: b}\n",
			"t.yaml:8: flows[0].steps[0].capture: nothing to capture from without an answer"},
		{"too many steps", "rate: 1\nflows:\n  - name: f\n    steps:\n" + manySteps(65),
			"t.yaml:133: flows[0].steps[64]: at most 64 named steps"},
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

// manySteps is n emit steps of a flow, two lines each, from line 5.
func manySteps(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      - name: s%d\n        emit: e\n", i)
	}
	return b.String()
}

func TestYAMLPayloadKeepsEscapes(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"quote before a placeholder", `'x"{{seq}}'`, `{"a":"x\"{{seq}}"}`},
		{"backslash before a placeholder", `'x\{{seq}}'`, `{"a":"x\\{{seq}}"}`},
		{"bare placeholder", `"{{client}}"`, `{"a":{{client}}}`},
		{"html characters", `"<b>&"`, `{"a":"<b>&"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        payload:\n          a: " + tt.value + "\n"
			sc, err := Parse([]byte(src), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if got := sc.Flows[0].Steps[0].Payload.String(); got != tt.want {
				t.Fatalf("payload %s, want %s", got, tt.want)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that what it accepts is
// consistent: every emit step of a flow has a payload template or none,
// and every reply step has a match key.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"chat.yaml", "dashboard.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("rate: 1\nflows:\n  - name: f\n    steps:\n      - name: s\n        emit: e\n        payload: {a: '{{seq}}'}\n        reply: {event: r, match: a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse(data, "f.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if !(sc.Rate > 0) || len(sc.Flows) == 0 {
			t.Fatalf("accepted rate %v with %d flows", sc.Rate, len(sc.Flows))
		}
		for _, fl := range sc.Flows {
			for _, st := range fl.Steps {
				if st.Expect == ExpectReply && (st.MatchKey == nil || st.ReplyEvent == "") {
					t.Fatalf("reply step %q without a match key or event", st.Name)
				}
				if st.Kind != KindThink && st.Timeout <= 0 {
					t.Fatalf("step %q with timeout %v", st.Name, st.Timeout)
				}
			}
		}
	})
}
