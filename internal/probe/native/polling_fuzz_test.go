package native

import (
	"bytes"
	"testing"
)

// FuzzDecodePayload checks the long-polling payload decoder: no record is
// empty, a text record never holds the separator, and a decoded payload
// encodes back to one that decodes the same (base64 may differ only in
// padding the decoder tolerated, so compare decoded records). Then every
// text record goes through what the reader does with a message.
//
//	go test -run='^$' -fuzz=FuzzDecodePayload -fuzztime=20s ./internal/probe/native
func FuzzDecodePayload(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decodePayload(b)
		if err != nil {
			return
		}
		if len(recs) == 0 {
			t.Fatalf("decodePayload(%q): no records and no error", b)
		}
		for i, r := range recs {
			if !r.binary && (len(r.data) == 0 || bytes.IndexByte(r.data, recordSeparator) >= 0 || r.data[0] == 'b') {
				t.Fatalf("decodePayload(%q): bad text record %d %q", b, i, r.data)
			}
		}
		again, err := decodePayload(encodePayload(nil, recs))
		if err != nil {
			t.Fatalf("re-encoded payload of %q does not decode: %v", b, err)
		}
		if len(again) != len(recs) {
			t.Fatalf("round trip of %q: %d records, want %d", b, len(again), len(recs))
		}
		for i := range recs {
			if again[i].binary != recs[i].binary || !bytes.Equal(again[i].data, recs[i].data) {
				t.Fatalf("round trip of %q: record %d %+v, want %+v", b, i, again[i], recs[i])
			}
		}
		for _, r := range recs {
			if r.binary {
				continue
			}
			if typ, payload, err := decodeEngine(r.data); err == nil && typ == eioMessage {
				decodeAll(payload)
			}
		}
	})
}
