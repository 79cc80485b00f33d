package native

import (
	"encoding/json"
	"errors"
)

// A small validating JSON scanner: it finds where a JSON value ends without
// decoding it, so that the reader can split an EVENT or ACK array into its
// arguments without reflection or allocation. It accepts exactly what
// encoding/json's Valid accepts (including its nesting limit), and like it
// does not check UTF-8.

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

var (
	errJSONTruncated = errors.New("truncated JSON")
	errJSONSyntax    = errors.New("invalid JSON")
	errJSONDepth     = errors.New("JSON nested too deeply")
)

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// splitArray validates that b is one JSON array (surrounding whitespace
// allowed) and appends its elements, without surrounding whitespace, to dst.
// The elements point into b and have their capacity clipped.
func splitArray(b []byte, dst []json.RawMessage) ([]json.RawMessage, error) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '[' {
		return dst, errNotArray
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			start := i
			end, err := scanValue(b, i, 1)
			if err != nil {
				return dst, err
			}
			dst = append(dst, json.RawMessage(b[start:end:end]))
			i = skipSpace(b, end)
			if i == len(b) {
				return dst, errJSONTruncated
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ',' {
				return dst, errJSONSyntax
			}
			i = skipSpace(b, i+1)
		}
	}
	if skipSpace(b, i) != len(b) {
		return dst, errTrailingData
	}
	return dst, nil
}

// scanValue returns the index just past the JSON value that starts at b[i],
// after optional whitespace. depth is the number of containers already open
// around it. It works iteratively, so hostile nesting cannot grow the
// goroutine stack.
func scanValue(b []byte, i, depth int) (int, error) {
	var small [64]byte
	stack := small[:0] // the closing bracket of each open container
	var err error
	for {
		// A value is expected at b[i].
		i = skipSpace(b, i)
		if i == len(b) {
			return 0, errJSONTruncated
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			if depth+len(stack)+1 > maxJSONDepth {
				return 0, errJSONDepth
			}
			j := skipSpace(b, i+1)
			if j < len(b) && b[j] == closer {
				i = j + 1
				break
			}
			stack = append(stack, closer)
			i = j
			if c == '{' {
				if i, err = scanKey(b, i); err != nil {
					return 0, err
				}
			}
			continue
		case c == '"':
			i, err = scanString(b, i)
		case c == 't':
			i, err = scanLiteral(b, i, "true")
		case c == 'f':
			i, err = scanLiteral(b, i, "false")
		case c == 'n':
			i, err = scanLiteral(b, i, "null")
		case c == '-' || isDigit(c):
			i, err = scanNumber(b, i)
		default:
			return 0, errJSONSyntax
		}
		if err != nil {
			return 0, err
		}
		// A value ended: close containers until one expects another element.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipSpace(b, i)
			if i == len(b) {
				return 0, errJSONTruncated
			}
			top := stack[len(stack)-1]
			if b[i] == top {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return 0, errJSONSyntax
			}
			i++
			if top == '}' {
				if i, err = scanKey(b, i); err != nil {
					return 0, err
				}
			}
			break
		}
	}
}

// scanKey scans `"key" :` (with whitespace) and returns the index after ':'.
func scanKey(b []byte, i int) (int, error) {
	i = skipSpace(b, i)
	if i == len(b) {
		return 0, errJSONTruncated
	}
	if b[i] != '"' {
		return 0, errJSONSyntax
	}
	i, err := scanString(b, i)
	if err != nil {
		return 0, err
	}
	i = skipSpace(b, i)
	if i == len(b) {
		return 0, errJSONTruncated
	}
	if b[i] != ':' {
		return 0, errJSONSyntax
	}
	return i + 1, nil
}

// scanString scans the string that starts with the quote at b[i].
func scanString(b []byte, i int) (int, error) {
	for i++; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 == len(b) {
				return 0, errJSONTruncated
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-(i+2) < 4 {
					return 0, errJSONTruncated
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, errJSONSyntax
					}
				}
				i += 6
			default:
				return 0, errJSONSyntax
			}
		case c < 0x20:
			return 0, errJSONSyntax
		default:
			i++
		}
	}
	return 0, errJSONTruncated
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanLiteral scans true, false or null.
func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) {
		if string(b[i:]) == lit[:len(b)-i] {
			return 0, errJSONTruncated
		}
		return 0, errJSONSyntax
	}
	if string(b[i:i+len(lit)]) != lit {
		return 0, errJSONSyntax
	}
	return i + len(lit), nil
}

// scanNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return 0, errJSONTruncated
	case b[i] == '0':
		i++
	case isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, errJSONSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return 0, errJSONSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == start {
			return 0, errJSONSyntax
		}
	}
	return i, nil
}
