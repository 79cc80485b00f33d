package oneshot

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestLoadtestFixture runs loadtest end to end against the Node fixture:
// the same engine as the agent, real Socket.IO server, injected faults.
func TestLoadtestFixture(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// fault is applied to the fixture before the run.
		fault func(n *testfixture.Node)
		env   func(*agent.Config)
		// args after the URL.
		args     []string
		wantCode int
		// terminal draws the progress line; serve serves /metrics during
		// the run and scrapes it; jsonStdout writes the JSON to stdout.
		terminal, serve, jsonStdout bool
		check                       func(t *testing.T, n *testfixture.Node, r result, rep LoadReport)
	}{
		{
			name:     "healthy target passes",
			args:     []string{"10", "50", "2", "1"},
			terminal: true,
			serve:    true,
			check: func(t *testing.T, n *testfixture.Node, r result, rep LoadReport) {
				if rep.Connections.Established != 10 || rep.Connections.Failed != 0 {
					t.Errorf("connections: %+v, want 10 established, 0 failed", rep.Connections)
				}
				e := rep.Events
				if e.Lost != 0 || e.Sent == 0 || e.Acked != e.Sent {
					t.Errorf("events: %+v, want every event sent acked", e)
				}
				// 50/s over 2 s: the open-loop schedule sends about 100.
				if e.Sent < 80 || e.Sent > 110 {
					t.Errorf("sent %d events in the measured 2 s at 50/s, want about 100", e.Sent)
				}
				if e.Latency.Count != e.Acked {
					t.Errorf("latency count %d != acked %d: the warmup leaked into the statistics", e.Latency.Count, e.Acked)
				}
				if !rep.AgentMemory.Heap.Available || rep.AgentMemory.Heap.Samples < 2 {
					t.Errorf("agent heap not sampled: %+v", rep.AgentMemory.Heap)
				}
				if !strings.Contains(r.stdout, "Result: PASSED ✅") {
					t.Errorf("report does not say PASSED")
				}
				if !strings.Contains(r.stderr, "\r\033[Kloadtest ") || !strings.Contains(r.stderr, "connected 10/10") {
					t.Errorf("no progress line on the terminal")
				}
			},
		},
		{
			name:       "injected latency fails the latency criterion",
			fault:      func(n *testfixture.Node) { n.SetAckDelay(300 * time.Millisecond) },
			args:       []string{"5", "20", "2", "1"},
			wantCode:   ExitFail,
			jsonStdout: true,
			check: func(t *testing.T, n *testfixture.Node, r result, rep LoadReport) {
				c := criterion(t, rep.Criteria, "event_latency_p95")
				if c.Passed || float64(c.Value) < 0.3 {
					t.Errorf("latency criterion %+v, want failed with p95 >= 300ms", c)
				}
				for _, other := range []string{"connection_success_ratio", "connection_time_p95", "event_loss_ratio"} {
					if c := criterion(t, rep.Criteria, other); !c.Passed {
						t.Errorf("criterion %s failed: %+v", other, c)
					}
				}
				// With --json -, the text report goes to stderr.
				if !strings.Contains(r.stderr, "❌ Event latency p95") || !strings.Contains(r.stderr, "criteria failed: Event latency p95") {
					t.Errorf("report does not name the latency criterion")
				}
				if strings.Contains(r.stderr, "\r") {
					t.Errorf("progress line drawn although stderr is not a terminal")
				}
			},
		},
		{
			name:  "dropped acks give exactly that loss",
			fault: func(n *testfixture.Node) { n.DropNextAcks(7) },
			env:   func(c *agent.Config) { c.AckTimeout = time.Second },
			// No warmup: the drops happen in the measured phase.
			args:     []string{"5", "40", "2", "0"},
			wantCode: ExitFail,
			check: func(t *testing.T, n *testfixture.Node, r result, rep LoadReport) {
				e := rep.Events
				st := n.Stats()
				if e.Lost != 7 || st.AcksDropped != 7 {
					t.Errorf("lost %d, fixture dropped %d; want 7 and 7", e.Lost, st.AcksDropped)
				}
				if e.Sent != uint64(st.EchoesReceived) || e.Acked+e.Lost != e.Sent {
					t.Errorf("sent %d acked %d lost %d, fixture received %d: accounting does not add up", e.Sent, e.Acked, e.Lost, st.EchoesReceived)
				}
				if want := 7 / float64(e.Sent); float64(e.LossRatio) != want {
					t.Errorf("loss ratio %v, want 7/%d = %v", e.LossRatio, e.Sent, want)
				}
				if c := criterion(t, rep.Criteria, "event_loss_ratio"); c.Passed {
					t.Errorf("loss criterion passed: %+v", c)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := testfixture.Start(t, testfixture.Options{})
			if tc.fault != nil {
				tc.fault(n)
			}
			path := jsonPath(t)
			if tc.jsonStdout {
				path = "-"
			}
			args := append([]string{n.URL()}, tc.args...)
			htmlPath := filepath.Join(t.TempDir(), "report.html")
			junitPath := filepath.Join(t.TempDir(), "report.xml")
			args = append(args, "--json", path, "--html", htmlPath, "--junit", junitPath)
			var addr string
			serve := func(c *serveConfig) {}
			if tc.serve {
				addr = closedPort(t)
				serve = func(c *serveConfig) { c.ListenAddress = addr }
			}
			deps := testDeps(t, tc.env, serve)
			deps.IsTerminal = func(io.Writer) bool { return tc.terminal }
			scraped := make(chan string, 1)
			if tc.serve {
				go func() { scraped <- scrapeDuringRun(addr, 10*time.Second) }()
			}
			r := runMain(t, deps, "loadtest", args...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d", r.code, tc.wantCode)
			}
			if tc.serve {
				if m := <-scraped; !strings.Contains(m, "soak_events_acked_total{") || !strings.Contains(m, "soak_clients_connected{") {
					t.Errorf("/metrics served during the run lacks the agent's metrics:\n%.2000s", m)
				}
			}
			var rep LoadReport
			if tc.jsonStdout {
				if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
					t.Fatalf("stdout is not the JSON report: %v", err)
				}
			} else {
				rep = readJSON[LoadReport](t, path)
			}
			if rep.ExitCode != tc.wantCode || rep.Passed != (tc.wantCode == ExitPass) {
				t.Errorf("report says exit %d passed %v", rep.ExitCode, rep.Passed)
			}
			checkFiles(t, rep, htmlPath, junitPath)
			tc.check(t, n, r, rep)
		})
	}
}

