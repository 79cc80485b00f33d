package native

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/. Fuzz one target with
//
//	go test -run='^$' -fuzz=FuzzDecodeSocketIO -fuzztime=20s ./internal/probe/native

// FuzzDecodeEngineIO feeds whole text frames through the decoding the
// reader does, and checks the Engine.IO split.
func FuzzDecodeEngineIO(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, payload, err := decodeEngine(b)
		if err != nil {
			return
		}
		if typ != b[0] || !bytes.Equal(payload, b[1:]) {
			t.Fatalf("decodeEngine(%q) = %c %q", b, typ, payload)
		}
		switch typ {
		case eioOpen:
			_, _ = decodeOpen(payload)
		case eioMessage:
			decodeAll(payload)
		}
	})
}

// decodeAll runs every payload parser the reader could apply.
func decodeAll(b []byte) {
	p, err := decodeSocket(b)
	if err != nil {
		return
	}
	_, _, _ = parseEvent(p.data, nil)
	_, _ = splitArray(p.data, nil)
	_, _ = parseConnectError(p.data)
	_ = checkConnectReply(p.data)
}

// FuzzDecodeSocketIO checks the Socket.IO header decoder's invariants and
// that a decoded EVENT encodes back to an equivalent packet.
func FuzzDecodeSocketIO(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeSocket(b)
		if err != nil {
			return
		}
		if !bytes.HasSuffix(b, p.data) || p.typ != b[0] {
			t.Fatalf("decodeSocket(%q): data %q is not the tail", b, p.data)
		}
		if p.attachments < 0 || p.attachments > maxAttachmentsWire {
			t.Fatalf("decodeSocket(%q): attachments %d", b, p.attachments)
		}
		if p.nsp != nil && (len(p.nsp) < 2 || p.nsp[0] != '/' || bytes.IndexByte(p.nsp, ',') >= 0) {
			t.Fatalf("decodeSocket(%q): namespace %q", b, p.nsp)
		}
		_, _ = parseConnectError(p.data)
		_ = checkConnectReply(p.data)
		name, args, err := parseEvent(p.data, nil)
		if err != nil || p.typ != sioEvent || p.id > math.MaxInt64 {
			return
		}
		id := int64(-1)
		if p.hasID {
			id = int64(p.id)
		}
		enc := appendEvent(nil, p.namespace(), id, name, args)
		_, payload, err := decodeEngine(enc)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", enc, err)
		}
		q, err := decodeSocket(payload)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", enc, err)
		}
		name2, args2, err := parseEvent(q.data, nil)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", enc, err)
		}
		if q.namespace() != p.namespace() || q.id != p.id || q.hasID != p.hasID || len(args2) != len(args) {
			t.Fatalf("round trip of %q gave %q", b, enc)
		}
		if name2 != name && !(name[0] == '-' || isDigit(name[0])) && validUTF8Name(name) {
			t.Fatalf("round trip of %q: name %q became %q", b, name, name2)
		}
		for i := range args {
			if !bytes.Equal(args[i], args2[i]) {
				t.Fatalf("round trip of %q: arg %d %q became %q", b, i, args[i], args2[i])
			}
		}
	})
}

// validUTF8Name reports whether name survives JSON encoding unchanged (the
// encoder replaces invalid UTF-8 like encoding/json does).
func validUTF8Name(name string) bool {
	b, _ := json.Marshal(name)
	var back string
	return json.Unmarshal(b, &back) == nil && back == name
}

// FuzzDecodeOpen checks that a decoded OPEN packet is usable.
func FuzzDecodeOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeOpen(b)
		if err != nil {
			return
		}
		if p.sid == "" || p.pingInterval <= 0 || p.pingTimeout <= 0 || p.pingInterval+p.pingTimeout <= 0 || p.maxPayload < 0 {
			t.Fatalf("decodeOpen(%q) = %+v", b, p)
		}
	})
}

// FuzzSplitArray compares the hand-written JSON scanner with encoding/json.
func FuzzSplitArray(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		args, err := splitArray(b, nil)
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		isArray := len(trimmed) > 0 && trimmed[0] == '['
		valid := json.Valid(b)
		if (err == nil) != (valid && isArray) {
			t.Fatalf("splitArray(%q) err = %v; encoding/json: valid %v, array %v", b, err, valid, isArray)
		}
		if err == nil {
			var ref []json.RawMessage
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatalf("encoding/json cannot decode %q: %v", b, err)
			}
			if len(ref) != len(args) {
				t.Fatalf("splitArray(%q) = %d elements, encoding/json %d", b, len(args), len(ref))
			}
			for i := range ref {
				if !bytes.Equal(ref[i], args[i]) {
					t.Fatalf("splitArray(%q)[%d] = %q, encoding/json %q", b, i, args[i], ref[i])
				}
			}
		}
		end, err := scanValue(b, 0, 0)
		if err == nil && !json.Valid(b[:end]) {
			t.Fatalf("scanValue(%q) accepted %q", b, b[:end])
		}
		if valid && (err != nil || skipSpace(b, end) != len(b)) {
			t.Fatalf("scanValue(%q) = %d, %v on valid JSON", b, end, err)
		}
	})
}
