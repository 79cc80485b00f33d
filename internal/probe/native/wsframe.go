package native

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// The event-loop transport's WebSocket framing (RFC 6455 section 5), for a
// client: frames to the server are masked, frames from it must not be. No
// extension is negotiated, so the reserved bits must be zero. The codec is
// written here rather than taken from a library because the loop needs to
// parse frames straight out of a buffer shared by every connection and to
// keep per connection only the bytes of an unfinished frame: frame-level
// libraries (gobwas/ws) read from an io.Reader per connection, which means a
// buffered reader per connection.

// WebSocket opcodes.
const (
	opContinuation byte = 0x0
	opText         byte = 0x1
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xA
)

// maxControlPayload is the largest payload a control frame may carry.
const maxControlPayload = 125

// maxKeptFrameBuffer is the capacity above which a connection's buffer of
// unfinished frame bytes is dropped once empty instead of kept.
const maxKeptFrameBuffer = 1 << 10

// errProtocol marks a frame that breaks RFC 6455.
var errProtocol = errors.New("websocket protocol error")

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	op     byte
	length int64 // payload length
	size   int   // header length in bytes
}

// parseFrameHeader parses the header of a frame from the server at the start
// of b; ok is false while b holds less than the whole header.
func parseFrameHeader(b []byte) (h frameHeader, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	if b[0]&0x70 != 0 {
		return h, false, fmt.Errorf("%w: reserved bits %#x set without an extension", errProtocol, b[0]&0x70)
	}
	if b[1]&0x80 != 0 {
		return h, false, fmt.Errorf("%w: masked frame from the server", errProtocol)
	}
	h.fin, h.op = b[0]&0x80 != 0, b[0]&0x0f
	h.size, h.length = 2, int64(b[1]&0x7f)
	switch h.length {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		h.size, h.length = 4, int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		n := binary.BigEndian.Uint64(b[2:])
		if n>>63 != 0 {
			return h, false, fmt.Errorf("%w: payload length with the top bit set", errProtocol)
		}
		h.size, h.length = 10, int64(n)
	}
	switch h.op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !h.fin {
			return h, false, fmt.Errorf("%w: fragmented control frame", errProtocol)
		}
		if h.length > maxControlPayload {
			return h, false, fmt.Errorf("%w: control frame of %d bytes", errProtocol, h.length)
		}
	default:
		return h, false, fmt.Errorf("%w: unknown opcode %#x", errProtocol, h.op)
	}
	return h, true, nil
}

// frameReader turns the bytes of one connection into whole messages and
// control frames. It keeps only the bytes of an unfinished frame (buf) and
// the fragments of an unfinished message (msg).
type frameReader struct {
	limit int64 // largest message, in bytes
	buf   []byte
	msg   []byte
	msgOp byte // opText or opBinary while msg is being assembled
}

// feed parses buf followed by data and calls fn for every whole message
// (opText, opBinary) and control frame (opPing, opPong, opClose), in order.
// The payload is only valid during the call. When fn returns false, feed
// stops and keeps the bytes not yet parsed for the next call. Errors are
// protocol violations and messages over the limit (websocket.ErrMessageTooBig).
func (r *frameReader) feed(data []byte, fn func(op byte, payload []byte) bool) error {
	in := data
	inBuf := len(r.buf) > 0
	if inBuf {
		r.buf = append(r.buf, data...)
		in = r.buf
	}
	for {
		h, ok, err := parseFrameHeader(in)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if h.op <= opBinary && int64(len(r.msg))+h.length > r.limit {
			return fmt.Errorf("message of more than %d bytes: %w", r.limit, websocket.ErrMessageTooBig)
		}
		end := int64(h.size) + h.length
		if int64(len(in)) < end {
			break
		}
		payload := in[h.size:end]
		in = in[end:]
		more := true
		switch h.op {
		case opText, opBinary:
			if r.msgOp != 0 {
				return fmt.Errorf("%w: new message inside a fragmented one", errProtocol)
			}
			if h.fin {
				more = fn(h.op, payload)
			} else {
				r.msgOp, r.msg = h.op, append(r.msg[:0], payload...)
			}
		case opContinuation:
			if r.msgOp == 0 {
				return fmt.Errorf("%w: continuation frame outside a message", errProtocol)
			}
			r.msg = append(r.msg, payload...)
			if h.fin {
				op := r.msgOp
				r.msgOp = 0
				more = fn(op, r.msg)
				r.msg = r.msg[:0]
				if cap(r.msg) > maxKeptFrameBuffer {
					r.msg = nil
				}
			}
		default:
			more = fn(h.op, payload)
		}
		if !more {
			break
		}
	}
	r.keep(in, inBuf)
	return nil
}

// keep stores the unparsed rest of the input in buf.
func (r *frameReader) keep(rest []byte, inBuf bool) {
	switch {
	case len(rest) == 0:
		r.buf = r.buf[:0]
		if cap(r.buf) > maxKeptFrameBuffer {
			r.buf = nil
		}
	case inBuf:
		r.buf = r.buf[:copy(r.buf, rest)]
	default:
		r.buf = append(r.buf[:0], rest...)
	}
}

// parseClose reads a close frame's payload as the error the connection
// ends with.
func parseClose(p []byte) (websocket.CloseError, error) {
	switch {
	case len(p) == 0:
		return websocket.CloseError{Code: websocket.StatusNoStatusRcvd}, nil
	case len(p) == 1:
		return websocket.CloseError{}, fmt.Errorf("%w: close frame of 1 byte", errProtocol)
	case !utf8.Valid(p[2:]):
		return websocket.CloseError{}, fmt.Errorf("%w: close reason is not UTF-8", errProtocol)
	}
	code := websocket.StatusCode(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return websocket.CloseError{}, fmt.Errorf("%w: close code %d", errProtocol, code)
	}
	return websocket.CloseError{Code: code, Reason: string(p[2:])}, nil
}

// validCloseCode reports whether a peer may send code (RFC 6455 7.4).
func validCloseCode(c websocket.StatusCode) bool {
	switch {
	case c >= 3000 && c <= 4999:
		return true
	case c < 1000 || c > 1014:
		return false
	}
	return c != 1004 && c != 1005 && c != 1006
}

// appendClientFrame appends one final, masked client frame.
func appendClientFrame(dst []byte, op byte, payload []byte, key uint32) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], key)
	dst = append(dst, k[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	mask(dst[start:], k)
	return dst
}

// mask XORs b with the masking key, eight bytes at a time.
func mask(b []byte, k [4]byte) {
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32)<<32 | uint64(k32)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= k[i&3]
	}
}

// closePayload is a close frame's payload with code.
func closePayload(code websocket.StatusCode) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(code))
}
