package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/rawsys"
)

// The event-loop transport (Options.EventLoop). An established WebSocket
// has no goroutine and no buffer of its own while idle: a few loop
// goroutines each wait on an epoll set holding their connections' sockets,
// read a readable socket into the loop's one buffer, parse the frames in
// place (frameReader) and hand each message to the conn on the loop
// goroutine. Writes go straight to the non-blocking socket from the
// writer's goroutine; only bytes the kernel did not take wait in a
// per-connection queue, drained by the loop on EPOLLOUT.
//
// The HTTP upgrade and the Engine.IO/Socket.IO handshake run on an ordinary
// net.Conn (the runtime's poller, deadlines from ctx). Then the socket is
// duplicated, the net.Conn closed (which removes its descriptor from the
// runtime's poller) and the duplicate, still non-blocking, registered with a
// loop. epoll is used directly through golang.org/x/sys/unix rather than
// through gnet or cloudwego/netpoll: both are frameworks that own the
// connection's buffers and callbacks, where this transport needs only
// readiness for sockets it already has, and one loop is a hundred lines.
//
// Loops start with their first connection and stop when their last one has
// ended; a connection's end (its close handshake and OnClose) runs on a
// goroutine of its own, which the conn's done channel tracks.

// eventLoopSupported reports whether Options.EventLoop has an effect.
const eventLoopSupported = true

// loopReadBufSize is each loop's read buffer.
const loopReadBufSize = 64 << 10

// maxQueuedBytes bounds what writes from the loop itself (pongs, acks) may
// queue on a connection whose server has stopped reading.
const maxQueuedBytes = 1 << 20

// evLoop is one epoll loop.
type evLoop struct {
	d   *Driver
	gid atomic.Uint64 // goroutine id of the running loop

	mu      sync.Mutex
	running bool
	epfd    int
	wakefd  int
	conns   int         // connections registered or waiting to be
	adds    []*loopConn // waiting to be registered
}

// newLoops returns the Driver's loops: one per two processors the runtime
// uses, at least one, at most eight. One loop per processor cost more CPU
// per event at 1,000 clients on 2 cores (99 against 88 us, one run each):
// each wake-up then finds fewer events.
func newLoops(d *Driver) []*evLoop {
	n := min(max(runtime.GOMAXPROCS(0)/2, 1), 8)
	loops := make([]*evLoop, n)
	for i := range loops {
		loops[i] = &evLoop{d: d, epfd: -1, wakefd: -1}
	}
	return loops
}

// add hands lc to the loop, starting the loop if it is not running.
func (lp *evLoop) add(lc *loopConn) error {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if !lp.running {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return fmt.Errorf("epoll_create1: %w", err)
		}
		wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			_ = unix.Close(epfd)
			return fmt.Errorf("eventfd: %w", err)
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
			_ = unix.Close(epfd)
			_ = unix.Close(wakefd)
			return fmt.Errorf("epoll_ctl: %w", err)
		}
		// The loop waits for its epoll set in the runtime's own poller (an
		// epoll descriptor is readable while it has events): a parked
		// goroutine, not a thread blocked in epoll_wait.
		if err := unix.SetNonblock(epfd, true); err != nil {
			_ = unix.Close(epfd)
			_ = unix.Close(wakefd)
			return fmt.Errorf("epoll: %w", err)
		}
		ef := os.NewFile(uintptr(epfd), "epoll")
		rc, err := ef.SyscallConn()
		if err != nil {
			_ = ef.Close()
			_ = unix.Close(wakefd)
			return fmt.Errorf("epoll: %w", err)
		}
		lp.epfd, lp.wakefd, lp.running = epfd, wakefd, true
		lp.conns++
		lp.adds = append(lp.adds, lc)
		go lp.run(ef, rc, epfd, wakefd)
		return nil
	}
	lp.conns++
	lp.adds = append(lp.adds, lc)
	var one [8]byte
	one[0] = 1
	_, _ = rawsys.Write(lp.wakefd, one[:])
	return nil
}

// run is the loop's goroutine.
func (lp *evLoop) run(ef *os.File, rc syscall.RawConn, epfd, wakefd int) {
	lp.gid.Store(goroutineID())
	st := &loopState{
		epfd:   epfd,
		wakefd: wakefd,
		buf:    make([]byte, loopReadBufSize),
		events: make([]unix.EpollEvent, 256),
		conns:  make(map[int32]*loopConn),
	}
	// One RawRead for the loop's whole life: the poller's readiness is
	// reset once, here, so an event that arrives while the loop works is
	// not lost and each wake-up costs one epoll_wait. step returns true
	// when the loop has no connection left.
	_ = rc.Read(func(uintptr) bool { return lp.step(st) })
	_ = ef.Close()
	_ = unix.Close(wakefd)
}

