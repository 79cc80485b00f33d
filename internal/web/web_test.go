package web

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestServer(t *testing.T, ready bool) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	connected := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "soak_clients_connected", Help: "h"}, []string{"target"})
	desired := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "soak_clients_desired", Help: "h"}, []string{"target"})
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "soak_events_sent_total", Help: "h"}, []string{"target", "event"})
	lost := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "soak_events_lost_total", Help: "h"}, []string{"target", "event"})
	byTransport := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "soak_clients_connected_by_transport", Help: "h"}, []string{"target", "transport"})
	reg.MustRegister(connected, desired, sent, lost, byTransport)
	connected.WithLabelValues("a").Set(49)
	byTransport.WithLabelValues("a", "websocket").Set(46)
	byTransport.WithLabelValues("a", "polling").Set(3)
	desired.WithLabelValues("a").Set(50)
	sent.WithLabelValues("a", "echo").Add(1000)
	lost.WithLabelValues("a", "echo").Add(1)
	s := New(Config{ListenAddress: "127.0.0.1:0"}, zap.NewNop(), Options{
		Gatherer: reg, Registerer: reg,
		Ready: func() bool { return ready },
		Page:  Page{Version: "1.2.3", Mode: "configured targets", Driver: "native"},
		Notes: func() []Note { return []Note{{Target: "a", LastConnectError: "12:00:00 connect_error: <b>nope</b>"}} },
		Now:   func() time.Time { return time.Unix(0, 0) },
	})
	return s, reg
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		name, path string
		ready      bool
		status     int
		contains   []string
		excludes   []string
	}{
		{name: "healthy", path: "/-/healthy", status: 200, contains: []string{"Healthy"}},
		{name: "ready", path: "/-/ready", ready: true, status: 200, contains: []string{"Ready"}},
		{name: "not ready", path: "/-/ready", status: 503, contains: []string{"Not ready"}},
		{name: "metrics", path: "/metrics", status: 200, contains: []string{`soak_clients_connected{target="a"} 49`, "promhttp_metric_handler_requests_total"}},
		{name: "landing", path: "/", status: 200,
			contains: []string{"49 / 50 (3 on long-polling)", "1000", "0.1%", "native", "&lt;b&gt;nope&lt;/b&gt;", `href="metrics"`},
			excludes: []string{"<b>nope</b>", "pprof"}},
		{name: "unknown path", path: "/nope", status: 404},
		{name: "no pprof by default", path: "/debug/pprof/", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestServer(t, tc.ready)
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			body := rec.Body.String()
			for _, c := range tc.contains {
				if !strings.Contains(body, c) {
					t.Errorf("body lacks %q:\n%s", c, body)
				}
			}
			for _, c := range tc.excludes {
				if strings.Contains(body, c) {
					t.Errorf("body has %q", c)
				}
			}
		})
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	s, _ := newTestServer(t, true)
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/-/healthy")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestBucketQuantile(t *testing.T) {
	h := &dto.Histogram{
		SampleCount: proto.Uint64(100),
		Bucket: []*dto.Bucket{
			{UpperBound: proto.Float64(0.1), CumulativeCount: proto.Uint64(50)},
			{UpperBound: proto.Float64(0.2), CumulativeCount: proto.Uint64(90)},
			{UpperBound: proto.Float64(0.5), CumulativeCount: proto.Uint64(100)},
		},
	}
	tests := []struct{ q, want float64 }{
		{0.5, 0.1},
		{0.25, 0.05},
		{0.7, 0.15},
		{0.95, 0.35},
		{1, 0.5},
	}
	for _, tc := range tests {
		if got := BucketQuantile(tc.q, h); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("q%v = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := BucketQuantile(0.5, &dto.Histogram{}); !math.IsNaN(got) {
		t.Errorf("empty histogram: %v, want NaN", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{ListenAddress: ":9477"}, ""},
		{Config{ListenAddress: "9477"}, "SOAK_LISTEN_ADDRESS"},
		{Config{ListenAddress: ":9477", WebConfigFile: "/nonexistent/web.yml"}, "SOAK_WEB_CONFIG_FILE"},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.HasPrefix(err.Error(), tc.want+":")) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
