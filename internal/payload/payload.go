// Package payload compiles the JSON payload templates that probes send:
// JSON text with placeholders for what changes per event.
//
//	{{seq}}      the event's sequence number
//	{{ts}}       its scheduled send time, Unix milliseconds
//	{{client}}   the sending client's index in its pool
//	{{uuid}}     a random version-4 UUID (one per event: the same in the
//	             payload and in a sub-template taken with At)
//	{{pad N}}    N 'x' characters (N <= 1 MiB)
//	{{var NAME}} a JSON value captured earlier (scenario steps)
//
// Inside a JSON string a placeholder is replaced by its text ({{var NAME}}
// by the string's content, or the JSON text of another value), escaped as
// JSON requires. Outside strings it stands for a whole value: {{seq}},
// {{ts}} and {{client}} as numbers, {{uuid}} and {{pad N}} as strings,
// {{var NAME}} as the captured value itself.
package payload

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxPad bounds {{pad N}}.
const maxPad = 1 << 20

type kind uint8

const (
	kindLit kind = iota
	kindSeq
	kindTS
	kindClient
	kindUUID
	kindPad
	kindVar
)

type part struct {
	kind     kind
	lit      []byte // kindLit
	n        int    // kindPad
	name     string // kindVar
	inString bool   // the placeholder stands inside a JSON string
}

// Template is a compiled payload template. It is immutable and safe for
// concurrent use.
type Template struct {
	src   string
	parts []part
}

// Vars are the values of one rendering.
type Vars struct {
	Seq    uint64
	TS     time.Time
	Client int
	// UUID is rendered as 8-4-4-4-12 lowercase hex, bits as given: set
	// them with NewUUID.
	UUID [16]byte
	// Vars hold the values of {{var NAME}}; a missing one renders as null.
	Vars map[string]json.RawMessage
}

// NewUUID fills v.UUID from two random words, as a version-4 UUID.
func (v *Vars) NewUUID(hi, lo uint64) {
	for i := range 8 {
		v.UUID[i] = byte(hi >> (56 - 8*i))
		v.UUID[8+i] = byte(lo >> (56 - 8*i))
	}
	v.UUID[6] = v.UUID[6]&0x0f | 0x40
	v.UUID[8] = v.UUID[8]&0x3f | 0x80
}

// Parse compiles src. It checks the placeholders and that the template is
// valid JSON once rendered; errors name the placeholder and its offset.
func Parse(src string) (*Template, error) {
	t := &Template{src: src}
	var lit []byte
	inString, escaped := false, false
	for i := 0; i < len(src); {
		c := src[i]
		if c == '{' && i+1 < len(src) && src[i+1] == '{' {
			end := strings.Index(src[i+2:], "}}")
			if end < 0 {
				return nil, fmt.Errorf("unclosed placeholder at offset %d", i)
			}
			p, err := parsePlaceholder(strings.TrimSpace(src[i+2:i+2+end]), i)
			if err != nil {
				return nil, err
			}
			p.inString = inString
			if !inString && !standsAlone(src, i, i+2+end+2) {
				return nil, fmt.Errorf("placeholder {{%s}} at offset %d must be a whole JSON value outside a string (or be inside a string)",
					strings.TrimSpace(src[i+2:i+2+end]), i)
			}
			if len(lit) > 0 {
				t.parts = append(t.parts, part{kind: kindLit, lit: lit})
				lit = nil
			}
			t.parts = append(t.parts, p)
			i += 2 + end + 2
			escaped = false
			continue
		}
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		}
		lit = append(lit, c)
		i++
	}
	if len(lit) > 0 {
		t.parts = append(t.parts, part{kind: kindLit, lit: lit})
	}
	sample := t.Append(nil, &Vars{Seq: 1, TS: time.UnixMilli(1), Client: 0})
	if !json.Valid(sample) {
		return nil, fmt.Errorf("not valid JSON once rendered: %s", abbreviate(sample))
	}
	return t, nil
}

