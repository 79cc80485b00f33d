package native

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDecodeEngine(t *testing.T) {
	tests := []struct {
		in      string
		typ     byte
		payload string
		wantErr bool
	}{
		{in: "0{}", typ: '0', payload: "{}"},
		{in: "1", typ: '1'},
		{in: "2", typ: '2'},
		{in: "2probe", typ: '2', payload: "probe"},
		{in: "3", typ: '3'},
		{in: `42["x"]`, typ: '4', payload: `2["x"]`},
		{in: "5", typ: '5'},
		{in: "6", typ: '6'},
		{in: "", wantErr: true},
		{in: "7", wantErr: true},
		{in: "/", wantErr: true},
		{in: "b", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			typ, payload, err := decodeEngine([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantErr && (typ != tc.typ || string(payload) != tc.payload) {
				t.Errorf("got %c %q, want %c %q", typ, payload, tc.typ, tc.payload)
			}
		})
	}
}

func TestDecodeOpen(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    openPacket
		wantErr bool
	}{
		{name: "socket.io 4", in: `{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
			want: openPacket{sid: "abc", upgrades: []string{}, pingInterval: 25 * time.Second, pingTimeout: 20 * time.Second, maxPayload: 1000000}},
		{name: "polling offering websocket", in: `{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}`,
			want: openPacket{sid: "abc", upgrades: []string{"websocket"}, pingInterval: 25 * time.Second, pingTimeout: 20 * time.Second}},
		{name: "no maxPayload", in: `{"sid":"abc","pingInterval":1,"pingTimeout":2}`,
			want: openPacket{sid: "abc", pingInterval: time.Millisecond, pingTimeout: 2 * time.Millisecond}},
		{name: "missing sid", in: `{"pingInterval":1,"pingTimeout":2}`, wantErr: true},
		{name: "empty sid", in: `{"sid":"","pingInterval":1,"pingTimeout":2}`, wantErr: true},
		{name: "sid not a string", in: `{"sid":1,"pingInterval":1,"pingTimeout":2}`, wantErr: true},
		{name: "missing pingInterval", in: `{"sid":"a","pingTimeout":2}`, wantErr: true},
		{name: "zero pingTimeout", in: `{"sid":"a","pingInterval":1,"pingTimeout":0}`, wantErr: true},
		{name: "negative pingInterval", in: `{"sid":"a","pingInterval":-1,"pingTimeout":1}`, wantErr: true},
		{name: "huge pingInterval", in: `{"sid":"a","pingInterval":99999999999,"pingTimeout":1}`, wantErr: true},
		{name: "fractional pingInterval", in: `{"sid":"a","pingInterval":1.5,"pingTimeout":1}`, wantErr: true},
		{name: "string pingTimeout", in: `{"sid":"a","pingInterval":1,"pingTimeout":"1"}`, wantErr: true},
		{name: "negative maxPayload", in: `{"sid":"a","pingInterval":1,"pingTimeout":1,"maxPayload":-1}`, wantErr: true},
		{name: "not an object", in: `[]`, wantErr: true},
		{name: "null", in: `null`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
		{name: "truncated", in: `{"sid":"a"`, wantErr: true},
		{name: "trailing data", in: `{"sid":"a","pingInterval":1,"pingTimeout":1}x`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeOpen([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeSocket(t *testing.T) {
	tests := []struct {
		in          string
		typ         byte
		nsp         string
		attachments int
		id          uint64
		hasID       bool
		data        string
		wantErr     bool
	}{
		{in: `0`, typ: '0', nsp: "/"},
		{in: `0{"sid":"x"}`, typ: '0', nsp: "/", data: `{"sid":"x"}`},
		{in: `0/admin,{"sid":"x"}`, typ: '0', nsp: "/admin", data: `{"sid":"x"}`},
		{in: `1`, typ: '1', nsp: "/"},
		{in: `1/admin,`, typ: '1', nsp: "/admin"},
		{in: `1/admin`, typ: '1', nsp: "/admin"}, // comma-less namespace at the end
		{in: `2["a"]`, typ: '2', nsp: "/", data: `["a"]`},
		{in: `2/,["a"]`, typ: '2', nsp: "/", data: `["a"]`},
		{in: `212["a"]`, typ: '2', nsp: "/", id: 12, hasID: true, data: `["a"]`},
		{in: `2/chat,0["a"]`, typ: '2', nsp: "/chat", id: 0, hasID: true, data: `["a"]`},
		{in: `318446744073709551615[]`, typ: '3', nsp: "/", id: math.MaxUint64, hasID: true, data: `[]`},
		{in: `318446744073709551616[]`, wantErr: true},
		{in: `3`, typ: '3', nsp: "/"},
		{in: `4{"message":"m"}`, typ: '4', nsp: "/", data: `{"message":"m"}`},
		{in: `4"m"`, typ: '4', nsp: "/", data: `"m"`},
		{in: `51-["a",{"_placeholder":true,"num":0}]`, typ: '5', nsp: "/", attachments: 1, data: `["a",{"_placeholder":true,"num":0}]`},
		{in: `512-/x,7["a"]`, typ: '5', nsp: "/x", attachments: 12, id: 7, hasID: true, data: `["a"]`},
		{in: `60-3[]`, typ: '6', nsp: "/", id: 3, hasID: true, data: `[]`},
		{in: `5-["a"]`, wantErr: true},
		{in: `51["a"]`, wantErr: true},
		{in: `51`, wantErr: true},
		{in: `5`, wantErr: true},
		{in: `599999999-[]`, wantErr: true},
		{in: ``, wantErr: true},
		{in: `7`, wantErr: true},
		{in: `x`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			p, err := decodeSocket([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr {
				return
			}
			if p.typ != tc.typ || p.namespace() != tc.nsp || p.attachments != tc.attachments ||
				p.id != tc.id || p.hasID != tc.hasID || string(p.data) != tc.data {
				t.Errorf("got {%c %q %d %d %v %q}", p.typ, p.namespace(), p.attachments, p.id, p.hasID, p.data)
			}
			if !p.inNamespace(tc.nsp) {
				t.Errorf("inNamespace(%q) = false", tc.nsp)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		in      string
		name    string
		args    []string
		wantErr bool
	}{
		{in: `["a"]`, name: "a", args: []string{}},
		{in: ` [ "a" , 1 , {"b":[1,2,{}]} , null ] `, name: "a", args: []string{`1`, `{"b":[1,2,{}]}`, `null`}},
		{in: `["a\"b\u00e9\n"]`, name: "a\"bé\n", args: []string{}},
		{in: `[42,"x"]`, name: "42", args: []string{`"x"`}},
		{in: `[]`, wantErr: true},
		{in: `[{}]`, wantErr: true},
		{in: `[null]`, wantErr: true},
		{in: `{"a":1}`, wantErr: true},
		{in: `"a"`, wantErr: true},
		{in: ``, wantErr: true},
		{in: `["a"`, wantErr: true},
		{in: `["a",]`, wantErr: true},
		{in: `["a"]x`, wantErr: true},
		{in: `["a"][]`, wantErr: true},
		{in: `["a\x"]`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			name, args, err := parseEvent([]byte(tc.in), nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr {
				return
			}
			if name != tc.name || !slices.Equal(rawStrings(args), tc.args) {
				t.Errorf("got %q %q, want %q %q", name, rawStrings(args), tc.name, tc.args)
			}
		})
	}
}

func TestSplitArrayMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`[]`, ` [ ] `, `[1]`, `[-0.5e+10]`, `[0]`, `[01]`, `[-]`, `[1.]`, `[.5]`, `[1e]`, `[1E-2]`,
		`[true,false,null]`, `[tru]`, `[nul]`, `[truex]`,
		`[""]`, `["\u00e9\ud83d\ude00"]`, `["\u12"]`, `["\uZZZZ"]`, `["a` + "\x01" + `"]`, `["a` + "\x7f" + `"]`,
		`["\/\b\f\n\r\t\"\\"]`, `["\a"]`, "[\"\xff\xfe\"]",
		`[{}]`, `[{"a":1,"b":[{"c":{}}]}]`, `[{"a"}]`, `[{"a":}]`, `[{1:2}]`, `[{"a":1,}]`, `[{"a":1 "b":2}]`,
		`[[[[]]]]`, `[[[[]]]`, `[1 2]`, `[1,,2]`, `[,1]`, `[1]]`, `{"a":[]}`, `1`, ``, ` `, `[`, `]`,
		"[\t1\n,\r2 ]", `[1] `, `[1] x`,
	}
	for _, in := range inputs {
		args, err := splitArray([]byte(in), nil)
		want := json.Valid([]byte(in)) && strings.HasPrefix(strings.TrimLeft(in, " \t\r\n"), "[")
		if (err == nil) != want {
			t.Errorf("splitArray(%q) err = %v, encoding/json says valid array = %v", in, err, want)
			continue
		}
		if err != nil {
			continue
		}
		var ref []json.RawMessage
		if err := json.Unmarshal([]byte(in), &ref); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rawStrings(args), rawStrings(ref)) {
			t.Errorf("splitArray(%q) = %q, encoding/json %q", in, rawStrings(args), rawStrings(ref))
		}
	}
}

func TestJSONDepthLimit(t *testing.T) {
	for _, depth := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		in := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		_, err := splitArray(in, nil)
		if want := json.Valid(in); (err == nil) != want {
			t.Errorf("depth %d: err = %v, encoding/json valid = %v", depth, err, want)
		}
		obj := []byte(`[` + strings.Repeat(`{"a":`, depth-1) + `1` + strings.Repeat(`}`, depth-1) + `]`)
		_, err = splitArray(obj, nil)
		if want := json.Valid(obj); (err == nil) != want {
			t.Errorf("object depth %d: err = %v, encoding/json valid = %v", depth, err, want)
		}
	}
}

func TestParseConnectError(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: `{"message":"not authorized","data":{"code":1}}`, want: "not authorized"},
		{in: `{"message":"Invalid namespace"}`, want: "Invalid namespace"},
		{in: ` {"data":1} `, want: ""},
		{in: `{"message":null}`, want: ""},
		{in: `{"message":42}`, want: "42"},
		{in: `"Not authorized"`, want: "Not authorized"},
		{in: `"\u00e9"`, want: "é"},
		{in: ``, want: ""},
		{in: `{"message":"` + strings.Repeat("é", 400) + `"}`, want: strings.Repeat("é", maxErrorMessage/2)},
		{in: `{"message":"x"`, wantErr: true},
		{in: `{"message":"x"}x`, wantErr: true},
		{in: `[1]`, wantErr: true},
		{in: `1`, wantErr: true},
		{in: `"x`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseConnectError([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckConnectReply(t *testing.T) {
	for in, ok := range map[string]bool{
		``: true, `{"sid":"x"}`: true, ` {} `: true, `{"sid":"x","pid":"y"}`: true,
		`[]`: false, `"x"`: false, `{`: false, `{}x`: false, `{"sid"}`: false,
	} {
		if err := checkConnectReply([]byte(in)); (err == nil) != ok {
			t.Errorf("checkConnectReply(%q) = %v", in, err)
		}
	}
}

func TestEncode(t *testing.T) {
	args := []json.RawMessage{json.RawMessage(`{"a":1}`), json.RawMessage(`"s"`)}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"event", appendEvent(nil, "/", -1, "echo", nil), `42["echo"]`},
		{"event with ack", appendEvent(nil, "/", 0, "echo", args), `420["echo",{"a":1},"s"]`},
		{"event in namespace", appendEvent(nil, "/chat", 17, "e", args[:1]), `42/chat,17["e",{"a":1}]`},
		{"event name escaped", appendEvent(nil, "/", -1, "a\"\\\n\x00", nil), `42["a\"\\\n\u0000"]`},
		{"connect", appendConnect(nil, "/", nil), `40`},
		{"connect with auth", appendConnect(nil, "/", json.RawMessage(`{"token":"t"}`)), `40{"token":"t"}`},
		{"connect in namespace", appendConnect(nil, "/a", json.RawMessage(`{}`)), `40/a,{}`},
		{"disconnect", appendDisconnect(nil, "/"), `41`},
		{"disconnect in namespace", appendDisconnect(nil, "/a"), `41/a,`},
		{"empty ack", appendEmptyAck(nil, "/", 5), `435[]`},
		{"empty ack in namespace", appendEmptyAck(nil, "/a", 0), `43/a,0[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("got %s, want %s", tc.got, tc.want)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	inputs := []string{
		"", "plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\x7f", "\t\r\n\b\f", "é😀", "\u2028\u2029",
		"bad\xffutf8", "\xe2\x82", "<html>&", strings.Repeat("x", 300),
	}
	for _, s := range inputs {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("appendJSONString(%q) = %s: %v", s, b, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want && utf8.ValidString(s) {
			t.Errorf("appendJSONString(%q) decodes to %q", s, got)
		}
		ref, _ := json.Marshal(s) // encoding/json replaces invalid bytes one by one
		var refGot string
		_ = json.Unmarshal(ref, &refGot)
		if got != refGot {
			t.Errorf("appendJSONString(%q) decodes to %q, encoding/json to %q", s, got, refGot)
		}
	}
}

func TestHotPathAllocations(t *testing.T) {
	payload := json.RawMessage(`{"seq":1,"pad":"xxxxxxxxxxxxxxxx"}`)
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		buf = appendEvent(buf[:0], "/chat", 123, "echo", []json.RawMessage{payload})
	}); n != 0 {
		t.Errorf("appendEvent: %v allocs", n)
	}
	msg := []byte(`43/chat,123[{"seq":1,"pad":"xxxxxxxxxxxxxxxx"},[1,2,{"a":null}]]`)
	dst := make([]json.RawMessage, 0, 4)
	if n := testing.AllocsPerRun(100, func() {
		_, payload, _ := decodeEngine(msg)
		p, err := decodeSocket(payload)
		if err != nil || !p.inNamespace("/chat") {
			t.Fatal(err)
		}
		if _, err := splitArray(p.data, dst[:0]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("decoding an ack: %v allocs", n)
	}
}
