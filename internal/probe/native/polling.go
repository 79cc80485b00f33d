package native

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// maxPayloadMessages bounds a long-polling response to this many times the
// message limit: a server sends everything it buffered since the last poll
// in one payload (a burst of small events can exceed one message's limit),
// and each message is still checked against the limit.
const maxPayloadMessages = 8

// recordSeparator separates the packets of a long-polling payload.
const recordSeparator = 0x1e

// pollingTransport is an Engine.IO v4 HTTP long-polling session: the reader
// GETs (one long poll at a time, on the conn's reader goroutine) and writers
// POST, batched: a write that finds a POST in flight queues its packet, and
// the next POST carries every queued packet (Engine.IO refuses overlapping
// POSTs). Writes never wait for the long poll.
//
// Each session has its own keep-alive http.Transport (one TCP connection for
// the long poll, one for POSTs, as a browser holds), closed with the session
// so that nothing outlives it.
type pollingTransport struct {
	d       *Driver
	http    *http.Transport
	conns   *sessionConns
	client  *http.Client
	url     string // polling URL with EIO, transport and (once known) sid
	header  http.Header
	host    string
	maxMsg  int64 // largest message, as the WebSocket read limit
	maxBody int64 // largest payload: a server batches what it buffered

	life context.Context // canceled by abort: ends every request
	kill context.CancelFunc

	queue []pollRecord // read but not yet returned by read; reader only

	wmu  sync.Mutex
	next *pollBatch    // packets waiting for the next POST
	send chan struct{} // capacity 1: held by the writer that POSTs
}

// pollBatch is the packets of one POST and its outcome.
type pollBatch struct {
	body []byte
	done chan struct{}
	err  error
}

// pollRecord is one packet of a payload.
type pollRecord struct {
	binary bool
	data   []byte
}

var _ transport = (*pollingTransport)(nil)