// loopState is what a running loop keeps between wake-ups.
type loopState struct {
	epfd, wakefd int
	buf          []byte
	events       []unix.EpollEvent
	conns        map[int32]*loopConn
}

// step registers new connections and handles every ready event. It
// returns false to wait for the poller: when epoll has nothing ready, or
// when every ready socket was read to its end (anything that arrives later
// wakes the poller again). It returns true, having marked the loop stopped,
// when no connection is left.
func (lp *evLoop) step(st *loopState) bool {
	for {
		lp.mu.Lock()
		adds := lp.adds
		lp.adds = nil
		if len(adds) == 0 && lp.conns == 0 {
			lp.running = false
			lp.epfd, lp.wakefd = -1, -1
			lp.mu.Unlock()
			return true
		}
		lp.mu.Unlock()
		if len(adds) > 0 {
			for _, lc := range adds {
				lp.register(st.epfd, lc, st.conns)
			}
			continue // a registration may have ended its connection
		}
		n, err := rawsys.EpollPoll(st.epfd, st.events)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			// Cannot happen with valid descriptors; end every connection
			// rather than spin.
			for _, lc := range st.conns {
				lp.finish(st.epfd, lc, st.conns, outcome{reason: probe.ReasonTransportError, err: fmt.Errorf("epoll_wait: %w", err)})
			}
			continue
		case n == 0:
			return false
		}
		more := n == len(st.events)
		for _, ev := range st.events[:n] {
			if ev.Fd == int32(st.wakefd) {
				var b [8]byte
				_, _ = rawsys.Read(st.wakefd, b[:])
				more = true // check for registrations
				continue
			}
			lc := st.conns[ev.Fd]
			if lc == nil {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				lc.flush()
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				o, ended, full := lc.readable(st.buf)
				if ended {
					lp.finish(st.epfd, lc, st.conns, o)
					more = true // check whether the loop is done
				}
				more = more || full
			}
		}
		if !more {
			return false
		}
	}
}

// register starts delivering lc's messages: first the events kept during
// the handshake and any frames that arrived with it, then the socket's.
func (lp *evLoop) register(epfd int, lc *loopConn, conns map[int32]*loopConn) {
	c := lc.c
	c.readerID.Store(lp.gid.Load())
	o := c.deliverEarly()
	if o.reason == "" {
		o, _ = lc.consume(nil)
	}
	if o.reason == "" {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(lc.fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, lc.fd, &ev); err != nil {
			o = outcome{reason: probe.ReasonTransportError, err: fmt.Errorf("epoll_ctl: %w", err)}
		} else {
			conns[int32(lc.fd)] = lc
			lc.wmu.Lock()
			lc.epfd = epfd
			if len(lc.pending) > 0 {
				lc.watchWritable(true)
			}
			lc.wmu.Unlock()
			return
		}
	}
	lp.finish(epfd, lc, conns, o)
}

// finish stops reading lc and ends its conn on a goroutine of its own.
func (lp *evLoop) finish(epfd int, lc *loopConn, conns map[int32]*loopConn, o outcome) {
	if conns[int32(lc.fd)] == lc {
		delete(conns, int32(lc.fd))
		_ = unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, lc.fd, nil)
	}
	lc.wmu.Lock()
	lc.held = false
	lc.epfd = -1
	close(lc.readDone)
	if lc.drained != nil {
		close(lc.drained)
		lc.drained = nil
	}
	if lc.wantClose {
		lc.closeFD()
	}
	lc.wmu.Unlock()
	lp.mu.Lock()
	lp.conns--
	lp.mu.Unlock()
	go func() {
		lc.c.readerID.Store(goroutineID())
		lc.c.finish(o)
	}()
}

