package web_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/health"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
	"github.com/generic-corp/soak-exporter/internal/web"
)

// chromiumPath finds Debian's chromium; under CI=true a missing browser fails
// the test (make deps installs it), elsewhere it skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found (install it: scripts/install-debian-packages.sh chromium): %v", err)
		}
		t.Skipf("chromium not found: %v", err)
	}
	return p
}

// chromium runs headless Chromium once on url with extra flags.
func chromium(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
	}
	return stdout.Bytes()
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("SOAK_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sentCounter counts the requests sent, so the test can close a window second
// only once traffic has flowed into it.
type sentCounter struct{ n atomic.Int64 }

func (c *sentCounter) Connection(string, pool.ConnEvent, string, time.Duration) {}
func (c *sentCounter) Event(_, _, _ string, o pool.Outcome, n int, _ time.Duration) {
	if o == pool.OutcomeSent {
		c.n.Add(int64(n))
	}
}

// badRows lists the figure rows of the DOM with a bad cell in the last-minute
// column (recent), and those bad only in the ten-minute or since-start
// columns (older), which keep whatever the start-up saw on a loaded machine:
// the caller reports those without asserting them.
func badRows(dom string) (recent, older []string) {
	row := regexp.MustCompile(`<tr><td>([^<]*)</td>((?:<td class="\w+">[^<]*</td>)+)</tr>`)
	cell := regexp.MustCompile(`<td class="(\w+)">`)
	for _, m := range row.FindAllStringSubmatch(dom, -1) {
		cs := cell.FindAllStringSubmatch(m[2], -1)
		for i, c := range cs {
			if c[1] != "bad" {
				continue
			}
			if i == 0 {
				recent = append(recent, m[1])
			} else {
				older = append(older, m[1])
			}
			break
		}
	}
	if strings.Contains(dom, `clients bad`) {
		recent = append(recent, "clients")
	}
	return recent, older
}

type memView []web.MemorySeries

func (m memView) Series() []web.MemorySeries { return m }

// TestBrowserLandingPage renders the landing page in headless Chromium with
// the agent running on the Node fixture, healthy and then faulty (400 ms ack
// delay, every 10th ack dropped), checks the DOM for the figures and the
// alert colouring and keeps screenshots.
func TestBrowserLandingPage(t *testing.T) {
	bin := chromiumPath(t)
	node := testfixture.Start(t, testfixture.Options{})
	tg, err := target.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}.Target(node.URL())
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	cfg.PoolConfig = pool.Config{Clients: 5, ConnectRate: 100, ConnectTimeout: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second}
	cfg.EventName, cfg.EventRate, cfg.PayloadBytes, cfg.AckTimeout = "echo", 500, 64, time.Second
	cfg.FanoutConfig.Event, cfg.FanoutConfig.Timeout, cfg.FanoutConfig.IDField = "publish", time.Second, "id"
	cfg.PushConfig.SeqField = "seq"

	sent := &sentCounter{}
	clk := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	var ag *agent.Agent
	h := health.New(health.Config{}, health.Options{Logger: zap.NewNop(), Now: clk.Now, Pools: func() []health.PoolState {
		var out []health.PoolState
		for _, p := range ag.Pools() {
			e := p.LastConnectError()
			out = append(out, health.PoolState{Target: p.Target().Name, Connected: p.Connected(), Desired: p.Desired(),
				LastConnectReason: e.Reason, LastConnectMessage: e.Message})
		}
		return out
	}})
	reg := prometheus.NewRegistry()
	ag, err = agent.New(cfg, agent.Options{Driver: native.New(native.Options{}), Targets: []*probe.Target{tg},
		Registerer: reg, Logger: zap.NewNop(), Observer: health.Tee(h, sent)})
	if err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	mem := memView{{Source: "fixture", Kind: "heap", Bytes: 48 << 20, Slope: 0, Verdict: "no leak",
		Reason: "slope within the noise floor", Points: []web.MemoryPoint{
			{Time: start.Add(-2 * time.Hour), Bytes: 47 << 20}, {Time: start.Add(-time.Hour), Bytes: 49 << 20}, {Time: start, Bytes: 48 << 20}}}}
	srv := web.New(web.Config{ListenAddress: "127.0.0.1:0"}, zap.NewNop(), web.Options{Gatherer: reg,
		Page: web.Page{Version: "test", Mode: "node fixture", Driver: "native"}, Health: h, Memory: mem, Now: clk.Now})
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- ag.Run(ctx) }()
	go func() { defer wg.Done(); errs <- srv.Run(ctx, ln) }()
	defer func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("run: %v", err)
			}
		}
	}()
	url := "http://" + ln.Addr().String() + "/"
	// step closes n window seconds, each once at least 5 more requests were
	// sent, so every second of the window holds real traffic.
	step := func(n int) {
		for i := 0; i < n; i++ {
			from := sent.n.Load()
			soaktest.WaitFor(t, "traffic", func() bool { return sent.n.Load() >= from+5 })
			clk.Add(time.Second)
			h.Step()
		}
	}
	dir := artifactDir(t)
	render := func(name string) string {
		dom := string(chromium(t, bin, url, "--dump-dom"))
		if err := os.WriteFile(filepath.Join(dir, "landing-"+name+".html"), []byte(dom), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"1280,900", "390,844"} {
			file := filepath.Join(dir, "landing-"+name+"-"+strings.Split(w, ",")[0]+".png")
			chromium(t, bin, url, "--hide-scrollbars", "--window-size="+w, "--screenshot="+file)
			if st, err := os.Stat(file); err != nil || st.Size() == 0 {
				t.Errorf("screenshot %s: %v", file, err)
			}
		}
		t.Logf("artefacts in %s", dir)
		return dom
	}
	cellOf := func(dom, row string) string {
		m := regexp.MustCompile(`<td>` + regexp.QuoteMeta(row) + `</td><td class="(\w+)">([^<]*)</td>`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("row %q not in the DOM", row)
		}
		return m[1] + " " + m[2]
	}

	soaktest.WaitFor(t, "a full pool", func() bool { return ag.Connected() == 5 })
	// The healthy render needs a last minute that is within the thresholds;
	// on a loaded machine (-race, shared cores) the first seconds may not be.
	soaktest.WaitFor(t, "a healthy last minute", func() bool {
		step(1)
		v := h.Views()[0]
		return v.Minute.Answered > 100 && v.Minute.Lost == 0 && v.Minute.P95 < 0.2 && len(v.Conditions) == 0 &&
			!(v.Minute.ConnectP95 > 0.5) && !(v.TenMinutes.ConnectP95 > 0.5)
	})

	t.Run("healthy", func(t *testing.T) {
		dom := render("healthy")
		for _, want := range []string{"No alert condition holds now.", `class="clients good">5 / 5`} {
			if !strings.Contains(dom, want) {
				t.Errorf("DOM lacks %q", want)
			}
		}
		recent, older := badRows(dom)
		if len(recent) > 0 {
			t.Errorf("healthy page has bad last-minute figures: %q", recent)
		}
		if len(older) > 0 {
			t.Logf("figures bad over 10 min or since start (start-up on a loaded machine): %q", older)
		}
		if c := cellOf(dom, "latency p95"); !strings.HasPrefix(c, "good ") {
			t.Errorf("latency p95 cell: %q", c)
		}
	})

	node.SetAckDelay(400 * time.Millisecond)
	node.DropEveryNth(10)
	// Let the healthy seconds roll out of the last minute, then wait for
	// slow answers and losses in it.
	step(61)
	soaktest.WaitFor(t, "slow answers and losses", func() bool {
		step(1)
		m := h.Views()[0].Minute
		return m.Lost > 10 && m.P50 > 0.3
	})
	step(180) // the conditions hold for three minutes
	t.Run("faulty", func(t *testing.T) {
		dom := render("faulty")
		for _, re := range []string{
			`p95 latency (4|5|6|7|8|9)\d\d ms &gt; 200 ms for ([3-9]|\d\d) min`,
			`loss \d+(\.\d+)?% \(\d+ of \d+\) &gt; 0% for ([3-9]|\d\d) min`,
		} {
			if !regexp.MustCompile(re).MatchString(dom) {
				t.Errorf("DOM lacks %s; conditions: %q", re, regexp.MustCompile(`<li class="condition bad">[^<]*`).FindAllString(dom, -1))
			}
		}
		for _, row := range []string{"latency p95", "lost"} {
			if c := cellOf(dom, row); !strings.HasPrefix(c, "bad ") {
				t.Errorf("%s cell: %q, want bad", row, c)
			}
		}
		if c := cellOf(dom, "latency p50"); !regexp.MustCompile(`^na (4|5)\d\d ms$`).MatchString(c) {
			t.Errorf("latency p50 cell %q, want 400-599 ms (a 400 ms ack delay)", c)
		}
	})
	node.ClearFaults()
}