// checkFiles checks the HTML and JUnit files of a real run, and the
// timeline they draw from.
func checkFiles(t *testing.T, rep LoadReport, htmlPath, junitPath string) {
	t.Helper()
	h, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, h)
	for _, c := range rep.Criteria {
		if !strings.Contains(string(h), `data-criterion="`+c.Name+`"`) {
			t.Errorf("the HTML report lacks the criterion %s", c.Name)
		}
	}
	j, err := os.ReadFile(junitPath)
	if err != nil {
		t.Fatal(err)
	}
	checkJUnit(t, j, rep.Criteria, rep.Interrupted)
	var sent, acked uint64
	for _, p := range rep.Intervals.Points {
		sent, acked = sent+p.Sent, acked+p.Acked
	}
	// The timeline covers the warmup too: at least the measured events.
	if len(rep.Intervals.Points) == 0 || sent < rep.Events.Sent || acked < rep.Events.Acked {
		t.Errorf("timeline of %d intervals has %d sent, %d acked; the measured phase alone had %d, %d",
			len(rep.Intervals.Points), sent, acked, rep.Events.Sent, rep.Events.Acked)
	}
}

// scrapeDuringRun polls http://addr/metrics until it answers with the
// agent's metrics, or until timeout; it returns the last body.
func scrapeDuringRun(addr string, timeout time.Duration) string {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last string
	soaktest.Poll(timeout, 100*time.Millisecond, func() bool {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		last = string(b)
		return strings.Contains(last, "soak_events_acked_total{")
	})
	return last
}

func TestLoadtestUsageAndUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     func(t *testing.T) []string
		wantCode int
		stream   string // "stdout" or "stderr"
		want     []string
	}{
		{
			name:     "closed port is unreachable at start",
			args:     func(t *testing.T) []string { return []string{"http://" + closedPort(t), "1", "1", "1", "0"} },
			wantCode: ExitUsage,
			stream:   "stderr",
			want:     []string{"cannot reach http://127.0.0.1:", "(refused)", "server is up", "port"},
		},
		{
			name:     "bad connections",
			args:     func(*testing.T) []string { return []string{"http://127.0.0.1:1", "many"} },
			wantCode: ExitUsage,
			stream:   "stderr",
			want:     []string{"connections: want a whole number", "--help"},
		},
		{
			name:     "bad scheme",
			args:     func(*testing.T) []string { return []string{"ftp://127.0.0.1:1"} },
			wantCode: ExitUsage,
			stream:   "stderr",
			want:     []string{"server_url", "scheme must be http, https, ws or wss"},
		},
		{
			name:     "too many arguments",
			args:     func(*testing.T) []string { return []string{"http://127.0.0.1:1", "1", "1", "1", "1", "1"} },
			wantCode: ExitUsage,
			stream:   "stderr",
			want:     []string{"too many arguments"},
		},
		{
			name:     "bad flag value",
			args:     func(*testing.T) []string { return []string{"--max-loss-ratio", "2"} },
			wantCode: ExitUsage,
			stream:   "stderr",
			want:     []string{"max-loss-ratio", "between 0 and 1"},
		},
		{
			name:     "html to stdout is refused",
			args:     func(*testing.T) []string { return []string{"http://127.0.0.1:1", "--html", "-"} },
			wantCode: ExitUsage,
			stream:   "stderr",
			want:     []string{"SOAK_REPORT_HTML", "must be a file name"},
		},
		{
			name: "junit path not writable",
			args: func(t *testing.T) []string {
				return []string{"http://127.0.0.1:1", "--junit", t.TempDir() + "/no/such/dir/r.xml"}
			},
			wantCode: ExitUsage,
			stream:   "stderr",
			want:     []string{"--junit (SOAK_REPORT_JUNIT)", "no such file"},
		},
		{
			name: "report path not writable",
			args: func(t *testing.T) []string {
				return []string{"http://127.0.0.1:1", "--json", t.TempDir() + "/no/such/dir/r.json"}
			},
			wantCode: ExitUsage,
			stream:   "stderr",
			want:     []string{"--json (SOAK_REPORT_JSON)", "no such file or directory"},
		},
		{
			name:     "help",
			args:     func(*testing.T) []string { return []string{"--help"} },
			wantCode: ExitPass,
			stream:   "stdout",
			want:     []string{"Usage: soak-exporter loadtest", "--max-latency-p95", "SOAK_LOADTEST_MAX_LATENCY_P95", "--html FILE", "--junit FILE", "Exit status"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, testDeps(t), "loadtest", tc.args(t)...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d", r.code, tc.wantCode)
			}
			got := r.stdout
			if tc.stream == "stderr" {
				got = r.stderr
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s lacks %q", tc.stream, w)
				}
			}
		})
	}
}

func TestLoadtestUnreachableLeavesNoReport(t *testing.T) {
	t.Parallel()
	path := jsonPath(t)
	r := runMain(t, testDeps(t), "loadtest", "--json", path, "http://"+closedPort(t))
	if r.code != ExitUsage {
		t.Fatalf("exit %d, want %d", r.code, ExitUsage)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("report file left behind by a run that never started: %v", err)
	}
}
