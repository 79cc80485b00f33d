package native

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []pollRecord
		wantErr bool
	}{
		{name: "one", in: "2", want: []pollRecord{{data: []byte("2")}}},
		{name: "batch", in: "2\x1e42[\"a\"]", want: []pollRecord{{data: []byte("2")}, {data: []byte(`42["a"]`)}}},
		{name: "binary", in: "451-[\"e\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
			want: []pollRecord{{data: []byte(`451-["e",{"_placeholder":true,"num":0}]`)}, {binary: true, data: []byte{1, 2, 3}}}},
		{name: "empty binary", in: "b", want: []pollRecord{{binary: true, data: []byte{}}}},
		{name: "empty", in: "", wantErr: true},
		{name: "empty record", in: "2\x1e\x1e3", wantErr: true},
		{name: "trailing separator", in: "2\x1e", wantErr: true},
		{name: "bad base64", in: "b!!", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePayload([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i].binary != tc.want[i].binary || !bytes.Equal(got[i].data, tc.want[i].data) {
					t.Errorf("record %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if !tc.wantErr {
				if enc := encodePayload(nil, got); string(enc) != tc.in {
					t.Errorf("encodePayload = %q, want %q", enc, tc.in)
				}
			}
		})
	}
}

func TestExplainPollStatus(t *testing.T) {
	tests := []struct {
		name string
		code int
		body string
		want []string
	}{
		{name: "session unknown", code: 400, body: `{"code":1,"message":"Session ID unknown"}`, want: []string{`"Session ID unknown"`, "no sticky sessions?", "SOAK_TRANSPORTS=websocket"}},
		{name: "polling disabled", code: 400, body: `{"code":0,"message":"Transport unknown"}`, want: []string{`"Transport unknown"`, "SOAK_TRANSPORTS=websocket"}},
		{name: "forbidden", code: 403, body: `{"code":4,"message":"banned"}`, want: []string{`"banned"`, "allowRequest"}},
		{name: "not found", code: 404, body: ``, want: []string{"SOAK_SOCKETIO_PATH"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, msg := explainPollStatus(tc.code, http.StatusText(tc.code), []byte(tc.body))
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

// TestPollingWritesBatch: writes made while a POST is in flight go out
// together in the next POST, records separated by 0x1e, and never overlap.
func TestPollingWritesBatch(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var bodies []string
	inFlight := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		inFlight++
		overlap := inFlight > 1
		first := len(bodies) == 0
		bodies = append(bodies, string(b))
		mu.Unlock()
		if overlap {
			http.Error(w, `{"code":3,"message":"Bad request"}`, http.StatusBadRequest)
		} else if first {
			<-release
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	d := newTestDriver(Options{})
	p := d.newPolling(context.Background(), &probe.Target{}, srv.URL+"/socket.io/?EIO=4&transport=polling")
	defer p.closeNow()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.open(ctx); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	go func() { errs <- p.write(ctx, []byte("A")) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) == 1 })
	go func() { errs <- p.write(ctx, []byte("B")) }()
	go func() { errs <- p.write(ctx, []byte("C")) }()
	waitFor(t, func() bool { p.wmu.Lock(); defer p.wmu.Unlock(); return p.next != nil && len(p.next.body) == 3 })
	close(release)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 || bodies[0] != "A" || (bodies[1] != "B\x1eC" && bodies[1] != "C\x1eB") {
		t.Errorf("POST bodies %q, want A then B and C together", bodies)
	}
}

// waitFor spins (yielding, no sleep) until cond holds, for at most 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.Gosched()
	}
}

// TestPollingBindsTheSourceAddress: every request of a polling session
// leaves from the source address the Dial's ctx names.
func TestPollingBindsTheSourceAddress(t *testing.T) {
	var mu sync.Mutex
	var remotes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes = append(remotes, r.RemoteAddr)
		mu.Unlock()
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src := netip.MustParseAddr("127.0.0.2")
	p := newTestDriver(Options{}).newPolling(probe.WithSource(ctx, src), &probe.Target{}, srv.URL+"/socket.io/?EIO=4&transport=polling")
	defer p.closeNow()
	if _, err := p.open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.write(ctx, []byte("40")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 2 {
		t.Fatalf("%d requests, want 2", len(remotes))
	}
	for _, r := range remotes {
		if ap, err := netip.ParseAddrPort(r); err != nil || ap.Addr() != src {
			t.Errorf("request from %s, want %s", r, src)
		}
	}
}
