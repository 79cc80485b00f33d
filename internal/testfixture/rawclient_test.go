package testfixture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawClient speaks just enough Engine.IO v4 / Socket.IO v5 over a WebSocket to
// exercise the fixture without either client driver under test. A reader
// goroutine answers PINGs (unless told not to) and queues other packets.
type rawClient struct {
	t           testing.TB
	conn        *websocket.Conn
	open        string // the Engine.IO OPEN packet, without its type
	packets     chan string
	readerDone  chan struct{}
	readErr     error // valid once packets is closed
	answerPings atomic.Bool
}

const rawTimeout = 10 * time.Second

// dialRaw opens an Engine.IO session and reads its OPEN packet.
func dialRaw(t testing.TB, n *Node) *rawClient {
	t.Helper()
	c, err := tryDialRaw(n.URL())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.t = t
	t.Cleanup(c.close)
	return c
}

func tryDialRaw(base string) (*rawClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	u := strings.Replace(base, "http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	_, msg, err := conn.Read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("read open: %w", err)
	}
	if len(msg) == 0 || msg[0] != '0' {
		conn.CloseNow()
		return nil, fmt.Errorf("first packet %q is not OPEN", msg)
	}
	c := &rawClient{
		conn:       conn,
		open:       string(msg[1:]),
		packets:    make(chan string, 1024),
		readerDone: make(chan struct{}),
	}
	c.answerPings.Store(true)
	go c.read()
	return c, nil
}

func (c *rawClient) read() {
	defer close(c.readerDone)
	defer close(c.packets)
	for {
		_, msg, err := c.conn.Read(context.Background())
		if err != nil {
			c.readErr = err
			return
		}
		if string(msg) == "2" && c.answerPings.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
			err := c.conn.Write(ctx, websocket.MessageText, []byte("3"))
			cancel()
			if err != nil {
				c.readErr = err
				return
			}
			continue
		}
		select {
		case c.packets <- string(msg):
		default:
			c.readErr = errors.New("raw client: packet queue full")
			c.conn.CloseNow()
			return
		}
	}
}

func (c *rawClient) close() {
	c.conn.CloseNow()
	<-c.readerDone
}

func (c *rawClient) send(pkt string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(pkt)); err != nil {
		c.t.Fatalf("write %q: %v", pkt, err)
	}
}

// constError is an error that can be a constant.
type constError string

func (e constError) Error() string { return string(e) }

const errNoPacket = constError("no packet within the timeout")

// next returns the next packet that is not an answered PING; errNoPacket
// after timeout, or the read error once the connection has ended.
func (c *rawClient) next(timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case pkt, ok := <-c.packets:
		if !ok {
			return "", fmt.Errorf("connection ended: %w", c.readErr)
		}
		return pkt, nil
	case <-timer.C:
		return "", errNoPacket
	}
}

func (c *rawClient) expect(want string) {
	c.t.Helper()
	got, err := c.next(rawTimeout)
	if err != nil {
		c.t.Fatalf("waiting for %q: %v", want, err)
	}
	if got != want {
		c.t.Fatalf("got packet %q, want %q", got, want)
	}
}

func (c *rawClient) expectPrefix(prefix string) string {
	c.t.Helper()
	got, err := c.next(rawTimeout)
	if err != nil {
		c.t.Fatalf("waiting for %q...: %v", prefix, err)
	}
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got packet %q, want prefix %q", got, prefix)
	}
	return got
}

// expectEnd waits for the connection to end, skipping other packets.
func (c *rawClient) expectEnd() {
	c.t.Helper()
	for {
		pkt, err := c.next(rawTimeout)
		if err == nil {
			continue
		}
		if errors.Is(err, errNoPacket) {
			c.t.Fatalf("connection still open after %v (last packet %q)", rawTimeout, pkt)
		}
		return
	}
}

// connect sends CONNECT for the main namespace and expects it answered.
func (c *rawClient) connect() {
	c.t.Helper()
	c.send("40")
	c.expectPrefix(`40{"sid":`)
}