// loopConn is a WebSocket served by an evLoop: a transport.
type loopConn struct {
	d     *Driver
	c     *conn
	lp    *evLoop
	rd    frameReader
	pend  pendingBinary
	queue []queuedMessage

	// nc is the connection until it is handed to the loop; only the
	// dialing goroutine uses it.
	nc net.Conn

	readDone chan struct{} // closed when the loop has stopped reading
	failed   atomic.Pointer[error]

	wmu       sync.Mutex
	fd        int  // -1 once closed
	epfd      int  // the loop's epoll set while registered, else -1
	held      bool // the loop reads fd; only it may close fd then
	wantClose bool // close fd once the loop lets go of it
	closeSent bool
	broken    error // a write failed: every later write fails
	pending   []byte
	watching  bool          // EPOLLOUT is armed
	drained   chan struct{} // closed when pending empties (or the loop lets go)
}

var _ transport = (*loopConn)(nil)

// dialLoop opens a WebSocket for the event loop, or reports false when the
// loop cannot serve u (wss: TLS stays on the goroutine transport).
func (d *Driver) dialLoop(ctx context.Context, t *probe.Target, u string) (wsDialed, bool, *probe.ConnectError) {
	if len(d.loops) == 0 || t.TLS != nil || len(u) < 5 || u[:5] != "ws://" {
		return nil, false, nil
	}
	nc, rest, ce := d.upgradeConn(ctx, t, u)
	if ce != nil {
		return nil, true, ce
	}
	maxFrame := t.MaxFrameBytes
	if maxFrame <= 0 {
		maxFrame = probe.DefaultMaxFrameBytes
	}
	lc := &loopConn{d: d, nc: nc, fd: -1, epfd: -1, readDone: make(chan struct{})}
	lc.rd.limit = maxFrame
	lc.rd.buf = rest
	return lc, true, nil
}

func (lc *loopConn) name() string { return transportWebSocket }

func (lc *loopConn) setQueued(q []queuedMessage) { lc.queue = q }

// read returns the next message during the handshake, before the loop
// takes the connection; it answers pings on the way.
func (lc *loopConn) read(ctx context.Context) (websocket.MessageType, *[]byte, error) {
	if len(lc.queue) > 0 {
		q := lc.queue[0]
		lc.queue = lc.queue[1:]
		return q.typ, q.msg, nil
	}
	if lc.nc == nil {
		return 0, nil, errors.New("read on a connection served by the event loop")
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = lc.nc.SetReadDeadline(dl)
	}
	// The func may still run after read returns (stop cannot wait for it)
	// and after handOver has cleared lc.nc: it uses its own copy.
	nc := lc.nc
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var tmp []byte
	for {
		var (
			typ     websocket.MessageType
			bp      *[]byte
			readErr error
		)
		err := lc.rd.feed(nil, func(op byte, p []byte) bool {
			switch op {
			case opText, opBinary:
				typ = websocket.MessageText
				if op == opBinary {
					typ = websocket.MessageBinary
				}
				bp = lc.d.getReadBuf()
				*bp = append((*bp)[:0], p...)
				return false
			case opPing:
				if err := lc.writeFrame(ctx, opPong, p); err != nil {
					readErr = fmt.Errorf("writing pong: %w", err)
					return false
				}
			case opClose:
				ce, err := parseClose(p)
				if err != nil {
					readErr = err
					return false
				}
				_ = lc.writeFrame(ctx, opClose, p[:min(len(p), 2)])
				readErr = ce
				return false
			}
			return true
		})
		switch {
		case err != nil:
			return 0, nil, err
		case readErr != nil:
			return 0, nil, readErr
		case bp != nil:
			return typ, bp, nil
		}
		if tmp == nil {
			tmp = make([]byte, 4<<10)
		}
		n, err := lc.nc.Read(tmp)
		if n > 0 {
			lc.rd.buf = append(lc.rd.buf, tmp[:n]...)
		}
		if err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				continue
			}
			if ctx.Err() != nil {
				return 0, nil, fmt.Errorf("read: %w", ctx.Err())
			}
			return 0, nil, err
		}
	}
}

