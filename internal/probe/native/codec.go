package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// This file holds the Engine.IO v4 and Socket.IO v5 packet codec: pure
// functions over byte slices, with no I/O, so that they can be table-tested
// and fuzzed. Decoders never panic and never retain their input beyond the
// slices they return into it.

// Engine.IO v4 packet types: the first byte of a text WebSocket message.
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioUpgrade = '5'
	eioNoop    = '6'
)

// Socket.IO v5 packet types: the first byte of an Engine.IO MESSAGE payload.
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
	sioBinaryEvent  = '5'
	sioBinaryAck    = '6'
)

const (
	// mainNamespace is the namespace of packets that name none.
	mainNamespace = "/"
	// maxAttachmentsWire bounds the attachment count the decoder accepts at
	// all; the driver applies its own, lower, limit.
	maxAttachmentsWire = 1 << 16
	// maxPingMillis bounds pingInterval and pingTimeout (the largest delay a
	// JavaScript timer accepts).
	maxPingMillis = math.MaxInt32
	// maxErrorMessage bounds the server text copied into a ConnectError.
	maxErrorMessage = 512
)

// Errors of the codec. They describe the packet, never quote it.
var (
	errEmptyPacket     = errors.New("empty packet")
	errBadAttachments  = errors.New("invalid binary attachment count")
	errBadAckID        = errors.New("invalid ack id")
	errNotArray        = errors.New("payload is not a JSON array")
	errEmptyEvent      = errors.New("event payload has no event name")
	errBadEventName    = errors.New("event name is not a string")
	errTrailingData    = errors.New("trailing data after JSON value")
	errBadConnectReply = errors.New("connect payload is not a JSON object")
)

// decodeEngine splits a text WebSocket message into its Engine.IO packet type
// and payload.
func decodeEngine(b []byte) (typ byte, payload []byte, err error) {
	if len(b) == 0 {
		return 0, nil, errEmptyPacket
	}
	if b[0] < eioOpen || b[0] > eioNoop {
		return 0, nil, fmt.Errorf("unknown engine.io packet type 0x%02x", b[0])
	}
	return b[0], b[1:], nil
}

// openPacket is the content of the Engine.IO OPEN packet.
type openPacket struct {
	sid          string
	upgrades     []string
	pingInterval time.Duration
	pingTimeout  time.Duration
	maxPayload   int64
}

// decodeOpen parses the payload of the Engine.IO OPEN packet (what follows
// the '0'). sid, pingInterval and pingTimeout are required; maxPayload is
// optional. It runs once per connection, so it may use encoding/json.
func decodeOpen(payload []byte) (openPacket, error) {
	var raw struct {
		SID          *string  `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval *int64   `json:"pingInterval"`
		PingTimeout  *int64   `json:"pingTimeout"`
		MaxPayload   *int64   `json:"maxPayload"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return openPacket{}, fmt.Errorf("invalid open packet: %w", err)
	}
	switch {
	case raw.SID == nil || *raw.SID == "":
		return openPacket{}, errors.New("invalid open packet: missing sid")
	case raw.PingInterval == nil || *raw.PingInterval <= 0 || *raw.PingInterval > maxPingMillis:
		return openPacket{}, errors.New("invalid open packet: missing or invalid pingInterval")
	case raw.PingTimeout == nil || *raw.PingTimeout <= 0 || *raw.PingTimeout > maxPingMillis:
		return openPacket{}, errors.New("invalid open packet: missing or invalid pingTimeout")
	case raw.MaxPayload != nil && *raw.MaxPayload < 0:
		return openPacket{}, errors.New("invalid open packet: negative maxPayload")
	}
	p := openPacket{
		sid:          *raw.SID,
		upgrades:     raw.Upgrades,
		pingInterval: time.Duration(*raw.PingInterval) * time.Millisecond,
		pingTimeout:  time.Duration(*raw.PingTimeout) * time.Millisecond,
	}
	if raw.MaxPayload != nil {
		p.maxPayload = *raw.MaxPayload
	}
	return p, nil
}