// newPolling returns the session's transport; ctx is the Dial's, read for
// the source address (probe.Source) every request of the session binds to.
func (d *Driver) newPolling(ctx context.Context, t *probe.Target, pollURL string) *pollingTransport {
	dialer := &net.Dialer{Timeout: d.connectTimeout, Control: socketControl(false)}
	if src, ok := probe.Source(ctx); ok {
		dialer.LocalAddr = &net.TCPAddr{IP: src.AsSlice(), Zone: src.Zone()}
		dialer.Control = socketControl(true)
	}
	conns := &sessionConns{open: map[*trackedConn]struct{}{}}
	tr := &http.Transport{
		DialContext:            conns.dialer(dialer.DialContext),
		TLSClientConfig:        t.TLS,
		TLSHandshakeTimeout:    d.connectTimeout,
		DisableCompression:     true,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        time.Minute,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	maxMsg := t.MaxFrameBytes
	if maxMsg <= 0 {
		maxMsg = probe.DefaultMaxFrameBytes
	}
	life, kill := context.WithCancel(context.Background())
	return &pollingTransport{
		d: d, http: tr, conns: conns, client: &http.Client{Transport: tr}, url: pollURL,
		header: t.Header, host: t.Header.Get("Host"),
		maxMsg: maxMsg, maxBody: maxPayloadMessages * maxMsg,
		life: life, kill: kill, send: make(chan struct{}, 1),
	}
}

func (p *pollingTransport) name() string { return transportPolling }

// open runs the handshake GET and returns the OPEN packet, which stays
// queued for the conn's handshake to read.
func (p *pollingTransport) open(ctx context.Context) (openPacket, error) {
	typ, bp, err := p.read(ctx)
	if err != nil {
		return openPacket{}, err
	}
	open, err := decodeOpenMessage(typ, *bp)
	p.queue = append([]pollRecord{{binary: typ == websocket.MessageBinary, data: clone(*bp)}}, p.queue...)
	p.d.putReadBuf(bp)
	if err != nil {
		return openPacket{}, err
	}
	p.url += "&sid=" + url.QueryEscape(open.sid)
	return open, nil
}

func (p *pollingTransport) read(ctx context.Context) (websocket.MessageType, *[]byte, error) {
	for len(p.queue) == 0 {
		body, err := p.do(ctx, http.MethodGet, nil)
		if err != nil {
			if serverGone(err) {
				// As a WebSocket's EOF: the reader reports transport_close.
				err = fmt.Errorf("%w (%w)", err, io.EOF)
			}
			return 0, nil, err
		}
		recs, err := decodePayload(body)
		if err != nil {
			return 0, nil, fmt.Errorf("long-polling payload: %w", err)
		}
		for _, r := range recs {
			if int64(len(r.data)) > p.maxMsg {
				return 0, nil, fmt.Errorf("long-polling message of %d bytes: %w", len(r.data), websocket.ErrMessageTooBig)
			}
		}
		p.queue = recs
	}
	r := p.queue[0]
	p.queue[0] = pollRecord{}
	p.queue = p.queue[1:]
	bp := p.d.getReadBuf()
	*bp = append((*bp)[:0], r.data...)
	if r.binary {
		return websocket.MessageBinary, bp, nil
	}
	return websocket.MessageText, bp, nil
}

// writeBinary sends a binary message as a "b" + base64 record.
func (p *pollingTransport) writeBinary(ctx context.Context, msg []byte) error {
	rec := make([]byte, 0, 1+base64.StdEncoding.EncodedLen(len(msg)))
	rec = base64.StdEncoding.AppendEncode(append(rec, 'b'), msg)
	return p.write(ctx, rec)
}

func (p *pollingTransport) write(ctx context.Context, msg []byte) error {
	p.wmu.Lock()
	b := p.next
	if b == nil {
		b = &pollBatch{done: make(chan struct{})}
		p.next = b
	} else {
		b.body = append(b.body, recordSeparator)
	}
	b.body = append(b.body, msg...)
	p.wmu.Unlock()

	select {
	case p.send <- struct{}{}:
	case <-b.done: // another writer's POST carried it
		return b.err
	case <-ctx.Done():
		// The packet stays queued for the next POST, as with a WebSocket
		// write that the library had buffered.
		return ctx.Err()
	}
	p.wmu.Lock()
	cur := p.next
	p.next = nil
	p.wmu.Unlock()
	if cur != nil {
		_, cur.err = p.do(ctx, http.MethodPost, cur.body)
		close(cur.done)
	}
	<-p.send
	<-b.done // b was cur, or a POST before ours carried it
	return b.err
}

// do runs one request of the session, bounded by ctx and by abort, and
// returns the body of a 200 answer (bounded by the frame limit).
func (p *pollingTransport) do(ctx context.Context, method string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.life, cancel)
	defer stop()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url, rd)
	if err != nil {
		return nil, redactURL(err)
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	if p.host != "" {
		req.Host = p.host
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, redactURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		eb, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
		return nil, &pollStatusError{method: method, code: resp.StatusCode, status: resp.Status, body: eb}
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the %s answer: %w", method, err)
	}
	if int64(len(out)) > p.maxBody {
		return nil, fmt.Errorf("long-polling payload over %d bytes: %w", p.maxBody, websocket.ErrMessageTooBig)
	}
	return out, nil
}

// close sends the Engine.IO CLOSE packet, then ends every request.
func (p *pollingTransport) close(ctx context.Context) error {
	err := p.write(ctx, []byte{eioClose})
	p.closeNow()
	return err
}

func (p *pollingTransport) closeNow() {
	p.kill()
	p.http.CloseIdleConnections()
	p.conns.closeAll()
}

// sessionConns holds the TCP connections of one session's HTTP transport so
// that ending the session closes every one of them: CloseIdleConnections
// misses a connection whose last response is still on its way back to the
// idle pool, which would then stay open, with two goroutines, for
// IdleConnTimeout. After closeAll no new connection is made.
type sessionConns struct {
	mu     sync.Mutex
	closed bool
	open   map[*trackedConn]struct{}
}

// trackedConn is a connection of a sessionConns; closing it removes it.
type trackedConn struct {
	net.Conn
	set  *sessionConns
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.open, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

// dialer wraps dial so that its connections are tracked.
func (s *sessionConns) dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, set: s}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			_ = c.Close()
			return nil, fmt.Errorf("long-polling session closed: %w", net.ErrClosed)
		}
		s.open[tc] = struct{}{}
		return tc, nil
	}
}

