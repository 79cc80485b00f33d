package heapsnap

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestSnapshotPause measures how long one heap snapshot pauses a Node
// target's event loop, for heaps of the sizes (MB) listed in
// SOAK_HEAP_PAUSE_MB, e.g. SOAK_HEAP_PAUSE_MB=50,500. It is skipped without
// that variable: at 500 MB it takes about a minute and a few GB of disk.
//
//	SOAK_HEAP_PAUSE_MB=50,500 go test -run TestSnapshotPause -v ./internal/heapsnap/
func TestSnapshotPause(t *testing.T) {
	sizes := os.Getenv("SOAK_HEAP_PAUSE_MB")
	if sizes == "" {
		t.Skip("set SOAK_HEAP_PAUSE_MB=50,500 to measure the event-loop pause of a heap snapshot")
	}
	for _, s := range strings.Split(sizes, ",") {
		mb, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || mb <= 0 {
			t.Fatalf("SOAK_HEAP_PAUSE_MB: bad size %q", s)
		}
		t.Run(s+"MB", func(t *testing.T) {
			node := testfixture.StartScript(t, "leaky-cache.js", []string{"FILL_MB=" + strconv.Itoa(mb)},
				"--inspect=127.0.0.1:0", "--max-old-space-size=4096")
			var before struct {
				HeapUsed float64 `json:"heap_used"`
			}
			node.Get("/count", &before)
			node.Get("/lag/reset", nil)
			path := filepath.Join(t.TempDir(), "pause.heapsnapshot")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			taker := InspectorTaker{Addr: node.InspectorAddr(), Client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			// From outside too: the slowest answer of the script's HTTP
			// server while the snapshot is taken.
			pollDone := make(chan struct{})
			slowest := make(chan time.Duration, 1)
			go func() {
				var worst time.Duration
				client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				for {
					select {
					case <-pollDone:
						slowest <- worst
						return
					case <-time.After(50 * time.Millisecond):
					}
					t0 := time.Now()
					if resp, err := client.Get(node.URL() + "/count"); err == nil {
						resp.Body.Close()
					}
					worst = max(worst, time.Since(t0))
				}
			}()
			start := time.Now()
			n, err := taker.Take(ctx, f, 8<<30)
			took := time.Since(start)
			close(pollDone)
			worstHTTP := <-slowest
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			var lag struct {
				MaxMS  float64 `json:"max_ms"`
				P99MS  float64 `json:"p99_ms"`
				MeanMS float64 `json:"mean_ms"`
				GapMS  float64 `json:"max_tick_gap_ms"`
			}
			node.Get("/lag", &lag)
			node.Stop()

			runtime.GC()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			pstart := time.Now()
			in, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			agg, err := ParseV8(in)
			in.Close()
			if err != nil {
				t.Fatal(err)
			}
			ptook := time.Since(pstart)
			runtime.ReadMemStats(&ms1)
			t.Logf("heap used %.0f MB: snapshot %.0f MB (%d nodes) in %v; event loop: monitorEventLoopDelay max %.0f ms (p99 %.0f ms), largest tick gap %.0f ms, slowest HTTP answer %v; parse %v, Go heap sys %d MB after parse",
				before.HeapUsed/1e6, float64(n)/1e6, agg.Count, took.Round(time.Millisecond), lag.MaxMS, lag.P99MS, lag.GapMS, worstHTTP.Round(time.Millisecond), ptook.Round(time.Millisecond), ms1.HeapSys>>20)
			if lag.GapMS < 1 {
				t.Errorf("largest tick gap %.1f ms: the measurement saw no pause", lag.GapMS)
			}
		})
	}
}