// sioPacket is a decoded Socket.IO packet header. nsp and data point into the
// decoded buffer.
type sioPacket struct {
	typ         byte
	nsp         []byte // nil for the main namespace
	attachments int    // BINARY_EVENT and BINARY_ACK only
	id          uint64
	hasID       bool
	data        []byte // the JSON payload, possibly empty, not validated
}

// namespace returns the packet's namespace as a string for messages and
// tests; the hot path compares nsp directly.
func (p *sioPacket) namespace() string {
	if p.nsp == nil {
		return mainNamespace
	}
	return string(p.nsp)
}

// inNamespace reports whether the packet belongs to namespace nsp.
func (p *sioPacket) inNamespace(nsp string) bool {
	if p.nsp == nil {
		return nsp == mainNamespace
	}
	return string(p.nsp) == nsp
}

// decodeSocket parses the header of a Socket.IO packet (the payload of an
// Engine.IO MESSAGE): type, attachment count, namespace and ack id. The JSON
// payload is returned unparsed in data.
func decodeSocket(b []byte) (sioPacket, error) {
	var p sioPacket
	if len(b) == 0 {
		return p, errEmptyPacket
	}
	p.typ = b[0]
	if p.typ < sioConnect || p.typ > sioBinaryAck {
		return p, fmt.Errorf("unknown socket.io packet type 0x%02x", p.typ)
	}
	i := 1
	if p.typ == sioBinaryEvent || p.typ == sioBinaryAck {
		start := i
		n := 0
		for i < len(b) && isDigit(b[i]) {
			n = n*10 + int(b[i]-'0')
			if n > maxAttachmentsWire {
				return p, errBadAttachments
			}
			i++
		}
		if i == start || i >= len(b) || b[i] != '-' {
			return p, errBadAttachments
		}
		p.attachments = n
		i++
	}
	if i < len(b) && b[i] == '/' {
		start := i
		for i < len(b) && b[i] != ',' {
			i++
		}
		p.nsp = b[start:i:i]
		if i < len(b) {
			i++ // the comma
		}
		if len(p.nsp) == 1 {
			p.nsp = nil // "/," names the main namespace explicitly
		}
	}
	if i < len(b) && isDigit(b[i]) {
		var id uint64
		for i < len(b) && isDigit(b[i]) {
			d := uint64(b[i] - '0')
			if id > (math.MaxUint64-d)/10 {
				return p, errBadAckID
			}
			id = id*10 + d
			i++
		}
		p.id, p.hasID = id, true
	}
	p.data = b[i:]
	return p, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseEvent splits an EVENT payload into the event name and its arguments.
// The arguments point into data. The name may be a JSON string or number,
// as the JavaScript implementation accepts both.
func parseEvent(data []byte, dst []json.RawMessage) (string, []json.RawMessage, error) {
	all, err := splitArray(data, dst)
	if err != nil {
		return "", nil, err
	}
	if len(all) == 0 {
		return "", nil, errEmptyEvent
	}
	name, err := decodeEventName(all[0])
	if err != nil {
		return "", nil, err
	}
	return name, all[1:], nil
}

// decodeEventName decodes the first element of an EVENT array.
func decodeEventName(raw []byte) (string, error) {
	switch {
	case len(raw) >= 2 && raw[0] == '"':
		inner := raw[1 : len(raw)-1]
		for _, c := range inner {
			if c == '\\' {
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return "", errBadEventName
				}
				return s, nil
			}
		}
		return string(inner), nil
	case len(raw) > 0 && (raw[0] == '-' || isDigit(raw[0])):
		return string(raw), nil
	}
	return "", errBadEventName
}