// handOver takes the socket from the net.Conn and registers it with a loop.
func (lc *loopConn) handOver(c *conn) error {
	tc, ok := lc.nc.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("event loop: %T is not a TCP connection", lc.nc)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return fmt.Errorf("event loop: %w", err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(f uintptr) { fd, dupErr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return fmt.Errorf("event loop: %w", err)
	}
	if dupErr != nil {
		return fmt.Errorf("event loop: dup: %w", dupErr)
	}
	_ = lc.nc.Close()
	lc.c = c
	lc.wmu.Lock() // the ping watchdog may already call abort
	lc.nc = nil
	lc.fd, lc.held = fd, true
	lc.wmu.Unlock()
	lp := lc.d.loops[lc.d.nextLoop.Add(1)%uint32(len(lc.d.loops))]
	lc.lp = lp
	if err := lp.add(lc); err != nil {
		lc.wmu.Lock()
		lc.held = false
		lc.closeFD()
		lc.wmu.Unlock()
		return fmt.Errorf("event loop: %w", err)
	}
	return nil
}

// readable reads what the socket has into the loop's buffer and delivers
// it; ended reports that the connection is over, full that the read filled
// the buffer (the socket may hold more).
func (lc *loopConn) readable(buf []byte) (o outcome, ended, full bool) {
	n, err := rawsys.Read(lc.fd, buf)
	for errors.Is(err, unix.EINTR) {
		n, err = rawsys.Read(lc.fd, buf)
	}
	switch {
	case errors.Is(err, unix.EAGAIN):
		return outcome{}, false, false
	case err != nil:
		return lc.readFailed(err), true, false
	case n == 0:
		return lc.readFailed(io.EOF), true, false
	}
	o, ended = lc.consume(buf[:n])
	return o, ended, n == len(buf)
}

// readFailed classifies a failed read, preferring the write failure that
// shut the socket down.
func (lc *loopConn) readFailed(err error) outcome {
	if p := lc.failed.Load(); p != nil {
		err = *p
	}
	return classifyReadError(err)
}

// consume parses data (after any kept bytes) and delivers it to the conn.
func (lc *loopConn) consume(data []byte) (outcome, bool) {
	var o outcome
	err := lc.rd.feed(data, func(op byte, p []byte) bool {
		switch op {
		case opText:
			o = lc.c.handleMessage(websocket.MessageText, p, &lc.pend)
		case opBinary:
			o = lc.c.handleMessage(websocket.MessageBinary, p, &lc.pend)
		case opPing:
			if err := lc.writeFrame(context.Background(), opPong, p); err != nil {
				o = outcome{reason: probe.ReasonTransportError, err: fmt.Errorf("writing pong: %w", err)}
			}
		case opClose:
			ce, err := parseClose(p)
			if err != nil {
				o = outcome{reason: probe.ReasonTransportError, err: err}
				return false
			}
			_ = lc.writeFrame(context.Background(), opClose, p[:min(len(p), 2)])
			o = classifyReadError(ce)
		}
		return o.reason == ""
	})
	if err != nil {
		return classifyReadError(err), true
	}
	return o, o.reason != ""
}

func (lc *loopConn) write(ctx context.Context, msg []byte) error {
	return lc.writeFrame(ctx, opText, msg)
}

func (lc *loopConn) writeBinary(ctx context.Context, msg []byte) error {
	return lc.writeFrame(ctx, opBinary, msg)
}

// errWriteAfterClose is a data write after the close frame.
var errWriteAfterClose = errors.New("write after the websocket close frame")

// writeFrame sends one frame, safe for concurrent use. Before the hand-over
// it writes on the net.Conn. Then it writes on the socket; what the kernel
// does not take is queued for the loop, and the writer waits, bounded by
// ctx, until the queue is empty, except on the loop's own goroutine, which
// must not wait for itself, and under probe.WithoutWaiting. A write cut
// short by ctx ends the connection (as coder/websocket does), so a stalled
// server shows as a failed write.
func (lc *loopConn) writeFrame(ctx context.Context, op byte, payload []byte) error {
	wb := lc.d.getWriteBuf()
	*wb = appendClientFrame((*wb)[:0], op, payload, rand.Uint32())
	err := lc.writeRaw(ctx, op, *wb)
	lc.d.putWriteBuf(wb)
	return err
}

func (lc *loopConn) writeRaw(ctx context.Context, op byte, frame []byte) error {
	if lc.nc != nil {
		if dl, ok := ctx.Deadline(); ok {
			_ = lc.nc.SetWriteDeadline(dl)
		}
		nc := lc.nc // as in read: the func may outlive this call
		stop := context.AfterFunc(ctx, func() { _ = nc.SetWriteDeadline(time.Unix(1, 0)) })
		defer stop()
		_, err := lc.nc.Write(frame)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("write: %w", ctx.Err())
		}
		return err
	}
	lc.wmu.Lock()
	if err := lc.writable(op); err != nil {
		lc.wmu.Unlock()
		return err
	}
	if op == opClose {
		lc.closeSent = true
	}
	if len(lc.pending) == 0 {
		n, err := writeFD(lc.fd, frame)
		if err != nil {
			lc.fail(err)
			lc.wmu.Unlock()
			return err
		}
		if n == len(frame) {
			lc.wmu.Unlock()
			return nil
		}
		frame = frame[n:]
	}
	lc.pending = append(lc.pending, frame...)
	if !lc.held {
		// The loop has let go (the connection is ending): flush here,
		// unless the writer must not wait; the bytes then stay queued
		// for the close handshake to flush before its close frame.
		var err error
		if probe.MayWait(ctx) {
			err = lc.flushPolling(ctx)
		} else {
			err = fmt.Errorf("write: %w", net.ErrClosed)
		}
		lc.wmu.Unlock()
		return err
	}
	lc.watchWritable(true)
	if lc.lp.gid.Load() == goroutineID() || !probe.MayWait(ctx) {
		var err error
		if len(lc.pending) > maxQueuedBytes {
			err = fmt.Errorf("%d bytes queued for a server that does not read", len(lc.pending))
			lc.fail(err)
		}
		lc.wmu.Unlock()
		return err
	}
	return lc.waitDrained(ctx)
}

