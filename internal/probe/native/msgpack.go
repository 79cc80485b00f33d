package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// The socket.io-msgpack-parser wire format (version 3, what the npm package
// socket.io-msgpack-parser speaks): every Socket.IO packet is one binary
// Engine.IO message holding a MessagePack map {type, nsp, data, id}, with
// type 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR (no binary
// packet types: binary values travel inside the map). Engine.IO's own
// packets (open, ping, pong, close) stay text.
//
// The probe contract carries arguments as JSON, so arguments are converted
// at the edge: MessagePack to JSON on receive, JSON to MessagePack on send.
// A MessagePack binary value (bin) becomes a JSON string of its base64
// encoding; map keys that are not strings are printed; key order is not
// kept. These conversions are per packet, only with SOAK_PARSER=msgpack.

// ParserJSON and ParserMsgpack name the Socket.IO parsers (probe.Target.Parser).
const (
	ParserJSON    = "json"
	ParserMsgpack = "msgpack"
)

// mpPacket is a decoded msgpack Socket.IO packet.
type mpPacket struct {
	typ   byte // sioConnect...sioConnectError
	nsp   string
	id    uint64
	hasID bool
	data  any // the decoded data field (nil when absent)
}

// decodeMsgpackPacket decodes one packet and checks it as the parser does.
func decodeMsgpackPacket(b []byte) (mpPacket, error) {
	v, err := mpValue(msgpack.NewDecoder(bytes.NewReader(b)), 0)
	if err != nil {
		return mpPacket{}, fmt.Errorf("msgpack packet: %w", err)
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return mpPacket{}, errors.New("msgpack packet: not a map")
	}
	var p mpPacket
	t, ok := mpInt(raw["type"])
	if !ok || t < 0 || t > 4 {
		return p, errors.New("msgpack packet: invalid packet type")
	}
	p.typ = sioConnect + byte(t)
	if p.nsp, ok = raw["nsp"].(string); !ok {
		return p, errors.New("msgpack packet: invalid namespace")
	}
	p.data = raw["data"]
	if id, present := raw["id"]; present && id != nil {
		n, ok := mpInt(id)
		if !ok || n < 0 {
			return p, errors.New("msgpack packet: invalid packet id")
		}
		p.id, p.hasID = uint64(n), true
	}
	switch p.typ {
	case sioEvent, sioAck:
		if _, ok := p.data.([]any); !ok {
			return p, errors.New("msgpack packet: invalid payload")
		}
	}
	return p, nil
}

// maxMsgpackDepth bounds the nesting of a decoded value.
const maxMsgpackDepth = 64

// mpValue decodes one value: maps with their keys printed as strings,
// arrays, and JavaScript's undefined (which notepack.io, the parser's
// encoder, writes as the extension type 0) as nil; other extension types
// are refused.
func mpValue(d *msgpack.Decoder, depth int) (any, error) {
	if depth > maxMsgpackDepth {
		return nil, errors.New("nested too deep")
	}
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil || n < 0 {
			return nil, err
		}
		m := make(map[string]any, min(n, 64))
		for range n {
			k, err := mpValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			v, err := mpValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			m[ks] = v
		}
		return m, nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil || n < 0 {
			return nil, err
		}
		a := make([]any, 0, min(n, 64))
		for range n {
			v, err := mpValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case msgpcode.IsExt(c):
		id, n, err := d.DecodeExtHeader()
		if err != nil {
			return nil, err
		}
		if id != 0 || n > 16 {
			return nil, fmt.Errorf("unsupported extension type %d", id)
		}
		var skip [16]byte
		return nil, d.ReadFull(skip[:n])
	}
	return d.DecodeInterfaceLoose()
}

// mpInt reads a MessagePack integer (or an integral float, as JavaScript
// numbers may be encoded).
func mpInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		if n > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	case float32:
		return mpInt(float64(n))
	}
	return 0, false
}

// inNamespace reports whether the packet belongs to nsp.
func (p *mpPacket) inNamespace(nsp string) bool { return p.nsp == nsp }

// event returns an EVENT's name and its arguments as JSON.
func (p *mpPacket) event() (string, []json.RawMessage, error) {
	arr := p.data.([]any)
	if len(arr) == 0 {
		return "", nil, errors.New("msgpack event without a name")
	}
	name, ok := arr[0].(string)
	if !ok {
		return "", nil, errors.New("msgpack event name is not a string")
	}
	args, err := mpArgs(arr[1:])
	return name, args, err
}

// args returns an ACK's arguments as JSON.
func (p *mpPacket) args() ([]json.RawMessage, error) { return mpArgs(p.data.([]any)) }

func mpArgs(vs []any) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(vs))
	for i, v := range vs {
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return nil, fmt.Errorf("msgpack argument %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

// jsonable turns decoded MessagePack into values encoding/json prints:
// maps with non-string keys get printed keys ([]byte prints as base64).
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	}
	return v
}

