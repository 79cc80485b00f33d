package leak

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var fixedNow = func() time.Time { return time.Unix(1_700_000_000, 0) }

const nodeMetrics = `# HELP nodejs_heap_size_used_bytes Process heap size used from Node.js in bytes.
# TYPE nodejs_heap_size_used_bytes gauge
nodejs_heap_size_used_bytes 52428800
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 104857600
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1699990000
# TYPE jvm_memory_used_bytes gauge
jvm_memory_used_bytes{area="heap",id="eden"} 100
jvm_memory_used_bytes{area="heap",id="old"} 200
jvm_memory_used_bytes{area="nonheap",id="meta"} 4000
`

func metricsServer(t *testing.T, body string, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept"), "text/plain") {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestScrape(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		status    int
		cfg       ScrapeConfig
		readings  []Reading
		start     float64
		errSubstr string
	}{
		{"node defaults", nodeMetrics, 200,
			ScrapeConfig{Heap: "nodejs_heap_size_used_bytes", RSS: "process_resident_memory_bytes", Start: "process_start_time_seconds"},
			[]Reading{{Kind: KindHeap, Bytes: 52428800}, {Kind: KindRSS, Bytes: 104857600}}, 1699990000, ""},
		{"jvm selector sums", nodeMetrics, 200, ScrapeConfig{Heap: `jvm_memory_used_bytes{area="heap"}`},
			[]Reading{{Kind: KindHeap, Bytes: 300}}, 0, ""},
		{"missing metric is partial", nodeMetrics, 200,
			ScrapeConfig{Heap: "go_memstats_heap_alloc_bytes", RSS: "process_resident_memory_bytes"},
			[]Reading{{Kind: KindRSS, Bytes: 104857600}}, 0, "metrics not found or not usable: go_memstats_heap_alloc_bytes"},
		{"status", "oops", 503, ScrapeConfig{Heap: "x"}, nil, 0, "unexpected status 503"},
		{"too large", nodeMetrics, 200, ScrapeConfig{Heap: "x", MaxBytes: 100}, nil, 0, "response larger than 100 bytes"},
		{"garbage", "this is {not metrics\n", 200, ScrapeConfig{Heap: "x"}, nil, 0, "parse:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := metricsServer(t, tc.body, tc.status)
			cfg := tc.cfg
			cfg.URL, cfg.Timeout = srv.URL, 2*time.Second
			if cfg.MaxBytes == 0 {
				cfg.MaxBytes = 1 << 20
			}
			s, err := NewScrape(cfg, srv.Client(), fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Sample(context.Background())
			if tc.errSubstr == "" && err != nil || tc.errSubstr != "" && (err == nil || !strings.Contains(err.Error(), tc.errSubstr)) {
				t.Fatalf("err = %v, want %q", err, tc.errSubstr)
			}
			if fmt.Sprint(got.Readings) != fmt.Sprint(tc.readings) || got.StartTime != tc.start {
				t.Errorf("readings %v start %v, want %v %v", got.Readings, got.StartTime, tc.readings, tc.start)
			}
			if len(tc.readings) > 0 && !got.Time.Equal(fixedNow()) {
				t.Errorf("time %v", got.Time)
			}
		})
	}
}

func TestScrapeExactSizeLimit(t *testing.T) {
	srv := metricsServer(t, nodeMetrics, 200)
	s, _ := NewScrape(ScrapeConfig{URL: srv.URL, MaxBytes: int64(len(nodeMetrics)), Heap: "nodejs_heap_size_used_bytes"}, srv.Client(), fixedNow)
	if _, err := s.Sample(context.Background()); err != nil {
		t.Fatalf("a body of exactly MaxBytes must be read: %v", err)
	}
}

func TestScrapeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s, _ := NewScrape(ScrapeConfig{URL: srv.URL, Timeout: 50 * time.Millisecond, MaxBytes: 1 << 20, Heap: "x"}, srv.Client(), fixedNow)
	if _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want a deadline error", err)
	}
}

