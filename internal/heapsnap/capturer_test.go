package heapsnap

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/generic-corp/soak-exporter/internal/secret"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// fakeAfter hands each wait of the Capturer to the test, which fires it.
// Every wait gets its own buffered channel: the Capturer abandons a wait
// when a new suspicion wakes it first, and firing an abandoned wait must
// neither block the test nor reach a later one.
type fakeAfter struct {
	asked chan fakeWait
}

type fakeWait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeAfter() *fakeAfter { return &fakeAfter{asked: make(chan fakeWait, 64)} }

func (f *fakeAfter) after(d time.Duration) <-chan time.Time {
	w := fakeWait{d: d, fire: make(chan time.Time, 1)}
	f.asked <- w
	return w.fire
}

// next returns the next wait of exactly d the Capturer asks for, passing
// over waits of other lengths it asked for and abandoned; the test fails
// if none comes.
func (f *fakeAfter) next(t *testing.T, d time.Duration, what string) fakeWait {
	t.Helper()
	for {
		if w := waitFor(t, f.asked, what); w.d == d {
			return w
		}
	}
}

// run starts c.Run and returns a channel receiving once per finished
// episode, and a stop function that waits for Run to return.
func run(t *testing.T, c *Capturer) (<-chan struct{}, func()) {
	t.Helper()
	done := make(chan struct{}, 10)
	c.onEpisode = func() { done <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return done, stop
}

func waitFor[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// TestCapturerNode is the end-to-end test: a Node process started with
// --inspect leaks LeakyCache objects; on a suspicion the Capturer takes two
// snapshots through the inspector and the diff names LeakyCache first with
// the number of objects retained between the captures.
func TestCapturerNode(t *testing.T) {
	node := testfixture.StartScript(t, "leaky-cache.js", []string{"LEAK_PER_SEC=0"}, "--inspect=127.0.0.1:0")
	addr := node.InspectorAddr()
	if addr == "" {
		t.Fatal("no inspector address in the ready line")
	}
	node.Get("/add?n=300", nil) // some LeakyCache before the first capture
	cfg := DefaultConfig()
	cfg.Mode, cfg.Inspector, cfg.Dir = ModeNode, secret.Secret(addr), t.TempDir()
	cfg.MaxBytes = 512 << 20
	fa := newFakeAfter()
	core, logs := observer.New(zap.DebugLevel)
	reg := prometheus.NewRegistry()
	c, err := NewCapturer(cfg, zap.New(core), reg, WithAfter(fa.after),
		WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		t.Fatal(err)
	}
	done, stop := run(t, c)
	c.Suspected("scrape/heap", true, time.Now())
	w := fa.next(t, cfg.Interval, "the wait of SOAK_HEAP_SNAPSHOT_INTERVAL after capture 1")
	const injected = 5000
	node.Get(fmt.Sprintf("/add?n=%d", injected), nil)
	c.Suspected("scrape/rss", true, time.Now()) // a second series: no new episode
	w.fire <- time.Now()
	waitFor(t, done, "the episode")
	stop()

	d := c.LastDiff()
	if d == nil {
		t.Fatal("no diff")
	}
	if d.Format != FormatV8 || len(d.Top) == 0 {
		t.Fatalf("diff = %+v", d)
	}
	top := d.Top[0]
	t.Logf("top grower %+v; total %+d objects %+d bytes", top, d.CountAdded, d.BytesAdded)
	if top.Name != "LeakyCache" {
		t.Errorf("top grower %q, want LeakyCache; diff:\n%s", top.Name, strings.Join(d.Lines(10), "\n"))
	}
	if top.CountAdded != injected || top.CountAfter != injected+300 {
		t.Errorf("LeakyCache count added %d (after %d), want %d (after %d)", top.CountAdded, top.CountAfter, injected, injected+300)
	}
	files, _ := filepath.Glob(filepath.Join(cfg.Dir, "heap-*"))
	var exts []string
	for _, f := range files {
		exts = append(exts, f[strings.LastIndex(f, "-"):])
	}
	slices.Sort(exts)
	if want := []string{"-1.heapsnapshot", "-2.heapsnapshot", "-diff.json", "-diff.txt"}; !slices.Equal(exts, want) {
		t.Errorf("files %v, want endings %v", files, want)
	}
	txt, _ := os.ReadFile(filepath.Join(cfg.Dir, strings.TrimSuffix(filepath.Base(files[0]), "-1.heapsnapshot")+"-diff.txt"))
	if !strings.Contains(string(txt), "LeakyCache") {
		t.Errorf("diff text lacks LeakyCache:\n%s", txt)
	}
	if got := testutil.ToFloat64(c.captures.WithLabelValues(ResultOK)); got != 2 {
		t.Errorf("captures ok = %v, want 2", got)
	}
	if got := testutil.ToFloat64(c.written); got < 1<<20 {
		t.Errorf("bytes written = %v, want a snapshot's worth", got)
	}
	if n := logs.FilterMessage("heap diff: top growers between the two captures").Len(); n != 1 {
		t.Errorf("diff logged %d times, want 1", n)
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), addr) {
			t.Errorf("log %q %v carries the inspector address", e.Message, e.ContextMap())
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if out := fmt.Sprint(fams); strings.Contains(out, addr) || len(fams) != 3 {
		t.Errorf("metrics carry the inspector address, or not 3 families:\n%s", out)
	}
}

// leaker holds what its handler allocates.
type leaker struct {
	mu   sync.Mutex
	kept [][]byte
}

//go:noinline
func (l *leaker) retainChunks(n, size int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.kept = append(l.kept, make([]byte, size))
	}
}

// TestCapturerGo captures a Go server's heap profile twice while its
// handler leaks through retainChunks: the pprof diff names that function.
func TestCapturerGo(t *testing.T) {
	l := &leaker{}
	mux := http.NewServeMux()
	mux.Handle("/debug/pprof/heap", pprof.Handler("heap"))
	mux.HandleFunc("/leak", func(w http.ResponseWriter, r *http.Request) { l.retainChunks(1000, 32<<10) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cfg := DefaultConfig()
	cfg.Mode, cfg.URL, cfg.Dir = ModeGo, srv.URL+"/debug/pprof/heap?gc=1", t.TempDir()
	fa := newFakeAfter()
	c, err := NewCapturer(cfg, zap.NewNop(), prometheus.NewRegistry(), WithAfter(fa.after), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	done, stop := run(t, c)
	c.Suspected("scrape/heap", true, time.Now())
	w := fa.next(t, cfg.Interval, "the wait after capture 1")
	resp, err := srv.Client().Get(srv.URL + "/leak")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	w.fire <- time.Now()
	waitFor(t, done, "the episode")
	stop()
	d := c.LastDiff()
	if d == nil || d.Format != FormatPprof || len(d.Top) == 0 {
		t.Fatalf("diff = %+v", d)
	}
	t.Logf("top grower %+v", d.Top[0])
	if !strings.Contains(d.Top[0].Name, "(*leaker).retainChunks") || !strings.Contains(d.Top[0].Name, "capturer_test.go:") {
		t.Errorf("top grower %q, want (*leaker).retainChunks in capturer_test.go; diff:\n%s", d.Top[0].Name, strings.Join(d.Lines(10), "\n"))
	}
	if b := d.Top[0].BytesAdded; b < 16<<20 || b > 64<<20 {
		t.Errorf("bytes added %d, want about 32 MiB", b)
	}
	l.mu.Lock()
	l.kept = nil
	l.mu.Unlock()
}

// TestCapturerSchedule checks the rate limit, retention and size cap with a
// real HTTP server returning a fixed profile.
func TestCapturerSchedule(t *testing.T) {
	profileBytes, err := os.ReadFile(filepath.Join("testdata", "heap-a.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var big sync.Mutex
	large := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		big.Lock()
		l := large
		big.Unlock()
		if l {
			_, _ = w.Write(make([]byte, 4096))
			return
		}
		_, _ = w.Write(profileBytes)
	}))
	defer srv.Close()
	dir := t.TempDir()
	// A file that is not the Capturer's is never deleted.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Mode, cfg.URL, cfg.Dir, cfg.Keep, cfg.MaxBytes, cfg.Cooldown = ModeGo, srv.URL, dir, 2, 3000, time.Hour
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	fa := newFakeAfter()
	c, err := NewCapturer(cfg, zap.NewNop(), prometheus.NewRegistry(), WithAfter(fa.after), WithClock(clock), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	done, stop := run(t, c)
	defer stop()

	episode := func() {
		t.Helper()
		fa.next(t, cfg.Interval, "the wait after capture 1").fire <- time.Now()
		waitFor(t, done, "the episode")
	}
	// The agent's own memory and Redis's are not the target's heap.
	c.Suspected("self/heap", true, clock())
	c.Suspected("redis/heap", true, clock())
	// Episode 1.
	c.Suspected("scrape/heap", true, clock())
	episode()
	// Still suspected, a second series too: nothing new.
	c.Suspected("procfs/rss", true, clock())
	c.Suspected("scrape/heap", false, clock())
	// Cleared, suspected again 10 min later: waits out the cooldown.
	c.Suspected("procfs/rss", false, clock())
	advance(10 * time.Minute)
	c.Suspected("scrape/heap", true, clock())
	cooldown := fa.next(t, 50*time.Minute, "the cooldown wait of 50m")
	advance(50 * time.Minute)
	cooldown.fire <- time.Now()
	episode()
	for range 2 { // episodes 3 and 4
		c.Suspected("scrape/heap", false, clock())
		advance(time.Hour)
		c.Suspected("scrape/heap", true, clock())
		episode()
	}
	if got := testutil.ToFloat64(c.captures.WithLabelValues(ResultOK)); got != 8 {
		t.Errorf("captures ok = %v, want 8", got)
	}
	names := func() []string {
		ents, _ := os.ReadDir(dir)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	got := names()
	want := []string{
		"heap-20260102T050000Z-1.pb.gz", "heap-20260102T050000Z-2.pb.gz", "heap-20260102T050000Z-diff.json", "heap-20260102T050000Z-diff.txt",
		"heap-20260102T060000Z-1.pb.gz", "heap-20260102T060000Z-2.pb.gz", "heap-20260102T060000Z-diff.json", "heap-20260102T060000Z-diff.txt",
		"notes.txt",
	}
	if !slices.Equal(got, want) {
		t.Errorf("files after 4 episodes with SOAK_HEAP_SNAPSHOT_KEEP=2:\n%v\nwant\n%v", got, want)
	}
	// A capture larger than the cap fails as too_large and leaves no file.
	big.Lock()
	large = true
	big.Unlock()
	c.Suspected("scrape/heap", false, clock())
	advance(time.Hour)
	c.Suspected("scrape/heap", true, clock())
	waitFor(t, done, "the failed episode")
	if got := testutil.ToFloat64(c.captures.WithLabelValues(ResultTooLarge)); got != 1 {
		t.Errorf("captures too_large = %v, want 1", got)
	}
	for _, n := range names() {
		if strings.HasSuffix(n, ".partial") || strings.HasPrefix(n, "heap-20260102T070000Z") {
			t.Errorf("file %s left by a failed capture", n)
		}
	}
}

func TestMetricsLint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode, cfg.URL = ModeGo, "http://127.0.0.1:1/debug/pprof/heap"
	reg := prometheus.NewRegistry()
	if _, err := NewCapturer(cfg, zap.NewNop(), reg); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 5 {
		t.Errorf("%d series (%v), want 5", n, err)
	}
}

func TestConfigValidate(t *testing.T) {
	const bad = "10.1.2.3:9229x"
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // substring of the error, "" for none
	}{
		{"off", func(c *Config) {}, ""},
		{"node", func(c *Config) { c.Mode, c.Inspector = ModeNode, secret.Secret("127.0.0.1:9229") }, ""},
		{"go", func(c *Config) { c.Mode, c.URL = ModeGo, "http://127.0.0.1:6060/debug/pprof/heap" }, ""},
		{"bad mode", func(c *Config) { c.Mode = "java" }, "SOAK_HEAP_SNAPSHOT:"},
		{"node without inspector", func(c *Config) { c.Mode = ModeNode }, "SOAK_HEAP_SNAPSHOT_INSPECTOR: required"},
		{"bad inspector", func(c *Config) { c.Mode, c.Inspector = ModeNode, secret.Secret(bad) }, "SOAK_HEAP_SNAPSHOT_INSPECTOR: port"},
		{"inspector without port", func(c *Config) { c.Mode, c.Inspector = ModeNode, secret.Secret("10.1.2.3") }, "SOAK_HEAP_SNAPSHOT_INSPECTOR: must be host:port"},
		{"url missing", func(c *Config) { c.Mode = ModeURL }, "SOAK_HEAP_SNAPSHOT_URL: required"},
		{"url not http", func(c *Config) { c.Mode, c.URL = ModeGo, "file:///etc/passwd" }, "SOAK_HEAP_SNAPSHOT_URL: must be"},
		{"interval", func(c *Config) { c.Mode, c.URL, c.Interval = ModeGo, "http://h/x", 0 }, "SOAK_HEAP_SNAPSHOT_INTERVAL"},
		{"cooldown", func(c *Config) { c.Mode, c.URL, c.Cooldown = ModeGo, "http://h/x", -1 }, "SOAK_HEAP_SNAPSHOT_COOLDOWN"},
		{"timeout", func(c *Config) { c.Mode, c.URL, c.Timeout = ModeGo, "http://h/x", 0 }, "SOAK_HEAP_SNAPSHOT_TIMEOUT"},
		{"dir", func(c *Config) { c.Mode, c.URL, c.Dir = ModeGo, "http://h/x", "" }, "SOAK_HEAP_SNAPSHOT_DIR"},
		{"max bytes", func(c *Config) { c.Mode, c.URL, c.MaxBytes = ModeGo, "http://h/x", 0 }, "SOAK_HEAP_SNAPSHOT_MAX_BYTES"},
		{"keep", func(c *Config) { c.Mode, c.URL, c.Keep = ModeGo, "http://h/x", 0 }, "SOAK_HEAP_SNAPSHOT_KEEP"},
		{"sources", func(c *Config) { c.Mode, c.URL, c.Sources = ModeGo, "http://h/x", nil }, "SOAK_HEAP_SNAPSHOT_SOURCES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "10.1.2.3") {
				t.Errorf("error %q repeats the inspector address", err)
			}
			if printed := fmt.Sprintf("%v %+v", c, c); strings.Contains(printed, "10.1.2.3") {
				t.Errorf("printed config %s shows the inspector address", printed)
			}
		})
	}
}

// TestTakerErrorsRedacted: failing captures never name the inspector
// address, nor a profile URL's query.
func TestTakerErrorsRedacted(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ln.URL, "http://")
	ln.Close() // a closed port: connection refused
	wrongTarget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Discovery answers; the WebSocket upgrade then fails.
		_, _ = fmt.Fprintf(w, `[{"type":"node","webSocketDebuggerUrl":"ws://%s/5ecret-session"}]`, r.Host)
	}))
	defer wrongTarget.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, tc := range []struct {
		name    string
		taker   Taker
		secrets []string
	}{
		{"inspector refused", InspectorTaker{Addr: addr, Client: client}, []string{addr}},
		{"inspector upgrade fails", InspectorTaker{Addr: strings.TrimPrefix(wrongTarget.URL, "http://"), Client: client},
			[]string{strings.TrimPrefix(wrongTarget.URL, "http://"), "5ecret-session"}},
		{"profile url", HTTPTaker{URL: "http://" + addr + "/debug/pprof/heap?token=t0ken", Client: client}, []string{"t0ken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.taker.Take(context.Background(), io.Discard, 1<<20)
			if err == nil {
				t.Fatal("Take succeeded")
			}
			t.Logf("error: %v", err)
			for _, s := range tc.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q carries %q", err, s)
				}
			}
		})
	}
}
