// Package jsonpath reads one value out of a JSON document by a dotted path
// ("room.id", "items.0.seq"), as the probes do with the payloads of server
// events: without a schema, and without decoding what the path skips.
package jsonpath

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Lookup returns the JSON value at path in doc: object members by name,
// array elements by index. An empty path is the document itself.
func Lookup(doc []byte, path string) (json.RawMessage, bool) {
	cur := bytes.TrimSpace(doc)
	if path == "" {
		return cur, len(cur) > 0
	}
	for _, seg := range strings.Split(path, ".") {
		if len(cur) == 0 {
			return nil, false
		}
		switch cur[0] {
		case '{':
			var m map[string]json.RawMessage
			if json.Unmarshal(cur, &m) != nil {
				return nil, false
			}
			v, ok := m[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case '[':
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 {
				return nil, false
			}
			var a []json.RawMessage
			if json.Unmarshal(cur, &a) != nil || i >= len(a) {
				return nil, false
			}
			cur = a[i]
		default:
			return nil, false
		}
		cur = bytes.TrimSpace(cur)
	}
	return cur, len(cur) > 0
}

// Int reads a JSON number that is an integer (possibly written as a float
// such as 1.7e12), or a JSON string holding only decimal digits, as an
// int64.
func Int(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return 0, false
		}
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	if v, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, false
	}
	return int64(f), true
}

// Canonical returns raw in a canonical form for comparing two values that
// may be written differently (spacing, key order, number spelling): the
// compact re-encoding of its decoded value. Invalid JSON is returned as is.
func Canonical(raw json.RawMessage) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return string(raw)
	}
	v = normalize(v)
	b, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(b)
}

// normalize turns integral json.Numbers into one spelling (1.0 and 1e0 are 1).
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return int64(f)
			}
			return f
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}
