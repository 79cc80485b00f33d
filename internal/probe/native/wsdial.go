package native

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// websocketGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgradeConn dials u (a ws:// URL) and runs the HTTP/1.1 upgrade on the
// returned connection, bounded by ctx. It returns the connection and the
// bytes the server sent after its 101 response (frames already on their
// way), which belong to the WebSocket. A refused upgrade is classified as
// the coder/websocket dial's is (upgradeError).
func (d *Driver) upgradeConn(ctx context.Context, t *probe.Target, u string) (net.Conn, []byte, *probe.ConnectError) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, nil, &probe.ConnectError{Reason: probe.FailOther, Err: fmt.Errorf("engine.io URL: %w", err)}
	}
	addr := pu.Host
	if pu.Port() == "" {
		addr = net.JoinHostPort(pu.Hostname(), "80")
	}
	nc, err := d.dialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, upgradeError(nil, err, ctx.Err())
	}
	rest, ce := d.upgradeOn(ctx, nc, t, pu)
	if ce != nil {
		_ = nc.Close()
		return nil, nil, ce
	}
	return nc, rest, nil
}

// upgradeOn sends the upgrade request on nc and reads the answer.
func (d *Driver) upgradeOn(ctx context.Context, nc net.Conn, t *probe.Target, pu *url.URL) ([]byte, *probe.ConnectError) {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	hu := *pu
	hu.Scheme = "http"
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &hu,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     t.Header.Clone(),
		Host:       t.Header.Get("Host"),
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	if err := req.Write(nc); err != nil {
		return nil, upgradeError(nil, fmt.Errorf("sending the upgrade request: %w", err), ctx.Err())
	}
	// The reader is only for the response: what it buffered past the
	// headers is handed to the WebSocket, and the limit bounds the headers.
	br := bufio.NewReaderSize(io.LimitReader(nc, maxResponseHeaderBytes), 4<<10)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, upgradeError(nil, fmt.Errorf("reading the upgrade response: %w", err), ctx.Err())
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, upgradeError(resp, fmt.Errorf("websocket dial: expected handshake response status code 101 but got %d", resp.StatusCode), nil)
	}
	if err := checkUpgrade(resp, key); err != nil {
		return nil, &probe.ConnectError{Reason: probe.FailHandshake, Err: err}
	}
	rest, _ := br.Peek(br.Buffered())
	_ = nc.SetDeadline(time.Time{})
	return append([]byte(nil), rest...), nil
}

// checkUpgrade validates a 101 answer to an upgrade with key.
func checkUpgrade(resp *http.Response, key string) error {
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("websocket dial: upgrade header %q, want websocket", resp.Header.Get("Upgrade"))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return fmt.Errorf("websocket dial: connection header %q lacks upgrade", resp.Header.Get("Connection"))
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return errors.New("websocket dial: wrong Sec-WebSocket-Accept")
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return fmt.Errorf("websocket dial: server chose extension %q that was not offered", ext)
	}
	return nil
}

// headerHasToken reports whether a comma-separated header holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}