// backlog implements probe.Queuer for the conn: the queued bytes, and
// whether writes may queue without waiting (the loop holds the socket and
// no write failed).
func (lc *loopConn) backlog() (int, bool) {
	lc.wmu.Lock()
	defer lc.wmu.Unlock()
	return len(lc.pending), lc.held && lc.broken == nil
}

// writable reports why nothing more may be written, if so; wmu held.
func (lc *loopConn) writable(op byte) error {
	switch {
	case lc.broken != nil:
		return lc.broken
	case lc.fd < 0:
		return net.ErrClosed
	case lc.closeSent && op != opClose:
		return errWriteAfterClose
	case lc.closeSent:
		return errors.New("close frame already sent")
	}
	return nil
}

// waitDrained waits until the queue is empty; called with wmu held, which
// it releases.
func (lc *loopConn) waitDrained(ctx context.Context) error {
	for {
		if lc.drained == nil {
			lc.drained = make(chan struct{})
		}
		ch := lc.drained
		lc.wmu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			err := fmt.Errorf("write: %w", ctx.Err())
			lc.wmu.Lock()
			lc.fail(err)
			lc.wmu.Unlock()
			return err
		}
		lc.wmu.Lock()
		switch {
		case lc.broken != nil:
			lc.wmu.Unlock()
			return lc.broken
		case len(lc.pending) == 0:
			lc.wmu.Unlock()
			return nil
		case !lc.held:
			err := lc.flushPolling(ctx)
			lc.wmu.Unlock()
			return err
		}
	}
}

// fail records a failed write and shuts the socket down, so that the loop
// ends the connection with err; wmu held.
func (lc *loopConn) fail(err error) {
	if lc.broken != nil {
		return
	}
	lc.broken = err
	lc.failed.CompareAndSwap(nil, &err)
	lc.pending = nil
	if lc.drained != nil {
		close(lc.drained)
		lc.drained = nil
	}
	if lc.fd >= 0 {
		_ = unix.Shutdown(lc.fd, unix.SHUT_RDWR)
	}
}

// watchWritable arms or disarms EPOLLOUT; wmu held.
func (lc *loopConn) watchWritable(on bool) {
	if lc.watching == on || lc.epfd < 0 {
		return
	}
	events := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if on {
		events |= unix.EPOLLOUT
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(lc.fd)}
	if unix.EpollCtl(lc.epfd, unix.EPOLL_CTL_MOD, lc.fd, &ev) == nil {
		lc.watching = on
	}
}

// flush writes queued bytes when the socket is writable; on the loop.
func (lc *loopConn) flush() {
	lc.wmu.Lock()
	defer lc.wmu.Unlock()
	if len(lc.pending) > 0 && lc.broken == nil {
		n, err := writeFD(lc.fd, lc.pending)
		if err != nil {
			lc.fail(err)
			return
		}
		lc.pending = append(lc.pending[:0], lc.pending[n:]...)
	}
	if len(lc.pending) > 0 {
		return
	}
	lc.pending = nil
	lc.watchWritable(false)
	if lc.drained != nil {
		close(lc.drained)
		lc.drained = nil
	}
}

