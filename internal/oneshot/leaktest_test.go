package oneshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/leak"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestLeaktestFixture runs leaktest end to end against the Node fixture,
// whose memory it scrapes from the fixture's own /metrics (the guessed
// source). The runs are short, so the bucket and the leak-rate threshold
// are set for a 12-second run: the same settings for both cases, so that
// only the injected leak tells them apart.
func TestLeaktestFixture(t *testing.T) {
	t.Parallel()
	// 12 s sampled every 200 ms, 10 buckets of 1.2 s; 5 clients at 60
	// actions per minute each. 10 000 MB/hour is 2.8 MB/s: far above the
	// GC sawtooth of an idle fixture, far below the injected 10 MB/s.
	args := []string{"12s", "200ms", "60", "--clients", "5", "--bucket", "1200ms", "--max-leak-rate", "10000"}
	tests := []struct {
		name     string
		leak     int64 // bytes per second retained by the fixture
		procfs   bool  // read the fixture's RSS from procfs by its PID
		wantCode int
		check    func(t *testing.T, r result, rep LeakReport)
	}{
		{
			name:     "steady target passes",
			wantCode: ExitPass,
			check: func(t *testing.T, r result, rep LeakReport) {
				if rep.Heap.Robust.Verdict == "leak_suspected" {
					t.Errorf("robust verdict on a steady target: %+v", rep.Heap.Robust)
				}
				if !strings.Contains(r.stdout, "Result: PASSED ✅") {
					t.Errorf("report does not say PASSED")
				}
			},
		},
		{
			name:     "leaking target fails",
			leak:     10_000_000,
			wantCode: ExitFail,
			check: func(t *testing.T, r result, rep LeakReport) {
				if c := criterion(t, rep.Criteria, "leak_rate"); c.Passed || float64(c.Value) < 10000 {
					t.Errorf("leak-rate criterion %+v, want failed above 10000 MB/hour", c)
				}
				if rep.Heap.Robust.Verdict != "leak_suspected" {
					t.Errorf("robust verdict %s (%s), want leak_suspected", rep.Heap.Robust.Verdict, rep.Heap.Robust.Reason)
				}
				if float64(rep.Heap.Growth) < 50e6 || float64(rep.Heap.RSquared) < 0.9 {
					t.Errorf("heap growth %v MB, R² %v: want > 50 MB and a straight line", float64(rep.Heap.Growth)/1e6, rep.Heap.RSquared)
				}
				if !strings.Contains(r.stdout, "❌ Heap leak rate") {
					t.Errorf("report does not name the leak-rate criterion")
				}
			},
		},
		{
			name:     "leaking process read from procfs fails",
			leak:     10_000_000,
			procfs:   true,
			wantCode: ExitFail,
			check: func(t *testing.T, r result, rep LeakReport) {
				if c := criterion(t, rep.Criteria, "leak_rate"); c.Passed || c.Title != "RSS leak rate" {
					t.Errorf("leak-rate criterion %+v, want a failed RSS criterion", c)
				}
				if rep.Heap.Available {
					t.Errorf("procfs reports no heap, yet %+v", rep.Heap)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := testfixture.Start(t, testfixture.Options{})
			if tc.leak > 0 {
				n.Leak(tc.leak)
			}
			path := jsonPath(t)
			var mem func(*leak.Config)
			if tc.procfs {
				mem = func(c *leak.Config) { c.PID = n.PID() }
			}
			htmlPath := filepath.Join(t.TempDir(), "report.html")
			junitPath := filepath.Join(t.TempDir(), "report.xml")
			r := runMain(t, testDeps(t, mem), "leaktest",
				append(append([]string{n.URL()}, args...), "--json", path, "--html", htmlPath, "--junit", junitPath)...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d", r.code, tc.wantCode)
			}
			rep := readJSON[LeakReport](t, path)
			wantSource, wantKind, judged := "scrape "+n.MetricsURL(), "heap", rep.Heap
			if tc.procfs {
				wantSource, wantKind, judged = fmt.Sprintf("procfs pid %d (RSS)", n.PID()), "rss", rep.RSS
			}
			if rep.Source.Guessed == tc.procfs || rep.Source.Description != wantSource || rep.Settings.Kind != wantKind {
				t.Errorf("source %+v kind %s, want %s (guessed %v) judged on %s", rep.Source, rep.Settings.Kind, wantSource, !tc.procfs, wantKind)
			}
			if judged.Samples < 50 || !rep.RSS.Available {
				t.Errorf("judged series %d samples, rss available %v: want about 60 samples", judged.Samples, rep.RSS.Available)
			}
			if a := rep.Activity; a.Established != 5 || a.Sent == 0 || a.Acked != a.Sent {
				t.Errorf("activity %+v, want 5 clients echoing", a)
			}
			if judged.Robust.TooShort || judged.Robust.Buckets != 10 {
				t.Errorf("robust %+v, want a verdict over 10 buckets", judged.Robust)
			}
			h, err := os.ReadFile(htmlPath)
			if err != nil {
				t.Fatal(err)
			}
			checkSelfContained(t, h)
			if !strings.Contains(string(h), "floor trend") || !strings.Contains(string(h), "least squares") {
				t.Errorf("the memory chart lacks the fitted line or the floor")
			}
			j, err := os.ReadFile(junitPath)
			if err != nil {
				t.Fatal(err)
			}
			checkJUnit(t, j, rep.Criteria, rep.Interrupted)
			if (len(rep.ActionItems) > 0) != (tc.wantCode == ExitFail) {
				t.Errorf("action items %+v for exit %d", rep.ActionItems, tc.wantCode)
			}
			tc.check(t, r, rep)
		})
	}
}

func TestLeaktestUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// fixture starts a fixture and returns the server URL.
		fixture bool
		memory  func(t *testing.T, c *leak.Config)
		want    []string
	}{
		{
			name: "target unreachable",
			want: []string{"cannot reach http://127.0.0.1:", "(refused)", "server is up"},
		},
		{
			name:    "memory source unreachable",
			fixture: true,
			memory: func(t *testing.T, c *leak.Config) {
				c.ScrapeURL = "http://" + closedPort(t) + "/metrics"
			},
			want: []string{"cannot read the target's memory from scrape http://127.0.0.1:", "SOAK_MEMORY_SCRAPE_URL", "SOAK_MEMORY_PID", "SOAK_MEMORY_PROCESS_MATCH"},
		},
		{
			name:    "bad memory variable",
			fixture: true,
			memory:  func(t *testing.T, c *leak.Config) { c.ScrapeURL = "ftp://example/metrics" },
			want:    []string{"SOAK_MEMORY_SCRAPE_URL: must be an http(s) URL"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := "http://" + closedPort(t)
			if tc.fixture {
				url = testfixture.Start(t, testfixture.Options{}).URL()
			}
			var mem func(*leak.Config)
			if tc.memory != nil {
				mem = func(c *leak.Config) { tc.memory(t, c) }
			}
			r := runMain(t, testDeps(t, mem), "leaktest", url, "2s", "100ms")
			if r.code != ExitUsage {
				t.Fatalf("exit %d, want %d", r.code, ExitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
		})
	}
}
