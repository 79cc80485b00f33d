package native

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// maxEarlyEvents bounds the events kept while waiting for the CONNECT
// answer; more are counted as replayed but not delivered.
const maxEarlyEvents = 1024

// earlyEvent is an EVENT that arrived before the CONNECT answer: a
// recovering server replays the missed packets first.
type earlyEvent struct {
	name  string
	args  []json.RawMessage
	id    uint64
	hasID bool
}

var errBreak = errors.New("transport broken on purpose (recovery probe)")

var _ probe.Recoverable = (*conn)(nil)

var _ probe.RecoveryDriver = (*Driver)(nil)

// Recovers reports that connections support connection-state recovery; see
// probe.RecoveryDriver.
func (d *Driver) Recovers() bool { return true }

// resumeAuth returns the CONNECT auth payload with the session to recover
// merged in, as socket.io-client does: the configured auth object plus
// "pid" and "offset".
func resumeAuth(auth json.RawMessage, r probe.Resume) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(auth) > 0 {
		if err := json.Unmarshal(auth, &obj); err != nil {
			return nil, errors.New("auth payload is not a JSON object") // never quote it: a secret
		}
	}
	var err error
	if obj["pid"], err = json.Marshal(r.PID); err != nil {
		return nil, err
	}
	if obj["offset"], err = json.Marshal(r.Offset); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// connectReplyPID returns the private session id of a CONNECT answer,
// empty when the server does not offer recovery.
func connectReplyPID(data []byte) string {
	var v struct {
		PID string `json:"pid"`
	}
	_ = json.Unmarshal(data, &v)
	return v.PID
}

// keepEarly holds an EVENT that came before the CONNECT answer, for the
// reader to deliver once the connection is open.
func (c *conn) keepEarly(data []byte) error {
	c.rec.Replayed++
	if len(c.early) >= maxEarlyEvents {
		return nil
	}
	p, err := decodeSocket(data)
	if err != nil {
		return err
	}
	name, args, err := parseEvent(clone(p.data), nil)
	if err != nil {
		return fmt.Errorf("event before connect: %w", err)
	}
	c.early = append(c.early, earlyEvent{name: name, args: args, id: p.id, hasID: p.hasID})
	return nil
}

// deliverEarly hands the events kept during the handshake to OnEvent, in
// order; called by the reader before its first read.
func (c *conn) deliverEarly() outcome {
	early := c.early
	c.early = nil
	for _, e := range early {
		if o := c.deliverEvent(e.name, e.args, e.id, e.hasID); o.reason != "" {
			return o
		}
	}
	return outcome{}
}

// noteOffset keeps the last argument of an event as the session's offset
// when the server offers recovery and that argument is a string, as
// socket.io-client does.
func (c *conn) noteOffset(args []json.RawMessage) {
	if c.rec.PID == "" || len(args) == 0 {
		return
	}
	last := args[len(args)-1]
	if len(last) < 2 || last[0] != '"' {
		return
	}
	var s string
	if json.Unmarshal(last, &s) == nil {
		c.offset.Store(&s)
	}
}

// Recovery returns what the connection learnt when it opened; see
// probe.Recoverable.
func (c *conn) Recovery() probe.Recovery { return c.rec }

// LastOffset returns the offset of the last event received; see
// probe.Recoverable.
func (c *conn) LastOffset() string {
	if p := c.offset.Load(); p != nil {
		return *p
	}
	return ""
}

// Break closes the TCP connection without a DISCONNECT packet; the reader
// then ends the connection with ReasonClientBreak.
func (c *conn) Break() {
	if c.end(probe.ReasonClientBreak, errBreak) {
		c.tr.abort()
	}
}
