// Package soaktest holds the helpers the project's tests share: in-memory
// drivers for the pool's own logic (the real drivers are tested against real
// servers), reading a metric back from a registry, and waiting for a
// condition.
package soaktest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// Sum adds up the samples of a metric (counter or gauge value, histogram
// sample count) that carry every given label pair (name, value, ...).
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	sum := 0.0
next:
	for _, m := range samples(t, g, name) {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return sum
}

// samples gathers g and returns the samples of the family name.
func samples(t testing.TB, g prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

// WaitFor polls cond until it holds, and fails the test after 10 s. It is
// for conditions that depend on real servers or real goroutines; logic that
// depends on time is tested with an injected clock or testing/synctest
// instead.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitWithin(t, what, 10*time.Second, cond)
}

// WaitWithin is WaitFor with its own bound, for conditions of real servers
// that take longer (refills, restarts).
func WaitWithin(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !Poll(timeout, 5*time.Millisecond, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Poll checks cond every interval until it holds or timeout has passed, and
// reports whether it held. It is the one place where the tests wait in wall
// time for a condition of other goroutines or of real processes (a Node or
// Redis server, Prometheus, a subprocess's /metrics) that offer nothing to
// wait on; callers that need their own failure message use it directly.
func Poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval) // polling a condition of other goroutines or processes
	}
	return true
}

// Settle waits, inside a testing/synctest bubble, until cond holds: it lets
// every goroutine of the bubble run until blocked (synctest.Wait) and, while
// cond does not hold, advances the bubble's fake clock by step so that
// timers (the pool's dial schedule, tickers) fire. It fails the test after
// a minute of fake time. Nothing here waits in wall time.
func Settle(t testing.TB, what string, step time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	for {
		synctest.Wait()
		if cond() {
			return
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("not settled after a minute of fake time: %s", what)
		}
		time.Sleep(step) // fake time: the bubble's clock jumps at once
	}
}

// Integration marks a test of the full tier: one that needs a real Node
// fixture, redis-server, Prometheus or another external process (deps names
// them for the skip message). Under -short (the fast tier) it skips the
// test. Otherwise it returns, and the helper that starts the dependency
// fails the test loudly when it is missing: a full run never skips silently.
func Integration(t testing.TB, deps ...string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("fast tier (-short): needs %v", deps)
	}
}

// MemDriver is an in-memory probe.Driver: it acks every event at once
// (unless told to drop acks), relays events that want no ack to every other
// open connection (as socket.broadcast.emit does, across targets as the
// Redis adapter does, unless partitioned), and can refuse dials or kick
// every connection.
type MemDriver struct {
	mu        sync.Mutex
	conns     []*memConn
	refuse    bool
	dropAcks  bool
	partition bool // relay only between connections of the same target
	twice     bool // relay every copy twice
	dials     int
	onEmit    func(ctx context.Context, event string)
	ackArgs   func(event string, args []json.RawMessage) []json.RawMessage
	rename    func(event string) string
	reply     func(event string, args []json.RawMessage) (string, []json.RawMessage, bool)
}

// NewMemDriver returns a driver whose connections all succeed.
func NewMemDriver() *MemDriver { return &MemDriver{} }

// Name implements probe.Driver.
func (d *MemDriver) Name() string { return "mem" }

// Set changes the driver's behaviour under its lock: Refuse, DropAcks,
// Partition, Twice, OnEmit.
func (d *MemDriver) Set(f func(c *MemControl)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := MemControl{Refuse: d.refuse, DropAcks: d.dropAcks, Partition: d.partition, Twice: d.twice,
		OnEmit: d.onEmit, AckArgs: d.ackArgs, Rename: d.rename, Reply: d.reply}
	f(&c)
	d.refuse, d.dropAcks, d.partition, d.twice = c.Refuse, c.DropAcks, c.Partition, c.Twice
	d.onEmit, d.ackArgs, d.rename, d.reply = c.OnEmit, c.AckArgs, c.Rename, c.Reply
}

