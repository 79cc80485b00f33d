package bench

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// nodePool is the Node socket.io-client pool (test/fixture/node/clientpool.js)
// as a BenchmarkSoak row: its process's CPU and RSS from /proc, its counters
// and latencies from its control API.
type nodePool struct {
	s *testfixture.Script
}

// nodePoolStats is clientpool.js's /stats answer.
type nodePoolStats struct {
	Connected     int      `json:"connected"`
	ConnectErrors float64  `json:"connect_errors"`
	Disconnects   float64  `json:"disconnects"`
	Sent          float64  `json:"sent"`
	Acked         float64  `json:"acked"`
	Lost          float64  `json:"lost"`
	Skipped       float64  `json:"skipped"`
	Pending       float64  `json:"pending"`
	P50Millis     *float64 `json:"latency_p50_ms"`
	P99Millis     *float64 `json:"latency_p99_ms"`
}

func (p nodePool) stats() nodePoolStats {
	var st nodePoolStats
	p.s.Get("/stats", &st)
	return st
}

func (p nodePool) settledRSS(b *testing.B) float64 {
	p.s.Get("/gc", nil)
	time.Sleep(2 * time.Second) // benchmark: let the RSS settle after the collection, as settledRSS does for the agent
	p.s.Get("/gc", nil)
	return p.rss(b)
}

func (p nodePool) rss(b *testing.B) float64             { return rss(b, p.s.PID()) }
func (p nodePool) cpu(b *testing.B) (user, sys float64) { return procCPUSeconds(b, p.s.PID()) }
func (p nodePool) connect(*testing.B)                   { p.s.Get("/connect", nil) }
func (p nodePool) connected(*testing.B) int             { return p.stats().Connected }
func (p nodePool) scrapes(*testing.B) []time.Duration   { return nil }
func (p nodePool) send(*testing.B)                      { p.s.Get("/start", nil) }
func (p nodePool) startWindow(*testing.B)               { p.s.Get("/reset", nil) }

func (p nodePool) endWindow(b *testing.B) windowCounts {
	st := p.stats()
	if st.P50Millis == nil || st.P99Millis == nil || st.Acked == 0 {
		b.Fatalf("node pool: no acked event in the window: %+v", st)
	}
	if st.Skipped > 0 {
		b.Logf("node pool: %.0f due events skipped (client not connected)", st.Skipped)
	}
	return windowCounts{
		acked: st.Acked, lost: st.Lost, failures: st.ConnectErrors, disconnects: st.Disconnects,
		p50: *st.P50Millis / 1000, p99: *st.P99Millis / 1000,
	}
}

// runNodePool holds clients with the Node socket.io-client pool against a
// fresh fixture, with the agent's rate, payload, ack timeout and send tick,
// and measures it as runSoak measures a driver.
func runNodePool(b *testing.B, clients, rate, seconds int, floor floors) {
	node := testfixture.Start(b, testfixture.Options{StartTimeout: 30 * time.Second})
	s := testfixture.StartScript(b, "clientpool.js", []string{
		"URL=" + node.URL(),
		"CLIENTS=" + strconv.Itoa(clients),
		"RATE=" + strconv.Itoa(rate),
		"TRANSPORTS=websocket",
		"PAYLOAD_BYTES=" + strconv.Itoa(soakPayloadBytes),
		"ACK_TIMEOUT_MS=" + strconv.FormatInt(soakAckTimeout.Milliseconds(), 10),
		"TICK_MS=" + strconv.FormatInt(pool.SendTick.Milliseconds(), 10),
		"PAUSED=1",
	}, "--expose-gc")
	defer s.Stop()
	r := measure(b, nodePool{s}, node, clients, seconds)
	report(b, nodePoolRow, clients, rate, floor, r)
}

func TestSoakRows(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: []string{"native", "native-goroutines", "zishang520", "nodepool"}},
		{in: "nodepool, native", want: []string{"nodepool", "native"}},
		{in: "native,node", wantErr: `SOAK_BENCH_DRIVERS: unknown row "node"`},
		{in: "native,native", wantErr: `SOAK_BENCH_DRIVERS: "native" given twice`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := soakRows(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("soakRows(%q) error %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("soakRows(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}
