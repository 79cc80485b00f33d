package native

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// serverFrame builds an unmasked frame as a server sends it.
func serverFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

type gotFrame struct {
	op      byte
	payload string
}

// feedAll feeds data to r in chunks of size n and records what it delivers.
func feedAll(r *frameReader, data []byte, n int) ([]gotFrame, error) {
	var got []gotFrame
	fn := func(op byte, p []byte) bool {
		got = append(got, gotFrame{op, string(p)})
		return true
	}
	for len(data) > 0 {
		k := min(n, len(data))
		if err := r.feed(data[:k], fn); err != nil {
			return got, err
		}
		data = data[k:]
	}
	return got, nil
}

func TestFrameReader(t *testing.T) {
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	long := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	tests := []struct {
		name    string
		in      []byte
		limit   int64
		want    []gotFrame
		wantErr string
	}{
		{name: "text", in: serverFrame(true, opText, []byte("40")), want: []gotFrame{{opText, "40"}}},
		{name: "empty binary", in: serverFrame(true, opBinary, nil), want: []gotFrame{{opBinary, ""}}},
		{
			name: "fragmented text with a ping between fragments",
			in: cat(serverFrame(false, opText, []byte("42[\"a")), serverFrame(true, opPing, []byte("p")),
				serverFrame(false, opContinuation, []byte("b\",")), serverFrame(true, opContinuation, []byte("1]"))),
			want: []gotFrame{{opPing, "p"}, {opText, "42[\"ab\",1]"}},
		},
		{name: "close with a code", in: serverFrame(true, opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}), want: []gotFrame{{opClose, "\x03\xe8bye"}}},
		{name: "125 bytes", in: serverFrame(true, opText, long(125)), want: []gotFrame{{opText, string(long(125))}}},
		{name: "126 bytes", in: serverFrame(true, opText, long(126)), want: []gotFrame{{opText, string(long(126))}}},
		{name: "65535 bytes", in: serverFrame(true, opBinary, long(65535)), want: []gotFrame{{opBinary, string(long(65535))}}},
		{name: "65536 bytes", in: serverFrame(true, opBinary, long(65536)), want: []gotFrame{{opBinary, string(long(65536))}}},
		{name: "over the limit", in: serverFrame(true, opText, long(101)), limit: 100, wantErr: "message of more than 100 bytes"},
		{
			name:    "fragments over the limit",
			in:      cat(serverFrame(false, opText, long(60)), serverFrame(true, opContinuation, long(60))),
			limit:   100,
			wantErr: "message of more than 100 bytes",
		},
		{name: "masked by the server", in: []byte{0x81, 0x82, 1, 2, 3, 4, 'a', 'b'}, wantErr: "masked frame from the server"},
		{name: "reserved bit", in: []byte{0xc1, 0x00}, wantErr: "reserved bits"},
		{name: "unknown opcode", in: []byte{0x83, 0x00}, wantErr: "unknown opcode"},
		{name: "fragmented ping", in: serverFrame(false, opPing, nil), wantErr: "fragmented control frame"},
		{name: "long ping", in: serverFrame(true, opPing, long(126)), wantErr: "control frame of 126 bytes"},
		{name: "continuation first", in: serverFrame(true, opContinuation, []byte("x")), wantErr: "continuation frame outside a message"},
		{
			name:    "text inside a fragmented message",
			in:      cat(serverFrame(false, opText, []byte("a")), serverFrame(true, opText, []byte("b"))),
			wantErr: "new message inside a fragmented one",
		},
		{name: "length with the top bit", in: []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, wantErr: "top bit"},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 3, 1 << 20} {
			t.Run(fmt.Sprintf("%s/chunks of %d", tc.name, chunk), func(t *testing.T) {
				r := &frameReader{limit: tc.limit}
				if r.limit == 0 {
					r.limit = 1 << 20
				}
				got, err := feedAll(r, tc.in, chunk)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("got %q, want %q", got, tc.want)
				}
				if len(r.buf) != 0 || r.msgOp != 0 {
					t.Errorf("left %d bytes and message op %d", len(r.buf), r.msgOp)
				}
			})
		}
	}
}