// parseConnectError extracts the message of a CONNECT_ERROR payload: an
// object with a "message" (and optionally "data") field, or, from older
// servers, a bare JSON string. An empty payload gives an empty message.
func parseConnectError(data []byte) (string, error) {
	i := skipSpace(data, 0)
	if i == len(data) {
		return "", nil
	}
	var msg string
	switch data[i] {
	case '"':
		if err := json.Unmarshal(data, &msg); err != nil {
			return "", fmt.Errorf("invalid connect_error payload: %w", err)
		}
	case '{':
		var v struct {
			Message json.RawMessage `json:"message"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return "", fmt.Errorf("invalid connect_error payload: %w", err)
		}
		if len(v.Message) > 0 && v.Message[0] == '"' {
			_ = json.Unmarshal(v.Message, &msg) // valid: checked above
		} else if len(v.Message) > 0 && string(v.Message) != "null" {
			msg = string(v.Message)
		}
	default:
		return "", errors.New("invalid connect_error payload: not an object or string")
	}
	return truncateUTF8(msg, maxErrorMessage), nil
}

// connectReplyHasSID reports whether a CONNECT answer (already checked by
// checkConnectReply) carries a non-empty string sid, as every Socket.IO v3+
// server sends.
func connectReplyHasSID(data []byte) bool {
	var v struct {
		SID string `json:"sid"`
	}
	return json.Unmarshal(data, &v) == nil && v.SID != ""
}

// connectErrorData returns the `data` field of a CONNECT_ERROR payload
// object as compact JSON, bounded and redacted by
// probe.RedactConnectErrorData; empty when there is none.
func connectErrorData(payload []byte) string {
	var v struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(payload, &v) != nil || len(v.Data) == 0 || string(v.Data) == "null" {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, v.Data) != nil {
		return ""
	}
	return probe.RedactConnectErrorData(truncateUTF8(b.String(), maxErrorMessage))
}

// checkConnectReply validates the payload of the server's CONNECT answer:
// empty (Socket.IO v4 servers) or a JSON object such as {"sid":"..."}.
func checkConnectReply(data []byte) error {
	i := skipSpace(data, 0)
	if i == len(data) {
		return nil
	}
	if data[i] != '{' {
		return errBadConnectReply
	}
	end, err := scanValue(data, i, 0)
	if err != nil {
		return err
	}
	if skipSpace(data, end) != len(data) {
		return errTrailingData
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// appendNamespace appends "nsp," unless nsp is the main namespace.
func appendNamespace(dst []byte, nsp string) []byte {
	if nsp == mainNamespace || nsp == "" {
		return dst
	}
	dst = append(dst, nsp...)
	return append(dst, ',')
}

// appendConnect appends the CONNECT packet for nsp with the optional auth
// object: 40[/nsp,][auth].
func appendConnect(dst []byte, nsp string, auth json.RawMessage) []byte {
	dst = append(dst, eioMessage, sioConnect)
	dst = appendNamespace(dst, nsp)
	return append(dst, auth...)
}

// appendDisconnect appends the DISCONNECT packet for nsp: 41[/nsp,].
func appendDisconnect(dst []byte, nsp string) []byte {
	dst = append(dst, eioMessage, sioDisconnect)
	return appendNamespace(dst, nsp)
}

// appendEmptyAck appends an ACK packet without arguments: 43[/nsp,]<id>[].
func appendEmptyAck(dst []byte, nsp string, id uint64) []byte {
	dst = append(dst, eioMessage, sioAck)
	dst = appendNamespace(dst, nsp)
	dst = strconv.AppendUint(dst, id, 10)
	return append(dst, '[', ']')
}

// appendEvent appends an EVENT packet: 42[/nsp,][ackID]["event",args...].
// A negative ackID asks for no ack. args must be complete JSON values; they
// are copied verbatim.
func appendEvent(dst []byte, nsp string, ackID int64, event string, args []json.RawMessage) []byte {
	dst = append(dst, eioMessage, sioEvent)
	dst = appendNamespace(dst, nsp)
	if ackID >= 0 {
		dst = strconv.AppendInt(dst, ackID, 10)
	}
	dst = append(dst, '[')
	dst = appendJSONString(dst, event)
	for _, a := range args {
		dst = append(dst, ',')
		dst = append(dst, a...)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
