package native

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMsgpackRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ackID int64
		args  []string
		want  []string // as the decoder prints them back
	}{
		{name: "no args", ackID: -1},
		{name: "every JSON type", ackID: 7, args: []string{`{"b":[true,null,1.5,-7],"a":1,"c":"x"}`, `"ü"`, `12345678901`, `-0.25`},
			want: []string{`{"a":1,"b":[true,null,1.5,-7],"c":"x"}`, `"ü"`, `12345678901`, `-0.25`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []json.RawMessage
			for _, a := range tc.args {
				args = append(args, json.RawMessage(a))
			}
			b, err := appendMsgpackEvent(nil, "/admin", tc.ackID, "echo", args)
			if err != nil {
				t.Fatal(err)
			}
			p, err := decodeMsgpackPacket(b)
			if err != nil {
				t.Fatal(err)
			}
			if p.typ != sioEvent || p.nsp != "/admin" || p.hasID != (tc.ackID >= 0) || (p.hasID && p.id != uint64(tc.ackID)) {
				t.Fatalf("packet %+v", p)
			}
			name, got, err := p.event()
			if err != nil || name != "echo" || len(got) != len(tc.want) {
				t.Fatalf("event %q %s %v", name, got, err)
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Errorf("arg %d: %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestMsgpackDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		// {"type":9,"nsp":"/"}
		{name: "type", in: []byte{0x82, 0xa4, 't', 'y', 'p', 'e', 0x09, 0xa3, 'n', 's', 'p', 0xa1, '/'}, want: "invalid packet type"},
		// {"type":2,"nsp":"/"}: an EVENT without data
		{name: "event without data", in: []byte{0x82, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa3, 'n', 's', 'p', 0xa1, '/'}, want: "invalid payload"},
		// {"type":2}
		{name: "namespace", in: []byte{0x81, 0xa4, 't', 'y', 'p', 'e', 0x02}, want: "invalid namespace"},
		{name: "not a map", in: []byte{0x01}, want: "not a map"},
		{name: "truncated", in: []byte{0x82, 0xa4, 't'}, want: "msgpack packet"},
		// an extension other than notepack's undefined
		{name: "extension", in: []byte{0x81, 0xa4, 'd', 'a', 't', 'a', 0xd4, 0x05, 0x00}, want: "unsupported extension type 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeMsgpackPacket(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeMsgpack: no input makes the decoder or the conversion to JSON
// panic.
func FuzzDecodeMsgpack(f *testing.F) {
	seed, _ := appendMsgpackEvent(nil, "/", 3, "e", []json.RawMessage{json.RawMessage(`{"a":[1,"x",null]}`)})
	f.Add(seed)
	f.Add([]byte{0x83, 0xa4, 't', 'y', 'p', 'e', 0x00, 0xa3, 'n', 's', 'p', 0xa1, '/', 0xa4, 'd', 'a', 't', 'a', 0xd4, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeMsgpackPacket(b)
		if err != nil {
			return
		}
		switch p.typ {
		case sioEvent:
			_, _, _ = p.event()
		case sioAck:
			_, _ = p.args()
		default:
			_ = p.dataJSON()
		}
	})
}
