package payload

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	v := &Vars{Seq: 42, TS: time.UnixMilli(1700000000123), Client: 7,
		Vars: map[string]json.RawMessage{"room": json.RawMessage(`"r-1"`), "obj": json.RawMessage(`{"a":[1,"q\""]}`)}}
	v.NewUUID(0x0123456789abcdef, 0xfedcba9876543210)
	tests := []struct {
		src, want string
	}{
		{`{"seq":{{seq}},"t":{{ts}},"c":{{client}}}`, `{"seq":42,"t":1700000000123,"c":7}`},
		{`{"id":"m-{{seq}}-{{client}}","u":{{uuid}}}`, `{"id":"m-42-7","u":"01234567-89ab-4def-bedc-ba9876543210"}`},
		{`{"u":"x{{uuid}}"}`, `{"u":"x01234567-89ab-4def-bedc-ba9876543210"}`},
		{`{"p":{{pad 3}},"q":"a{{ pad 2 }}b"}`, `{"p":"xxx","q":"axxb"}`},
		{`{"room":{{var room}},"in":"at {{var room}}","o":{{var obj}},"os":"{{var obj}}","none":{{var nope}}}`,
			`{"room":"r-1","in":"at r-1","o":{"a":[1,"q\""]},"os":"{\"a\":[1,\"q\\\"\"]}","none":null}`},
		{`[{{seq}}, "{"]`, `[42, "{"]`},
		{`"esc \" {{seq}}"`, `"esc \" 42"`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tp, err := Parse(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got := string(tp.Append(nil, v))
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("invalid JSON %s", got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`{"seq":{{sek}}}`, "unknown placeholder {{sek}} at offset 7"},
		{`{"a":{{seq}`, "unclosed placeholder at offset 5"},
		{`{"a":{{pad x}}}`, "placeholder {{pad x}} at offset 5: N must be an integer in [0, 1048576]"},
		{`{"a":{{pad}}}`, "placeholder {{pad}} at offset 5: want {{pad N}}"},
		{`{"a":{{var 1x}}}`, "placeholder {{var 1x}} at offset 5: want {{var NAME}} with NAME of letters, digits and _"},
		{`{"a":{{seq 1}}}`, "placeholder {{seq 1}} at offset 5 takes no argument"},
		{`{"a":}`, "not valid JSON once rendered"},
		{`{"a":"{{seq}}}`, "not valid JSON once rendered"},
		{`{"a":{{}}}`, "empty placeholder {{}} at offset 5"},
		{`1{{ts}}`, "placeholder {{ts}} at offset 1 must be a whole JSON value outside a string"},
		{`[{{seq}}{{seq}}]`, "placeholder {{seq}} at offset 1 must be a whole JSON value outside a string"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := Parse(tt.src)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestAt(t *testing.T) {
	tp, err := Parse(`{"roomId": {{var room}}, "msg": {"text": "hi {{pad 2}}", "ids": [1, "m-{{seq}}"]}, "u": {{uuid}}}`)
	if err != nil {
		t.Fatal(err)
	}
	v := &Vars{Seq: 9, Vars: map[string]json.RawMessage{"room": json.RawMessage(`"r"`)}}
	tests := []struct{ path, want, err string }{
		{"roomId", `"r"`, ""},
		{"msg.text", `"hi xx"`, ""},
		{"msg.ids.1", `"m-9"`, ""},
		{"msg.ids.0", `1`, ""},
		{"msg", `{"text": "hi xx", "ids": [1, "m-9"]}`, ""},
		{"msg.nope", "", `path "msg.nope": no field "nope"`},
		{"msg.ids.5", "", `path "msg.ids.5": no element 5`},
		{"roomId.x", "", `path "roomId.x": "x": not an object or array`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			sub, err := tp.At(tt.path)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(sub.Append(nil, v)); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	u, err := tp.At("u")
	if err != nil || !u.NeedsUUID() || !u.Unique() {
		t.Fatalf("uuid sub-template: %v %v", u, err)
	}
	if r, _ := tp.At("roomId"); r.Unique() || strings.Join(r.VarNames(), ",") != "room" {
		t.Fatal("roomId is not unique per event and uses var room")
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	tp, err := Parse(`{"seq":{{seq}},"t":{{ts}},"id":"m-{{seq}}","u":{{uuid}},"pad":"{{pad 64}}"}`)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	v := &Vars{Seq: 1, TS: time.Now()}
	if a := testing.AllocsPerRun(100, func() { buf = tp.Append(buf[:0], v) }); a != 0 {
		t.Fatalf("Append allocates %v times", a)
	}
}

func BenchmarkAppend(b *testing.B) {
	tp, err := Parse(`{"roomId":"soak","text":"hello {{pad 32}}","clientMsgId":{{uuid}},"seq":{{seq}},"ts":{{ts}}}`)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	v := &Vars{TS: time.Now()}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		v.Seq = uint64(i)
		v.NewUUID(uint64(i), uint64(i)*31)
		buf = tp.Append(buf[:0], v)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":{{seq}}}`, `["{{pad 3}}",{{uuid}}]`, `{"v":{{var x}},"s":"{{var x}}"}`, `"{{ts}}"`} {
		f.Add(s, `"x\"y"`)
	}
	f.Fuzz(func(t *testing.T, src, varValue string) {
		tp, err := Parse(src)
		if err != nil {
			return
		}
		v := &Vars{Seq: 3}
		if json.Valid([]byte(varValue)) {
			v.Vars = map[string]json.RawMessage{"x": json.RawMessage(varValue)}
		}
		out := tp.Append(nil, v)
		if !json.Valid(out) {
			t.Fatalf("Parse accepted %q, which renders as invalid JSON %q", src, out)
		}
	})
}
