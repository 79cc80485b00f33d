package faults

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak"
	"github.com/generic-corp/soak-exporter/internal/leak/detect"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// Self-soak settings, from the environment (the benchmark only).
const (
	envSelfSoakDuration = "SOAK_SELF_SOAK_DURATION"
	envSelfSoakKick     = "SOAK_SELF_SOAK_KICK_INTERVAL"
	envSelfSoakClients  = "SOAK_SELF_SOAK_CLIENTS"

	selfSoakSampleInterval = 5 * time.Second
)

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s: want a duration > 0, got %q", name, v)
	}
	return d
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s: want an integer > 0, got %q", name, v)
	}
	return n
}

// selfSoakDetector is the leak detector's tuned configuration with one
// window covering the whole run, no grace, and buckets of at least three
// samples (at most 36 of them).
func selfSoakDetector(b *testing.B, run time.Duration) *detect.Detector {
	cfg := detect.DefaultConfig()
	cfg.Windows = []time.Duration{run}
	cfg.MaxBuckets = 36
	cfg.Bucket = 3 * selfSoakSampleInterval
	_, n := cfg.BucketWidth(run)
	cfg.MinBuckets = min(10, n)
	cfg.Grace = 0
	if cfg.MinBuckets < 3 {
		b.Fatalf("%s=%v is too short for a verdict: at least %v", envSelfSoakDuration, run, 3*cfg.Bucket)
	}
	d, err := detect.New(cfg)
	if err != nil {
		b.Fatalf("detector: %v", err)
	}
	return d
}

// BenchmarkSelfSoak runs the agent pool against the Node fixture for
// SOAK_SELF_SOAK_DURATION (30m by default) with a kick of every client every
// SOAK_SELF_SOAK_KICK_INTERVAL (1m), samples the agent's own memory with the
// leak package's self source every 5 s, and judges it with the leak
// detector (one window = the run, no grace). It fails when the detector
// suspects a leak in the agent or cannot give a verdict. Run it with
//
//	go test -run '^$' -bench SelfSoak -benchtime 1x -timeout 40m ./test/faults
//
// (docs/benchmarks-self-soak.md). It reports the RSS floor slope in MB/h,
// the R² and the verdict.
func BenchmarkSelfSoak(b *testing.B) {
	run := envDuration(b, envSelfSoakDuration, 30*time.Minute)
	kickEvery := envDuration(b, envSelfSoakKick, time.Minute)
	clients := envInt(b, envSelfSoakClients, 100)
	for range b.N {
		selfSoak(b, run, kickEvery, clients)
	}
}

func selfSoak(b *testing.B, run, kickEvery time.Duration, clients int) {
	node := testfixture.Start(b, testfixture.Options{})
	cfg := config()
	cfg.Clients, cfg.ConnectRate, cfg.EventRate = clients, 200, 100
	cfg.BackoffMin, cfg.BackoffMax = 100*time.Millisecond, 2*time.Second
	h := startPool(b, cfg, target(b, node.URL(), 1<<20))
	soaktest.WaitWithin(b, "all connected", 60*time.Second, func() bool { return h.p.Connected() == clients })

	self, err := leak.NewSelf("/proc", "/sys/fs/cgroup", time.Now)
	if err != nil {
		b.Fatalf("self source: %v", err)
	}
	rssDet, heapDet := selfSoakDetector(b, run), selfSoakDetector(b, run)
	// The window's verdict needs all its buckets complete: run until the
	// last one is, plus one sample.
	width, n := rssDet.Config().BucketWidth(run)
	total := max(run, time.Duration(n)*width) + selfSoakSampleInterval
	sample := func() {
		s, err := self.Sample(context.Background())
		if err != nil {
			b.Fatalf("self sample: %v", err)
		}
		for _, r := range s.Readings {
			p := detect.Point{Time: s.Time, Bytes: r.Bytes, Start: s.StartTime}
			switch r.Kind {
			case leak.KindRSS:
				err = rssDet.Add(p)
			case leak.KindHeap:
				err = heapDet.Add(p)
			}
			if err != nil {
				b.Fatalf("detector: %v", err)
			}
		}
	}

	b.ResetTimer()
	start := time.Now()
	sampleT := time.NewTicker(selfSoakSampleInterval)
	defer sampleT.Stop()
	kickT := time.NewTicker(kickEvery)
	defer kickT.Stop()
	end := time.NewTimer(total)
	defer end.Stop()
	sample()
	kicks, kicked := 0, 0
loop:
	for {
		select {
		case <-end.C:
			break loop
		case <-sampleT.C:
			sample()
		case <-kickT.C:
			kicked += node.KickAll()
			kicks++
		}
	}
	sample()
	elapsed := time.Since(start)
	b.StopTimer()

	rep := rssDet.Evaluate(time.Now(), 0)
	hrep := heapDet.Evaluate(time.Now(), 0)
	res, hres := rep.Windows[0], hrep.Windows[0]
	perHour := func(bps float64) float64 { return bps * 3600 / detect.MB }
	b.ReportMetric(perHour(res.FloorSlope), "rss_floor_MB/h")
	b.ReportMetric(perHour(res.OLSSlope), "rss_ols_MB/h")
	b.ReportMetric(res.FloorR2, "rss_floor_R2")
	b.ReportMetric(res.OLSR2, "rss_ols_R2")
	b.ReportMetric(perHour(hres.FloorSlope), "heap_floor_MB/h")
	b.ReportMetric(float64(kicked), "kicked_clients")
	b.Logf("self-soak %v: %d clients, %d kicks (%d clients kicked), %d samples; sent %v acked %v lost %v; disconnects %v; connect failures %v",
		elapsed.Round(time.Second), clients, kicks, kicked, rep.Points,
		h.value("soak_events_sent_total", "", ""), h.value("soak_events_acked_total", "", ""),
		h.value("soak_events_lost_total", "", ""), h.disconnects(), h.failures())
	b.Logf("RSS: verdict %s (%s); floor slope %.3f MB/h (R² %.3f, p %.3g), OLS slope %.3f MB/h (R² %.3f), baseline %.1f MB, %d/%d buckets of %v",
		res.Verdict, res.Reason, perHour(res.FloorSlope), res.FloorR2, res.P, perHour(res.OLSSlope), res.OLSR2,
		res.Baseline/detect.MB, res.FilledBuckets, res.Buckets, res.BucketWidth)
	b.Logf("heap: verdict %s (%s); floor slope %.3f MB/h (R² %.3f), OLS slope %.3f MB/h (R² %.3f)",
		hres.Verdict, hres.Reason, perHour(hres.FloorSlope), hres.FloorR2, perHour(hres.OLSSlope), hres.OLSR2)
	switch res.Verdict {
	case detect.LeakSuspected:
		b.Errorf("the agent's own leak detector suspects a leak in the agent's RSS: %s", res.Reason)
	case detect.InsufficientData:
		b.Errorf("no verdict on the agent's RSS: %s", res.Reason)
	}
	if hres.Verdict == detect.LeakSuspected {
		b.Errorf("the agent's own leak detector suspects a leak in the agent's heap: %s", hres.Reason)
	}
	h.stop()
}
