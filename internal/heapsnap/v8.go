package heapsnap

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Group is what one constructor (V8) or allocation site (pprof) holds in
// one capture.
type Group struct {
	Count int64
	Bytes int64
}

// Aggregate is a capture summed by group name.
type Aggregate struct {
	Groups map[string]Group
	Count  int64
	Bytes  int64
}

// v8Meta is the part of a snapshot's "snapshot" object the parser needs.
type v8Meta struct {
	Meta struct {
		NodeFields []string          `json:"node_fields"`
		NodeTypes  []json.RawMessage `json:"node_types"`
	} `json:"meta"`
	NodeCount int64 `json:"node_count"`
}

// groupKey identifies a group while the strings are not yet read: objects
// and native objects are grouped by name (a string index), every other node
// type by the type.
type groupKey struct {
	typ  int
	name int // -1: grouped by type
}

// typeGroupNames names the groups of node types as Chrome DevTools does.
var typeGroupNames = map[string]string{
	"hidden": "(system)", "code": "(compiled code)", "array": "(array)", "string": "(string)",
	"closure": "(closure)", "regexp": "(regexp)", "number": "(number)", "heap number": "(number)",
	"concatenated string": "(concatenated string)", "sliced string": "(sliced string)",
	"symbol": "(symbol)", "bigint": "(bigint)", "synthetic": "(synthetic)", "object shape": "(object shape)",
}

// ParseV8 reads a V8 .heapsnapshot and sums self size and count per
// constructor. It streams: memory grows with the number of distinct
// constructor names, not with the snapshot.
func ParseV8(r io.Reader) (*Aggregate, error) {
	s := &scanner{r: bufio.NewReaderSize(r, 1<<20)}
	if err := s.expect('{'); err != nil {
		return nil, err
	}
	var (
		meta      *v8Meta
		types     []string
		groups    = map[groupKey]*Group{}
		nodes     int64
		nodesDone bool
		wanted    = map[int]string{} // string index -> name, filled from "strings"
		allStr    []string           // only when strings precede nodes
		strsDone  bool
		strCount  int
	)
	for first := true; ; first = false {
		c, err := s.peek()
		if err != nil {
			return nil, err
		}
		if c == '}' {
			break
		}
		if !first {
			if err := s.expect(','); err != nil {
				return nil, err
			}
		}
		key, err := s.str()
		if err != nil {
			return nil, err
		}
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		switch key {
		case "snapshot":
			raw, err := s.raw(64 << 20)
			if err != nil {
				return nil, fmt.Errorf("snapshot meta: %w", err)
			}
			meta = &v8Meta{}
			if err := json.Unmarshal(raw, meta); err != nil {
				return nil, fmt.Errorf("snapshot meta: %w", err)
			}
			if len(meta.Meta.NodeTypes) == 0 {
				return nil, errors.New("snapshot meta: no node_types")
			}
			if err := json.Unmarshal(meta.Meta.NodeTypes[0], &types); err != nil {
				return nil, fmt.Errorf("snapshot meta: node_types[0]: %w", err)
			}
		case "nodes":
			if meta == nil {
				return nil, errors.New("nodes before the snapshot meta")
			}
			f := meta.Meta.NodeFields
			ti, ni, si := slices.Index(f, "type"), slices.Index(f, "name"), slices.Index(f, "self_size")
			if ti < 0 || ni < 0 || si < 0 || len(f) == 0 {
				return nil, errors.New("snapshot meta: node_fields lacks type, name or self_size")
			}
			width := len(f)
			var typ, name, size int64
			err := s.intArray(func(i int64, v int64) {
				switch int(i % int64(width)) {
				case ti:
					typ = v
				case ni:
					name = v
				case si:
					size = v
				}
				if int(i%int64(width)) == width-1 {
					k := groupKey{typ: int(typ), name: -1}
					if typ >= 0 && int(typ) < len(types) && (types[typ] == "object" || types[typ] == "native") {
						k.name = int(name)
					}
					g := groups[k]
					if g == nil {
						g = &Group{}
						groups[k] = g
					}
					g.Count++
					g.Bytes += size
					nodes++
				}
			})
			if err != nil {
				return nil, fmt.Errorf("nodes: %w", err)
			}
			nodesDone = true
			for k := range groups {
				if k.name >= 0 {
					wanted[k.name] = ""
				}
			}
		case "strings":
			i := 0
			err := s.strArray(func(raw []byte) error {
				defer func() { i++ }()
				if !nodesDone {
					v, err := unquote(raw)
					allStr = append(allStr, v)
					return err
				}
				if _, ok := wanted[i]; ok {
					v, err := unquote(raw)
					wanted[i] = v
					return err
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("strings: %w", err)
			}
			strsDone, strCount = true, i
		default:
			if err := s.skip(); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	if meta == nil || !nodesDone || !strsDone {
		return nil, errors.New("not a V8 heap snapshot: snapshot, nodes or strings missing")
	}
	if meta.NodeCount != 0 && meta.NodeCount != nodes {
		return nil, fmt.Errorf("snapshot says %d nodes, found %d", meta.NodeCount, nodes)
	}
	out := &Aggregate{Groups: make(map[string]Group, len(groups))}
	for k, g := range groups {
		var name string
		switch {
		case k.name >= 0 && allStr != nil:
			if k.name >= len(allStr) {
				return nil, fmt.Errorf("node name %d beyond the %d strings", k.name, len(allStr))
			}
			name = allStr[k.name]
		case k.name >= 0:
			n, ok := wanted[k.name]
			if !ok || k.name >= strCount {
				return nil, fmt.Errorf("node name %d beyond the strings", k.name)
			}
			name = n
		case k.typ >= 0 && k.typ < len(types):
			name = typeGroupNames[types[k.typ]]
			if name == "" {
				name = "(" + types[k.typ] + ")"
			}
		default:
			return nil, fmt.Errorf("node type %d unknown", k.typ)
		}
		cur := out.Groups[name]
		cur.Count += g.Count
		cur.Bytes += g.Bytes
		out.Groups[name] = cur
		out.Count += g.Count
		out.Bytes += g.Bytes
	}
	return out, nil
}

func unquote(raw []byte) (string, error) {
	if !slices.Contains(raw, '\\') {
		return string(raw[1 : len(raw)-1]), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	return v, nil
}

// scanner is a small streaming JSON reader for the shapes of a heap
// snapshot: big arrays of integers and of strings are read element by
// element.
type scanner struct {
	r   *bufio.Reader
	buf []byte
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func (s *scanner) eofErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (s *scanner) peek() (byte, error) {
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return 0, s.eofErr(err)
		}
		if !isSpace(c) {
			_ = s.r.UnreadByte()
			return c, nil
		}
	}
}

func (s *scanner) expect(want byte) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c != want {
		return fmt.Errorf("want %q, got %q", want, c)
	}
	_, _ = s.r.ReadByte()
	return nil
}

// rawString reads a string and returns it with its quotes, undecoded. The
// slice is valid until the next call.
func (s *scanner) rawString() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	s.buf = append(s.buf[:0], '"')
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return nil, s.eofErr(err)
		}
		s.buf = append(s.buf, c)
		switch c {
		case '\\':
			c, err = s.r.ReadByte()
			if err != nil {
				return nil, s.eofErr(err)
			}
			s.buf = append(s.buf, c)
		case '"':
			return s.buf, nil
		}
	}
}