// MemControl is what Set may change.
type MemControl struct {
	Refuse    bool // dials fail with reason refused
	DropAcks  bool // events that want an ack get none
	Partition bool // relays stay within a target
	Twice     bool // relays are delivered twice
	// OnEmit, when set, is called by every Emit with its context, before
	// the event is acked or relayed.
	OnEmit func(ctx context.Context, event string)
	// AckArgs, when set, gives the arguments of an ack (default: the
	// event's own arguments).
	AckArgs func(event string, args []json.RawMessage) []json.RawMessage
	// Rename, when set, gives the name a relayed event arrives under.
	Rename func(event string) string
	// Reply, when set, answers an event that wants no ack with an event to
	// every open connection, the sender included (as io.to(room).emit
	// does), instead of relaying it; ok false sends nothing.
	Reply func(event string, args []json.RawMessage) (name string, reply []json.RawMessage, ok bool)
}

// Dials is the number of Dial calls so far.
func (d *MemDriver) Dials() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials
}

// Open is the number of open connections.
func (d *MemDriver) Open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.conns {
		if !c.closed {
			n++
		}
	}
	return n
}

// Dial implements probe.Driver.
func (d *MemDriver) Dial(ctx context.Context, t *probe.Target, h probe.Handlers) (probe.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials++
	if d.refuse {
		return nil, &probe.ConnectError{Reason: probe.FailRefused}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &memConn{d: d, target: t.Name, h: h}
	live := d.conns[:0]
	for _, o := range d.conns {
		if !o.closed {
			live = append(live, o)
		}
	}
	d.conns = append(live, c)
	return c, nil
}

// Kick ends every open connection as the server would
// (io_server_disconnect) and returns how many.
func (d *MemDriver) Kick() int {
	d.mu.Lock()
	var cs []*memConn
	for _, c := range d.conns {
		if !c.closed {
			cs = append(cs, c)
		}
	}
	d.mu.Unlock()
	for _, c := range cs {
		c.end(probe.ReasonServerDisconnect)
	}
	return len(cs)
}

type memConn struct {
	d      *MemDriver
	target string
	h      probe.Handlers
	once   sync.Once
	closed bool // guarded by d.mu
}

func (c *memConn) Emit(ctx context.Context, event string, ackID int64, args ...json.RawMessage) error {
	c.d.mu.Lock()
	closed, drop, hook, ackArgs, rename, reply := c.closed, c.d.dropAcks, c.d.onEmit, c.d.ackArgs, c.d.rename, c.d.reply
	var to []*memConn
	if ackID < 0 {
		for _, o := range c.d.conns {
			if (o != c || c.d.reply != nil) && !o.closed && (!c.d.partition || o.target == c.target) {
				to = append(to, o)
			}
		}
	}
	n := 1
	if c.d.twice {
		n = 2
	}
	c.d.mu.Unlock()
	if hook != nil {
		hook(ctx, event)
	}
	if closed {
		return errors.New("closed")
	}
	for _, a := range args {
		if !json.Valid(a) {
			return errors.New("bad payload")
		}
	}
	if ackID >= 0 {
		if !drop && c.h.OnAck != nil {
			if ackArgs != nil {
				args = ackArgs(event, args)
			}
			c.h.OnAck(uint64(ackID), args)
		}
		return nil
	}
	if rename != nil {
		event = rename(event)
	}
	if reply != nil {
		var ok bool
		if event, args, ok = reply(event, args); !ok {
			return nil
		}
	}
	for _, o := range to {
		for range n {
			if o.h.OnEvent != nil {
				o.h.OnEvent(event, args)
			}
		}
	}
	return nil
}

func (c *memConn) Close(context.Context) error {
	c.end(probe.ReasonClientClose)
	return nil
}

func (c *memConn) end(r probe.DisconnectReason) {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.closed = true
		c.d.mu.Unlock()
		c.h.OnClose(r, nil)
	})
}

// BucketCount returns the cumulative count of a histogram's classic bucket
// with upper bound le, summed over the histogram's series.
func BucketCount(t testing.TB, g prometheus.Gatherer, name string, le float64) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range samples(t, g, name) {
		for _, b := range m.GetHistogram().GetBucket() {
			if b.GetUpperBound() == le {
				sum += float64(b.GetCumulativeCount())
			}
		}
	}
	return sum
}
