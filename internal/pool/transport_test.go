package pool

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

// pollingDriver makes every other connection of its Driver report that it
// stayed on long-polling.
type pollingDriver struct {
	probe.Driver
	n atomic.Int64
}

type pollingConn struct{ probe.Conn }

func (pollingConn) Transport() string { return probe.TransportPolling }

func (d *pollingDriver) Dial(ctx context.Context, t *probe.Target, h probe.Handlers) (probe.Conn, error) {
	c, err := d.Driver.Dial(ctx, t, h)
	if err != nil || d.n.Add(1)%2 == 0 {
		return c, err
	}
	return pollingConn{c}, nil
}

func TestConnectedByTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := soaktest.NewMemDriver()
		reg := prometheus.NewRegistry()
		p := newTestPoolReg(t, reg, testConfig(), &pollingDriver{Driver: mem})
		stop := runPool(t, p)
		time.Sleep(100 * time.Millisecond) // fake time (synctest): the ramp-up
		synctest.Wait()
		want := func(ws, polling int) {
			t.Helper()
			if got := p.ConnectedByTransport(probe.TransportWebSocket); got != ws {
				t.Errorf("websocket clients %d, want %d", got, ws)
			}
			if got := p.ConnectedByTransport(probe.TransportPolling); got != polling {
				t.Errorf("polling clients %d, want %d", got, polling)
			}
		}
		want(2, 2)
		exp := `
# HELP soak_clients_connected_by_transport Clients connected to the target now, by the Engine.IO transport they run on (polling: long-polling, never upgraded).
# TYPE soak_clients_connected_by_transport gauge
soak_clients_connected_by_transport{target="t1",transport="polling"} 2
soak_clients_connected_by_transport{target="t1",transport="websocket"} 2
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), MetricClientsByTransport); err != nil {
			t.Error(err)
		}
		if problems, err := testutil.GatherAndLint(reg, MetricClientsByTransport); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
		stop()
		want(0, 0)
	})
}