// closeAll closes every open connection and refuses new ones.
func (s *sessionConns) closeAll() {
	s.mu.Lock()
	s.closed = true
	open := make([]*trackedConn, 0, len(s.open))
	for c := range s.open {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

func (p *pollingTransport) abort() { p.closeNow() }

// serverGone reports whether a long-polling request failed because the
// server closed the connection, is gone, or no longer knows the session.
func serverGone(err error) bool {
	var se *pollStatusError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &se)
}

// detach hands the records read but not returned to an upgraded transport
// and closes the session's HTTP connections.
func (p *pollingTransport) detach() []queuedMessage {
	q := make([]queuedMessage, 0, len(p.queue))
	for _, r := range p.queue {
		bp := p.d.getReadBuf()
		*bp = append((*bp)[:0], r.data...)
		typ := websocket.MessageText
		if r.binary {
			typ = websocket.MessageBinary
		}
		q = append(q, queuedMessage{typ: typ, msg: bp})
	}
	p.queue = nil
	p.closeNow()
	return q
}

// decodePayload splits a long-polling payload into its packets: records
// separated by 0x1e, a binary one written "b" + base64. An empty payload or
// record is an error (Engine.IO never sends one).
func decodePayload(body []byte) ([]pollRecord, error) {
	if len(body) == 0 {
		return nil, errors.New("empty payload")
	}
	n := bytes.Count(body, []byte{recordSeparator}) + 1
	recs := make([]pollRecord, 0, n)
	for rec := range bytes.SplitSeq(body, []byte{recordSeparator}) {
		if len(rec) == 0 {
			return nil, fmt.Errorf("empty record %d", len(recs))
		}
		if rec[0] != 'b' {
			recs = append(recs, pollRecord{data: rec})
			continue
		}
		data := make([]byte, base64.StdEncoding.DecodedLen(len(rec)-1))
		m, err := base64.StdEncoding.Decode(data, rec[1:])
		if err != nil {
			return nil, fmt.Errorf("record %d: invalid base64: %w", len(recs), err)
		}
		recs = append(recs, pollRecord{binary: true, data: data[:m]})
	}
	return recs, nil
}

// encodePayload joins packets into a long-polling payload; the inverse of
// decodePayload.
func encodePayload(dst []byte, recs []pollRecord) []byte {
	for i, r := range recs {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		if r.binary {
			dst = append(dst, 'b')
			dst = base64.StdEncoding.AppendEncode(dst, r.data)
			continue
		}
		dst = append(dst, r.data...)
	}
	return dst
}

// pollStatusError is a long-polling request the server answered with a
// status other than 200.
type pollStatusError struct {
	method string
	code   int
	status string
	body   []byte
}

// Error names the request and status; statusConnectError adds the
// server's reason and a hint as the ConnectError's Message.
func (e *pollStatusError) Error() string {
	return "long-polling " + e.method + ": " + e.status
}

// sessionUnknownHint explains Engine.IO's "Session ID unknown".
const sessionUnknownHint = "the server that got this request does not know the session: behind a load balancer, no sticky sessions? Long-polling needs every request of a session on the same replica (or set SOAK_TRANSPORTS=websocket)"

// explainPollStatus is explainStatus for a long-polling request.
func explainPollStatus(code int, status string, body []byte) (probe.FailureReason, string) {
	var v struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &v)
	hint := ""
	switch {
	case v.Code != nil && *v.Code == eioErrUnknownSID:
		hint = sessionUnknownHint
	case v.Code != nil && *v.Code == eioErrUnknownTransport:
		hint = "long-polling disabled on the server (its transports option lacks \"polling\"): set SOAK_TRANSPORTS=websocket"
	case v.Code != nil && *v.Code == eioErrBadRequest:
		hint = "the server refused the long-polling request (overlapping requests or a proxy altering it)"
	}
	if hint == "" {
		return explainStatus(code, status, body)
	}
	msg := status
	if v.Message != "" {
		msg += ": " + strconv.Quote(truncateUTF8(v.Message, maxErrorMessage))
	}
	return probe.FailHandshake, msg + " (" + hint + ")"
}

// eioErrUnknownSID is Engine.IO's "Session ID unknown".
const eioErrUnknownSID = 1

// statusConnectError turns a refused long-polling request into a connect
// failure with the server's reason and a hint; nil for any other error.
func statusConnectError(err error) *probe.ConnectError {
	var se *pollStatusError
	if !errors.As(err, &se) {
		return nil
	}
	r, msg := explainPollStatus(se.code, se.status, se.body)
	return &probe.ConnectError{Reason: r, Message: msg, Err: err}
}
