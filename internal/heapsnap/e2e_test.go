package heapsnap

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/leak"
	"github.com/generic-corp/soak-exporter/internal/secret"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestLeakToDiff is the whole chain without a person: a Node process leaks
// LeakyCache objects, the leak monitor (scrape source, fake clock) suspects
// a leak, its verdict hook starts the Capturer, and the diff of the two
// snapshots names LeakyCache with the count retained between them.
func TestLeakToDiff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Node and takes two heap snapshots (about 10 s)")
	}
	node := testfixture.StartScript(t, "leaky-cache.js", nil, "--inspect=127.0.0.1:0")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	hcfg := DefaultConfig()
	hcfg.Mode, hcfg.Inspector, hcfg.Dir = ModeNode, secret.Secret(node.InspectorAddr()), t.TempDir()
	fa := newFakeAfter()
	capt, err := NewCapturer(hcfg, zap.NewNop(), prometheus.NewRegistry(), WithAfter(fa.after), WithHTTPClient(client))
	if err != nil {
		t.Fatal(err)
	}
	done, stop := run(t, capt)

	var mu sync.Mutex
	var alerts []string
	lcfg := leak.DefaultConfig()
	lcfg.Sources, lcfg.ScrapeURL, lcfg.ScrapeRSSMetric = []string{leak.SourceScrape}, node.URL()+"/metrics", ""
	lcfg.Windows, lcfg.Bucket, lcfg.MinBuckets, lcfg.MaxBuckets, lcfg.Grace = []time.Duration{10 * time.Minute}, 20*time.Second, 10, 30, 0
	lcfg.MinGrowth, lcfg.MinGrowthWindows, lcfg.MinRate = 1<<20, nil, 0
	now := time.Now()
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	mon, err := leak.New(lcfg, zap.NewNop(), prometheus.NewRegistry(), leak.WithClock(clock), leak.WithHTTPClient(client),
		leak.WithVerdictFunc(func(source string, kind leak.Kind, suspected bool, at time.Time) {
			mu.Lock()
			alerts = append(alerts, fmt.Sprintf("%s/%s %v", source, kind, suspected))
			mu.Unlock()
			capt.Suspected(source+"/"+string(kind), suspected, at)
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	suspected := false
	for i := 0; i < 12*30 && !suspected; i++ { // at most 30 minutes of 5 s samples
		node.Get("/add?n=500", nil)
		mon.Tick(ctx)
		clockMu.Lock()
		now = now.Add(5 * time.Second)
		clockMu.Unlock()
		mu.Lock()
		suspected = len(alerts) > 0
		mu.Unlock()
	}
	mu.Lock()
	t.Logf("verdict changes: %v", alerts)
	if len(alerts) == 0 || alerts[0] != "scrape/heap true" {
		t.Fatalf("verdict changes %v, want scrape/heap true", alerts)
	}
	mu.Unlock()
	w := fa.next(t, hcfg.Interval, "the wait after capture 1")
	const injected = 7000
	node.Get(fmt.Sprintf("/add?n=%d", injected), nil)
	w.fire <- time.Now()
	waitFor(t, done, "the episode")
	stop()
	d := capt.LastDiff()
	if d == nil || len(d.Top) == 0 {
		t.Fatalf("diff %+v", d)
	}
	t.Logf("diff:\n%s", strings.Join(d.Lines(5), "\n"))
	if d.Top[0].Name != "LeakyCache" || d.Top[0].CountAdded != injected {
		t.Errorf("top grower %+v, want LeakyCache +%d", d.Top[0], injected)
	}
}