func TestFrameReaderTooBigIsClassified(t *testing.T) {
	r := &frameReader{limit: 10}
	err := r.feed(serverFrame(true, opText, make([]byte, 11)), func(byte, []byte) bool { return true })
	if !errors.Is(err, websocket.ErrMessageTooBig) {
		t.Fatalf("error %v, want websocket.ErrMessageTooBig", err)
	}
	if o := classifyReadError(err); o.reason != "parse_error" {
		t.Errorf("reason %q, want parse_error", o.reason)
	}
}

func TestFrameReaderStopKeepsTheRest(t *testing.T) {
	r := &frameReader{limit: 100}
	in := append(serverFrame(true, opText, []byte("one")), serverFrame(true, opText, []byte("two"))...)
	var got []string
	if err := r.feed(in, func(_ byte, p []byte) bool { got = append(got, string(p)); return false }); err != nil {
		t.Fatal(err)
	}
	if err := r.feed(nil, func(_ byte, p []byte) bool { got = append(got, string(p)); return true }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "one,two" {
		t.Errorf("got %q, want one then two", got)
	}
}

func TestParseClose(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		code    websocket.StatusCode
		reason  string
		wantErr bool
	}{
		{name: "empty", in: nil, code: websocket.StatusNoStatusRcvd},
		{name: "normal with reason", in: []byte{0x03, 0xe8, 'o', 'k'}, code: websocket.StatusNormalClosure, reason: "ok"},
		{name: "application code", in: []byte{0x0f, 0xa0}, code: 4000},
		{name: "one byte", in: []byte{0x03}, wantErr: true},
		{name: "1005 may not be sent", in: []byte{0x03, 0xed}, wantErr: true},
		{name: "code 999", in: []byte{0x03, 0xe7}, wantErr: true},
		{name: "reason not UTF-8", in: []byte{0x03, 0xe8, 0xff}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ce, err := parseClose(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error, got %v", ce)
				}
				return
			}
			if err != nil || ce.Code != tc.code || ce.Reason != tc.reason {
				t.Errorf("got %v, %v; want code %d reason %q", ce, err, tc.code, tc.reason)
			}
		})
	}
}

func TestAppendClientFrame(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 125, 126, 65535, 65536} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			payload := make([]byte, n)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			f := appendClientFrame(nil, opBinary, payload, 0xa1b2c3d4)
			if f[0] != 0x80|opBinary || f[1]&0x80 == 0 {
				t.Fatalf("header %#x %#x: want FIN, binary, masked", f[0], f[1])
			}
			// Unmask as a server does and parse the result as a server frame.
			h, ok, err := parseFrameHeader(append([]byte{f[0], f[1] &^ 0x80}, f[2:]...))
			if !ok || err != nil || h.length != int64(n) {
				t.Fatalf("header %+v, %v, %v", h, ok, err)
			}
			var k [4]byte
			copy(k[:], f[h.size:h.size+4])
			got := append([]byte(nil), f[h.size+4:]...)
			mask(got, k)
			if !bytes.Equal(got, payload) {
				t.Errorf("payload does not unmask to what was sent")
			}
		})
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(serverFrame(true, opText, []byte("42[\"x\"]")), uint8(3))
	f.Add(append(serverFrame(false, opBinary, []byte{1, 2}), serverFrame(true, opContinuation, []byte{3})...), uint8(1))
	f.Add([]byte{0x88, 0x02, 0x03, 0xe8}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		n := int(chunk%16) + 1
		whole := &frameReader{limit: 1 << 16}
		want, wantErr := feedAll(whole, data, len(data)+1)
		pieces := &frameReader{limit: 1 << 16}
		got, gotErr := feedAll(pieces, data, n)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("whole: %v, in chunks of %d: %v", wantErr, n, gotErr)
		}
		if wantErr == nil && fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chunks of %d deliver %q, whole %q", n, got, want)
		}
		for _, g := range got {
			if g.op <= opBinary && int64(len(g.payload)) > whole.limit {
				t.Fatalf("message of %d bytes over the limit", len(g.payload))
			}
		}
	})
}
