package heapsnap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
)

// ErrTooLarge is returned when a capture exceeds its size cap.
var ErrTooLarge = errors.New("capture larger than the size cap")

// HTTPDoer is the part of *http.Client the takers use.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// Taker takes one capture of the target and streams it to w, writing at
// most max bytes (ErrTooLarge beyond). It returns the bytes written.
type Taker interface {
	Take(ctx context.Context, w io.Writer, max int64) (int64, error)
	// Ext is the file name extension of a capture, with its dot.
	Ext() string
}

// capWriter fails with ErrTooLarge once more than left bytes are written.
type capWriter struct {
	w    io.Writer
	left int64
	n    int64
}

func (c *capWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		return 0, ErrTooLarge
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	c.n += int64(n)
	return n, err
}

// HTTPTaker fetches a URL (a Go target's /debug/pprof/heap, or any URL
// returning a heap snapshot or profile).
type HTTPTaker struct {
	URL    string
	Client HTTPDoer
	// Extension is the file extension of captures; empty means ".pb.gz".
	Extension string
}

// Ext returns the file extension of captures.
func (h HTTPTaker) Ext() string {
	if h.Extension == "" {
		return ".pb.gz"
	}
	return h.Extension
}

// Take fetches the URL once.
func (h HTTPTaker) Take(ctx context.Context, w io.Writer, max int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return 0, fmt.Errorf("heap profile request: %w", err)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text holds the URL, which may carry a token
		}
		return 0, fmt.Errorf("fetch heap profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("fetch heap profile: unexpected status %s", resp.Status)
	}
	cw := &capWriter{w: w, left: max}
	if _, err := io.Copy(cw, resp.Body); err != nil {
		return cw.n, fmt.Errorf("fetch heap profile: %w", err)
	}
	return cw.n, nil
}

// InspectorTaker takes V8 heap snapshots through the inspector protocol of
// a Node process started with --inspect. Addr is host:port; it is not
// written to logs or metrics by this package.
type InspectorTaker struct {
	Addr   string
	Client HTTPDoer
}

// Ext returns ".heapsnapshot".
func (InspectorTaker) Ext() string { return ".heapsnapshot" }

type inspectorTarget struct {
	Type  string `json:"type"`
	WSURL string `json:"webSocketDebuggerUrl"`
}

// wsURL discovers the target's WebSocket URL through /json/list. The host
// of the answer is replaced by Addr, so that the answer cannot send the
// agent elsewhere.
func (t InspectorTaker) wsURL(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.Addr+"/json/list", nil)
	if err != nil {
		return "", fmt.Errorf("inspector discovery request: %w", err)
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("inspector discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("inspector discovery: unexpected status %s", resp.Status)
	}
	var targets []inspectorTarget
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&targets); err != nil {
		return "", fmt.Errorf("inspector discovery: decode /json/list: %w", err)
	}
	for _, tg := range targets {
		if tg.WSURL == "" {
			continue
		}
		u, err := url.Parse(tg.WSURL)
		if err != nil || u.Scheme != "ws" {
			continue
		}
		u.Host = t.Addr
		return u.String(), nil
	}
	return "", errors.New("inspector discovery: no target with a webSocketDebuggerUrl")
}

type cdpMessage struct {
	ID     int    `json:"id"`
	Method string `json:"method"`
	Params struct {
		Chunk string `json:"chunk"`
	} `json:"params"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Take takes one heap snapshot and streams its chunks to w as they come:
// the snapshot is never held in memory as a whole. Its errors never carry
// the inspector's address or session URL.
func (t InspectorTaker) Take(ctx context.Context, w io.Writer, max int64) (int64, error) {
	var wsURL string
	n, err := t.take(ctx, w, max, &wsURL)
	if err != nil {
		msg := err.Error()
		for _, secret := range []string{wsURL, t.Addr} {
			if secret != "" {
				msg = strings.ReplaceAll(msg, secret, "[inspector]")
			}
		}
		if msg != err.Error() {
			err = &redactedError{msg: msg, err: err}
		}
	}
	return n, err
}

// redactedError is an error whose text had secrets taken out; it still
// unwraps to the original for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (t InspectorTaker) take(ctx context.Context, w io.Writer, max int64, wsURL *string) (int64, error) {
	u, err := t.wsURL(ctx)
	if err != nil {
		return 0, err
	}
	*wsURL = u
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return 0, fmt.Errorf("inspector connect: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(256 << 20) // one chunk; V8 sends far smaller ones
	send := func(id int, method string) error {
		b, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": map[string]any{"reportProgress": false}})
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			return fmt.Errorf("inspector %s: %w", method, err)
		}
		return nil
	}
	if err := send(1, "HeapProfiler.enable"); err != nil {
		return 0, err
	}
	if err := send(2, "HeapProfiler.takeHeapSnapshot"); err != nil {
		return 0, err
	}
	cw := &capWriter{w: w, left: max}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return cw.n, fmt.Errorf("inspector read: %w", err)
		}
		var m cdpMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return cw.n, fmt.Errorf("inspector: decode message: %w", err)
		}
		switch {
		case m.Method == "HeapProfiler.addHeapSnapshotChunk":
			if _, err := io.WriteString(cw, m.Params.Chunk); err != nil {
				return cw.n, fmt.Errorf("inspector snapshot: %w", err)
			}
		case m.ID != 0 && m.Error != nil:
			return cw.n, fmt.Errorf("inspector: request %d failed: %s", m.ID, m.Error.Message)
		case m.ID == 2:
			_ = send(3, "HeapProfiler.disable")
			c.Close(websocket.StatusNormalClosure, "")
			return cw.n, nil
		}
	}
}