// flushPolling writes the queue, waiting for the socket with poll(2),
// bounded by ctx; wmu held. Only used once the loop has let go.
func (lc *loopConn) flushPolling(ctx context.Context) error {
	for len(lc.pending) > 0 {
		n, err := writeFD(lc.fd, lc.pending)
		if err != nil {
			lc.fail(err)
			return err
		}
		lc.pending = append(lc.pending[:0], lc.pending[n:]...)
		if len(lc.pending) == 0 {
			break
		}
		if err := pollFD(ctx, lc.fd, unix.POLLOUT); err != nil {
			lc.fail(err)
			return err
		}
	}
	lc.pending = nil
	return nil
}

// pollFD waits for events on fd, bounded by ctx (without a deadline, by
// the default close timeout), in slices so that a cancelled ctx is seen.
func pollFD(ctx context.Context, fd int, events int16) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultCloseTimeout)
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("write: %w", context.DeadlineExceeded)
		}
		ms := int(min(left, 100*time.Millisecond)/time.Millisecond) + 1
		pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(pfd, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// writeFD writes b to the non-blocking fd; a full socket is not an error.
func writeFD(fd int, b []byte) (int, error) {
	total := 0
	for total < len(b) {
		n, err := rawsys.Write(fd, b[total:])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return total, nil
		case err != nil:
			return total, fmt.Errorf("write: %w", err)
		}
		total += n
	}
	return total, nil
}

// closeFD closes the socket once; wmu held.
func (lc *loopConn) closeFD() {
	if lc.fd >= 0 {
		_ = unix.Close(lc.fd)
		lc.fd = -1
	}
}

// close sends the close frame and waits, bounded by ctx, for the server's:
// while the loop reads, for the loop to see it; once the loop has let go,
// by reading here. On the loop's own goroutine (Close from a handler) it
// does not wait: the loop ends the connection when the answer comes, or
// the close timeout closes it.
func (lc *loopConn) close(ctx context.Context) error {
	if lc.nc != nil {
		_ = lc.writeFrame(ctx, opClose, closePayload(websocket.StatusNormalClosure))
		lc.closeNow()
		return nil
	}
	err := lc.writeFrame(ctx, opClose, closePayload(websocket.StatusNormalClosure))
	lc.wmu.Lock()
	held := lc.held
	lc.wmu.Unlock()
	switch {
	case err != nil:
	case held && lc.lp.gid.Load() == goroutineID():
		lc.wmu.Lock()
		lc.wantClose = true
		lc.wmu.Unlock()
		time.AfterFunc(lc.d.closeTimeout, lc.closeNow)
		return nil
	case held:
		select {
		case <-lc.readDone:
		case <-ctx.Done():
			err = fmt.Errorf("close: %w", ctx.Err())
		}
	default:
		err = lc.awaitClose(ctx)
	}
	lc.closeNow()
	return err
}

// awaitClose reads until the server's close frame or the end of the
// connection, bounded by ctx; used once the loop has let go.
func (lc *loopConn) awaitClose(ctx context.Context) error {
	lc.wmu.Lock()
	fd := lc.fd
	lc.wmu.Unlock()
	if fd < 0 {
		return nil
	}
	buf := make([]byte, 4<<10)
	for {
		if err := pollFD(ctx, fd, unix.POLLIN); err != nil {
			return err
		}
		n, err := unix.Read(fd, buf)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		case err != nil || n == 0:
			return nil
		}
		done := false
		if err := lc.rd.feed(buf[:n], func(op byte, _ []byte) bool {
			done = op == opClose
			return !done
		}); err != nil || done {
			return nil
		}
	}
}

// closeNow drops the connection: at once when no loop reads it, else by
// shutting it down so that the loop ends it and closes it.
func (lc *loopConn) closeNow() {
	lc.wmu.Lock()
	defer lc.wmu.Unlock()
	if lc.nc != nil {
		_ = lc.nc.Close()
		return
	}
	if lc.held {
		lc.wantClose = true
		if lc.fd >= 0 {
			_ = unix.Shutdown(lc.fd, unix.SHUT_RDWR)
		}
		return
	}
	lc.closeFD()
}

// abort unblocks every read and write; safe from any goroutine.
func (lc *loopConn) abort() {
	lc.wmu.Lock()
	defer lc.wmu.Unlock()
	if lc.nc != nil {
		_ = lc.nc.Close()
		return
	}
	if lc.fd >= 0 {
		_ = unix.Shutdown(lc.fd, unix.SHUT_RDWR)
	}
	if lc.drained != nil {
		close(lc.drained)
		lc.drained = nil
	}
	if lc.broken == nil {
		lc.broken = net.ErrClosed
	}
}