// standsAlone reports whether src[start:end] (a placeholder outside a
// string) is a whole value: only structure or the text's ends around it.
// Checking the rendering alone is not enough: "1{{ts}}" renders as a valid
// number for a sample time and as "1-62135596800000" for another.
func standsAlone(src string, start, end int) bool {
	i := start - 1
	for i >= 0 && strings.IndexByte(" \t\r\n", src[i]) >= 0 {
		i--
	}
	j := end
	for j < len(src) && strings.IndexByte(" \t\r\n", src[j]) >= 0 {
		j++
	}
	before := i < 0 || strings.IndexByte("[{,:", src[i]) >= 0
	after := j >= len(src) || strings.IndexByte("]},", src[j]) >= 0
	return before && after
}

func abbreviate(b []byte) string {
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

func parsePlaceholder(body string, at int) (part, error) {
	fields := strings.Fields(body)
	if len(fields) == 0 {
		return part{}, fmt.Errorf("empty placeholder {{}} at offset %d", at)
	}
	switch fields[0] {
	case "seq", "ts", "client", "uuid":
		if len(fields) != 1 {
			return part{}, fmt.Errorf("placeholder {{%s}} at offset %d takes no argument", body, at)
		}
		return part{kind: map[string]kind{"seq": kindSeq, "ts": kindTS, "client": kindClient, "uuid": kindUUID}[fields[0]]}, nil
	case "pad":
		if len(fields) != 2 {
			return part{}, fmt.Errorf("placeholder {{%s}} at offset %d: want {{pad N}}", body, at)
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil || n < 0 || n > maxPad {
			return part{}, fmt.Errorf("placeholder {{%s}} at offset %d: N must be an integer in [0, %d]", body, at, maxPad)
		}
		return part{kind: kindPad, n: n}, nil
	case "var":
		if len(fields) != 2 || !validName(fields[1]) {
			return part{}, fmt.Errorf("placeholder {{%s}} at offset %d: want {{var NAME}} with NAME of letters, digits and _", body, at)
		}
		return part{kind: kindVar, name: fields[1]}, nil
	}
	return part{}, fmt.Errorf("unknown placeholder {{%s}} at offset %d (known: seq, ts, client, uuid, pad N, var NAME)", body, at)
}

func validName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// String is the template's source.
func (t *Template) String() string { return t.src }

// VarNames returns the names used by {{var NAME}}, sorted, unique.
func (t *Template) VarNames() []string {
	var out []string
	for _, p := range t.parts {
		if p.kind == kindVar && !slices.Contains(out, p.name) {
			out = append(out, p.name)
		}
	}
	slices.Sort(out)
	return out
}

// NeedsUUID reports whether the template holds {{uuid}}.
func (t *Template) NeedsUUID() bool { return t.has(kindUUID) }

// Unique reports whether every rendering differs from the others of a run:
// the template holds {{seq}} or {{uuid}}.
func (t *Template) Unique() bool { return t.has(kindSeq) || t.has(kindUUID) }

func (t *Template) has(k kind) bool {
	return slices.ContainsFunc(t.parts, func(p part) bool { return p.kind == k })
}

// Append renders the template with v and appends it to dst.
func (t *Template) Append(dst []byte, v *Vars) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case kindLit:
			dst = append(dst, p.lit...)
		case kindSeq:
			dst = strconv.AppendUint(dst, v.Seq, 10)
		case kindTS:
			dst = strconv.AppendInt(dst, v.TS.UnixMilli(), 10)
		case kindClient:
			dst = strconv.AppendInt(dst, int64(v.Client), 10)
		case kindUUID:
			if !p.inString {
				dst = append(dst, '"')
			}
			dst = appendUUID(dst, &v.UUID)
			if !p.inString {
				dst = append(dst, '"')
			}
		case kindPad:
			if !p.inString {
				dst = append(dst, '"')
			}
			for range p.n {
				dst = append(dst, 'x')
			}
			if !p.inString {
				dst = append(dst, '"')
			}
		case kindVar:
			dst = appendVar(dst, v.Vars[p.name], p.inString)
		}
	}
	return dst
}

func appendUUID(dst []byte, u *[16]byte) []byte {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return append(dst, b[:]...)
}

// appendVar writes a captured value: as is outside a string (null when
// missing), or as string content inside one.
func appendVar(dst []byte, raw json.RawMessage, inString bool) []byte {
	if !inString {
		if len(raw) == 0 {
			return append(dst, "null"...)
		}
		return append(dst, raw...)
	}
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return appendEscaped(dst, s)
	}
	return appendEscaped(dst, string(raw))
}