// dataJSON returns a packet's data as JSON (CONNECT, CONNECT_ERROR).
func (p *mpPacket) dataJSON() []byte {
	if p.data == nil {
		return nil
	}
	b, err := json.Marshal(jsonable(p.data))
	if err != nil {
		return nil
	}
	return b
}

// fromJSON decodes a JSON value into what the MessagePack encoder writes as
// the same value: integers as integers, other numbers as floats.
func fromJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// appendMsgpack appends the encoding of packet {type, nsp[, data][, id]}.
func appendMsgpack(dst []byte, typ byte, nsp string, data any, hasData bool, id int64) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := msgpack.NewEncoder(buf)
	n := 2
	if hasData {
		n++
	}
	if id >= 0 {
		n++
	}
	err := enc.EncodeMapLen(n)
	if err == nil {
		err = errors.Join(enc.EncodeString("type"), enc.EncodeInt(int64(typ-sioConnect)), enc.EncodeString("nsp"), enc.EncodeString(nsp))
	}
	if err == nil && hasData {
		err = errors.Join(enc.EncodeString("data"), enc.Encode(data))
	}
	if err == nil && id >= 0 {
		err = errors.Join(enc.EncodeString("id"), enc.EncodeInt(id))
	}
	return buf.Bytes(), err
}

// appendMsgpackEvent appends an EVENT packet: [event, args...].
func appendMsgpackEvent(dst []byte, nsp string, ackID int64, event string, args []json.RawMessage) ([]byte, error) {
	data := make([]any, 0, 1+len(args))
	data = append(data, event)
	for i, a := range args {
		v, err := fromJSON(a)
		if err != nil {
			return dst, fmt.Errorf("argument %d: %w", i, err)
		}
		data = append(data, v)
	}
	return appendMsgpack(dst, sioEvent, nsp, data, true, ackID)
}

// appendMsgpackConnect appends a CONNECT packet with the auth object, if
// any.
func appendMsgpackConnect(dst []byte, nsp string, auth json.RawMessage) ([]byte, error) {
	if len(auth) == 0 {
		return appendMsgpack(dst, sioConnect, nsp, nil, false, -1)
	}
	v, err := fromJSON(auth)
	if err != nil {
		return dst, errors.New("auth payload is not JSON") // never quote it: a secret
	}
	return appendMsgpack(dst, sioConnect, nsp, v, true, -1)
}

// handshakeMsgpack handles a msgpack packet while waiting for the CONNECT
// answer; see handshakeMessage.
func (c *conn) handshakeMsgpack(msg []byte) (bool, *probe.ConnectError) {
	protoErr := func(e error) (bool, *probe.ConnectError) {
		return true, &probe.ConnectError{Reason: probe.FailProtocol, Err: fmt.Errorf("during the handshake: %w", e)}
	}
	p, err := decodeMsgpackPacket(msg)
	if err != nil {
		return protoErr(err)
	}
	if !p.inNamespace(c.nsp) {
		return false, nil
	}
	switch p.typ {
	case sioConnect:
		data := p.dataJSON()
		if !connectReplyHasSID(data) {
			return protoErr(errors.New("connect answer without sid"))
		}
		c.rec.PID = connectReplyPID(data)
		c.rec.Recovered = c.offered.PID != "" && c.rec.PID == c.offered.PID
		return true, nil
	case sioConnectError:
		data := p.dataJSON()
		m, perr := parseConnectError(data)
		if perr != nil {
			return protoErr(perr)
		}
		return true, &probe.ConnectError{Reason: probe.FailConnectError, Message: m, Data: connectErrorData(data)}
	case sioDisconnect:
		return protoErr(errors.New("disconnect packet before connect"))
	case sioEvent:
		c.rec.Replayed++
		if len(c.early) >= maxEarlyEvents {
			return false, nil
		}
		name, args, err := p.event()
		if err != nil {
			return protoErr(err)
		}
		c.early = append(c.early, earlyEvent{name: name, args: args, id: p.id, hasID: p.hasID})
	}
	return false, nil
}

// handleMsgpack handles a msgpack packet of an established connection.
func (c *conn) handleMsgpack(msg []byte) outcome {
	p, err := decodeMsgpackPacket(msg)
	if err != nil {
		return parseError(err)
	}
	if !p.inNamespace(c.nsp) {
		return outcome{}
	}
	switch p.typ {
	case sioEvent:
		name, args, err := p.event()
		if err != nil {
			return parseError(err)
		}
		return c.deliverEvent(name, args, p.id, p.hasID)
	case sioAck:
		if !p.hasID {
			return parseError(errAckWithoutID)
		}
		args, err := p.args()
		if err != nil {
			return parseError(err)
		}
		c.onAck(p.id, args)
	case sioDisconnect:
		return outcome{reason: probe.ReasonServerDisconnect, err: errServerDisconnect, graceful: true}
	case sioConnectError:
		msg, _ := parseConnectError(p.dataJSON())
		return outcome{reason: probe.ReasonServerDisconnect, err: fmt.Errorf("server sent CONNECT_ERROR after connect: %q", msg), graceful: true}
	}
	return outcome{}
}
