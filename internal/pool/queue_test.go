package pool

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

// queueingDriver wraps its Driver's connections in queueingConn.
type queueingDriver struct {
	probe.Driver
	backlog int
	queues  bool
}

func (d *queueingDriver) Dial(ctx context.Context, t *probe.Target, h probe.Handlers) (probe.Conn, error) {
	c, err := d.Driver.Dial(ctx, t, h)
	if err != nil {
		return nil, err
	}
	return queueingConn{Conn: c, backlog: d.backlog, queues: d.queues}, nil
}

// queueingConn reports a fixed backlog, as the event-loop transport does.
type queueingConn struct {
	probe.Conn
	backlog int
	queues  bool
}

func (c queueingConn) Backlog() (int, bool) { return c.backlog, c.queues }

// Items for a connection that takes writes without waiting are written by
// the scheduler under probe.WithoutWaiting; the others (something already
// queued, a transport that cannot queue, a driver without probe.Queuer) go
// to a writer goroutine with a bounded context that may wait.
func TestDirectWritesOnlyWithoutBacklog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		driver func(probe.Driver) probe.Driver
		direct bool
	}{
		{"queues, nothing queued", func(d probe.Driver) probe.Driver { return &queueingDriver{Driver: d, queues: true} }, true},
		{"queues, bytes queued", func(d probe.Driver) probe.Driver { return &queueingDriver{Driver: d, backlog: 100, queues: true} }, false},
		{"cannot queue now", func(d probe.Driver) probe.Driver { return &queueingDriver{Driver: d} }, false},
		{"no Queuer", func(d probe.Driver) probe.Driver { return d }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sp := &streamProbe{rate: 1000, ctxs: make(chan context.Context, 64)}
				cfg := testConfig()
				p := newTestPool(t, cfg, tc.driver(soaktest.NewMemDriver()), sp)
				stop := runPool(t, p)
				time.Sleep(time.Second) // fake time (synctest): the ramp-up and some items
				synctest.Wait()
				stop()
				close(sp.ctxs)
				n := 0
				for ctx := range sp.ctxs {
					n++
					if got := !probe.MayWait(ctx); got != tc.direct {
						t.Fatalf("written without waiting: %v, want %v", got, tc.direct)
					}
					if _, ok := ctx.Deadline(); ok == tc.direct {
						t.Fatalf("deadline set: %v, want %v (a direct write never waits)", ok, !tc.direct)
					}
				}
				if n == 0 {
					t.Fatal("no item was fired")
				}
				if d := sp.dropped.Load(); d != 0 {
					t.Errorf("%d items dropped", d)
				}
			})
		})
	}
}

// The claim a direct write holds keeps Fire one item at a time per session:
// an item pushed meanwhile waits, then gets a writer.
func TestOutboxClaim(t *testing.T) {
	var o outbox
	if !o.claim() {
		t.Fatal("claim of an idle outbox failed")
	}
	if o.claim() {
		t.Fatal("second claim succeeded")
	}
	if o.push(job{k: 1}) {
		t.Fatal("push into a claimed outbox asked for a writer")
	}
	if !o.release() {
		t.Fatal("release with a job pushed meanwhile did not ask for a writer")
	}
	if j, ok := o.pop(false); !ok || j.k != 1 {
		t.Fatalf("pop = %v %v, want job 1", j.k, ok)
	}
	if _, ok := o.pop(false); ok {
		t.Fatal("pop of an empty outbox returned a job")
	}
	if !o.claim() {
		t.Fatal("claim after the writer finished failed")
	}
	if o.release() {
		t.Fatal("release of an empty outbox asked for a writer")
	}
}