func (s *scanner) str() (string, error) {
	raw, err := s.rawString()
	if err != nil {
		return "", err
	}
	return unquote(raw)
}

// intArray reads an array of integers, calling fn with each index and value.
func (s *scanner) intArray(fn func(i, v int64)) error {
	if err := s.expect('['); err != nil {
		return err
	}
	var i int64
	if c, err := s.peek(); err != nil {
		return err
	} else if c == ']' {
		_, _ = s.r.ReadByte()
		return nil
	}
	for {
		if _, err := s.peek(); err != nil {
			return err
		}
		var v int64
		neg, digits := false, 0
		for {
			c, err := s.r.ReadByte()
			if err != nil {
				return s.eofErr(err)
			}
			switch {
			case c >= '0' && c <= '9':
				v = v*10 + int64(c-'0')
				digits++
				continue
			case c == '-' && digits == 0 && !neg:
				neg = true
				continue
			}
			_ = s.r.UnreadByte()
			break
		}
		if digits == 0 {
			c, _ := s.peek()
			return fmt.Errorf("element %d: want an integer, got %q", i, c)
		}
		if neg {
			v = -v
		}
		fn(i, v)
		i++
		c, err := s.peek()
		if err != nil {
			return err
		}
		_, _ = s.r.ReadByte()
		if c == ']' {
			return nil
		}
		if c != ',' {
			return fmt.Errorf("element %d: want ',' or ']', got %q", i, c)
		}
	}
}

// strArray reads an array of strings, calling fn with each raw string.
func (s *scanner) strArray(fn func(raw []byte) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if c, err := s.peek(); err != nil {
		return err
	} else if c == ']' {
		_, _ = s.r.ReadByte()
		return nil
	}
	for {
		raw, err := s.rawString()
		if err != nil {
			return err
		}
		if err := fn(raw); err != nil {
			return err
		}
		c, err := s.peek()
		if err != nil {
			return err
		}
		_, _ = s.r.ReadByte()
		if c == ']' {
			return nil
		}
		if c != ',' {
			return fmt.Errorf("want ',' or ']', got %q", c)
		}
	}
}

// walk reads one value; with keep it also returns its bytes (at most max).
func (s *scanner) walk(keep bool, max int) ([]byte, error) {
	var out []byte
	add := func(c byte) error {
		if keep {
			if len(out) >= max {
				return fmt.Errorf("value larger than %d bytes", max)
			}
			out = append(out, c)
		}
		return nil
	}
	c, err := s.peek()
	if err != nil {
		return nil, err
	}
	if c == '"' {
		raw, err := s.rawString()
		if err != nil {
			return nil, err
		}
		if keep {
			out = append(out, raw...)
		}
		return out, nil
	}
	if c != '{' && c != '[' {
		// Number or literal: up to the next delimiter.
		for {
			c, err := s.r.ReadByte()
			if err != nil {
				return nil, s.eofErr(err)
			}
			if c == ',' || c == '}' || c == ']' || isSpace(c) {
				_ = s.r.UnreadByte()
				return out, nil
			}
			if err := add(c); err != nil {
				return nil, err
			}
		}
	}
	depth := 0
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return nil, s.eofErr(err)
		}
		if c == '"' {
			_ = s.r.UnreadByte()
			raw, err := s.rawString()
			if err != nil {
				return nil, err
			}
			for _, b := range raw {
				if err := add(b); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(c); err != nil {
			return nil, err
		}
		switch c {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return out, nil
			}
		}
	}
}

func (s *scanner) skip() error { _, err := s.walk(false, 0); return err }

func (s *scanner) raw(max int) ([]byte, error) { return s.walk(true, max) }