func TestParseSelector(t *testing.T) {
	tests := map[string]string{
		"process_resident_memory_bytes":        "process_resident_memory_bytes",
		` jvm_memory_used_bytes{area="heap"} `: `jvm_memory_used_bytes{area="heap"}`,
		`m{a="x,y" , b="\"q\""}`:               "",
		"":                                     "",
	}
	for in, want := range tests {
		sel, err := parseSelector(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if want != "" && sel.String() != want {
			t.Errorf("%q: %q", in, sel.String())
		}
	}
	if sel, _ := parseSelector(`m{a="x,y" , b="\"q\""}`); sel.labels["a"] != "x,y" || sel.labels["b"] != `"q"` {
		t.Errorf("labels %v", sel.labels)
	}
	for _, bad := range []string{"1abc", `m{a=x}`, `m{a="x"`, `m{="x"}`, "m-x"} {
		if _, err := parseSelector(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeProc writes a minimal procfs tree with one process.
func fakeProc(t *testing.T, pid int, cmdline string, rssPages int, starttime int) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, fmt.Sprint(pid))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "root", "sys", "fs", "cgroup"), 0o755))
	must(os.WriteFile(filepath.Join(root, "stat"), []byte("cpu  1 2 3 4 5 6 7 8 9 10\nbtime 1699000000\n"), 0o644))
	stat := fmt.Sprintf("%d (node) S 1 %d %d 0 -1 4194560 100 0 0 0 10 5 0 0 20 0 11 0 %d 1000000 %d 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
		pid, pid, pid, starttime, rssPages)
	must(os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644))
	must(os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.ReplaceAll(cmdline, " ", "\x00")+"\x00"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "cgroup"), []byte("0::/kubepods/pod1/ctr\n"), 0o644))
	return root
}

func TestProcfs(t *testing.T) {
	root := fakeProc(t, 4242, "node server.js --port 3000", 25600, 360000)
	pagesize := float64(os.Getpagesize())
	cg := t.TempDir()
	tests := []struct {
		name  string
		setup func()
		cfg   ProcfsConfig
		limit float64
		err   string
	}{
		{"by pid, limit through the process root", func() {
			os.WriteFile(filepath.Join(root, "4242", "root", "sys", "fs", "cgroup", "memory.max"), []byte("536870912\n"), 0o644)
		}, ProcfsConfig{PID: 4242}, 536870912, ""},
		{"by match, unlimited", func() {
			os.WriteFile(filepath.Join(root, "4242", "root", "sys", "fs", "cgroup", "memory.max"), []byte("max\n"), 0o644)
		}, ProcfsConfig{Match: regexp.MustCompile(`node .*server\.js`)}, 0, ""},
		{"limit through the cgroup path", func() {
			os.Remove(filepath.Join(root, "4242", "root", "sys", "fs", "cgroup", "memory.max"))
			os.MkdirAll(filepath.Join(cg, "kubepods", "pod1", "ctr"), 0o755)
			os.WriteFile(filepath.Join(cg, "kubepods", "pod1", "ctr", "memory.max"), []byte("1073741824\n"), 0o644)
		}, ProcfsConfig{PID: 4242}, 1073741824, ""},
		{"no match", func() {}, ProcfsConfig{Match: regexp.MustCompile(`java`)}, 0, `no process matches "java"`},
		{"gone", func() {}, ProcfsConfig{PID: 999}, 0, "pid 999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			cfg := tc.cfg
			cfg.ProcPath, cfg.CgroupPath = root, cg
			p, err := NewProcfs(cfg, fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.Sample(context.Background())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := s.Readings[0]
			// start = btime + starttime/USER_HZ (100).
			if r.Kind != KindRSS || r.Bytes != 25600*pagesize || r.Limit != tc.limit || s.StartTime != 1699000000+3600 {
				t.Errorf("sample %+v", s)
			}
		})
	}
}

func TestSelfAndRealProcfs(t *testing.T) {
	s, err := NewSelf("/proc", "/sys/fs/cgroup", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	smp, err := s.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(smp.Readings) != 2 || smp.Readings[0].Kind != KindHeap || smp.Readings[0].Bytes <= 0 ||
		smp.Readings[1].Kind != KindRSS || smp.Readings[1].Bytes < smp.Readings[0].Bytes/4 || smp.StartTime <= 0 {
		t.Errorf("self sample %+v", smp)
	}
	// The procfs source on the real /proc finds this test by its command
	// line only when it is another process; by PID it reads ours.
	p, err := NewProcfs(ProcfsConfig{ProcPath: "/proc", PID: os.Getpid()}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := p.Sample(context.Background())
	if err != nil || ps.Readings[0].Bytes <= 0 || ps.StartTime != smp.StartTime {
		t.Errorf("procfs sample %+v, %v", ps, err)
	}
}