// appendEscaped appends s as the content of a JSON string.
func appendEscaped(dst []byte, s string) []byte {
	const hexdigits = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexdigits[c>>4], hexdigits[c&0xf])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return dst
}

// At returns the template of the JSON value at a dotted path ("a.b",
// "items.0.id"), so that a probe can render just the field a reply is
// matched on. Object keys on the path must be plain strings.
func (t *Template) At(path string) (*Template, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	sc := scanner{src: t.src}
	start, end, err := sc.find(strings.Split(path, "."))
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", path, err)
	}
	return Parse(t.src[start:end])
}

// scanner walks the template's source as JSON in which a placeholder
// outside strings is a value.
type scanner struct {
	src string
	i   int
}

func (s *scanner) ws() {
	for s.i < len(s.src) && strings.IndexByte(" \t\r\n", s.src[s.i]) >= 0 {
		s.i++
	}
}

// find returns the span of the value at path.
func (s *scanner) find(path []string) (int, int, error) {
	s.ws()
	for _, seg := range path {
		if s.i >= len(s.src) {
			return 0, 0, errors.New("not found")
		}
		if strings.HasPrefix(s.src[s.i:], "{{") {
			return 0, 0, fmt.Errorf("%q: not an object or array", seg)
		}
		switch s.src[s.i] {
		case '{':
			if err := s.member(seg); err != nil {
				return 0, 0, err
			}
		case '[':
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 {
				return 0, 0, fmt.Errorf("%q is not an array index", seg)
			}
			if err := s.element(idx); err != nil {
				return 0, 0, err
			}
		default:
			return 0, 0, fmt.Errorf("%q: not an object or array", seg)
		}
	}
	start := s.i
	if err := s.value(); err != nil {
		return 0, 0, err
	}
	return start, s.i, nil
}

// member moves to the value of key in the object at s.i.
func (s *scanner) member(key string) error {
	s.i++ // {
	for {
		s.ws()
		if s.i < len(s.src) && s.src[s.i] == '}' {
			return fmt.Errorf("no field %q", key)
		}
		kstart := s.i
		if err := s.value(); err != nil {
			return err
		}
		var k string
		if json.Unmarshal([]byte(s.src[kstart:s.i]), &k) != nil {
			return errors.New("object key is not a plain string")
		}
		s.ws()
		if s.i >= len(s.src) || s.src[s.i] != ':' {
			return errors.New("malformed object")
		}
		s.i++
		s.ws()
		if k == key {
			return nil
		}
		if err := s.value(); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.src) && s.src[s.i] == ',' {
			s.i++
		}
	}
}

// element moves to element idx of the array at s.i.
func (s *scanner) element(idx int) error {
	s.i++ // [
	for n := 0; ; n++ {
		s.ws()
		if s.i < len(s.src) && s.src[s.i] == ']' {
			return fmt.Errorf("no element %d", idx)
		}
		if n == idx {
			return nil
		}
		if err := s.value(); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.src) && s.src[s.i] == ',' {
			s.i++
		}
	}
}

// value skips one value (a placeholder outside strings counts as one).
func (s *scanner) value() error {
	if s.i >= len(s.src) {
		return errors.New("unexpected end")
	}
	switch c := s.src[s.i]; {
	case c == '{' && s.i+1 < len(s.src) && s.src[s.i+1] == '{':
		end := strings.Index(s.src[s.i:], "}}")
		s.i += end + 2
	case c == '"':
		s.i++
		for s.i < len(s.src) && s.src[s.i] != '"' {
			if s.src[s.i] == '\\' {
				s.i++
			}
			s.i++
		}
		s.i++
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		for {
			s.ws()
			if s.i >= len(s.src) {
				return errors.New("unexpected end")
			}
			if s.src[s.i] == closer {
				s.i++
				return nil
			}
			if s.src[s.i] == ',' || s.src[s.i] == ':' {
				s.i++
				continue
			}
			if err := s.value(); err != nil {
				return err
			}
		}
	default:
		for s.i < len(s.src) && strings.IndexByte(",}] \t\r\n:", s.src[s.i]) < 0 {
			s.i++
		}
	}
	return nil
}
