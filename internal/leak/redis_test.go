package leak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// redisAdmin is a plain client of the test's redis-server.
func redisAdmin(t *testing.T, addr, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRedisLeak adds keys to a real redis-server at a set rate (per sample,
// on a fake clock): the redis source sees used_memory grow and the detector
// flags the series, while a server left alone is not flagged.
func TestRedisLeak(t *testing.T) {
	for _, tc := range []struct {
		name    string
		perTick int // 1 KiB values added per 5 s sample
		want    detect.Verdict
	}{
		{"keys added", 100, detect.LeakSuspected},
		{"idle", 0, detect.NoLeak},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testfixture.StartRedis(t)
			admin := redisAdmin(t, srv.Addr(), "")
			ctx := context.Background()
			clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			cfg := DefaultConfig()
			cfg.Sources, cfg.RedisURL = []string{SourceRedis}, srv.URL()
			cfg.Windows, cfg.Bucket, cfg.MinBuckets, cfg.MaxBuckets, cfg.Grace = []time.Duration{10 * time.Minute}, 20*time.Second, 10, 30, 0
			cfg.MinGrowth, cfg.MinGrowthWindows, cfg.MinRate, cfg.StepSigma = 1<<20, nil, 0, 0
			src, err := NewRedis(RedisConfig{URL: cfg.RedisURL, Timeout: 2 * time.Second}, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var verdicts []string
			m, err := New(cfg, zap.NewNop(), prometheus.NewRegistry(), WithSamplers(src), WithClock(clock.Now),
				WithVerdictFunc(func(source string, kind Kind, suspected bool, at time.Time) {
					verdicts = append(verdicts, fmt.Sprintf("%s/%s %v", source, kind, suspected))
				}))
			if err != nil {
				t.Fatal(err)
			}
			value := strings.Repeat("x", 1024)
			key := 0
			for range 12 * 11 { // 11 minutes of 5 s samples
				pipe := admin.Pipeline()
				for range tc.perTick {
					pipe.Set(ctx, fmt.Sprintf("k%d", key), value, 0)
					key++
				}
				if tc.perTick > 0 {
					if _, err := pipe.Exec(ctx); err != nil {
						t.Fatal(err)
					}
				}
				m.Tick(ctx)
				clock.Add(5 * time.Second)
			}
			m.Evaluate(clock.Now())
			var heap *SeriesReport
			for _, r := range m.Reports() {
				if r.Source == SourceRedis && r.Kind == KindHeap {
					heap = &r
				}
				if r.Source == SourceRedis && r.Bytes <= 0 {
					t.Errorf("redis %s = %v bytes", r.Kind, r.Bytes)
				}
			}
			if heap == nil {
				t.Fatalf("no redis heap series in %+v", m.Reports())
			}
			t.Logf("redis heap %.1f MB after %d keys: %v (%s)", heap.Bytes/1e6, key, heap.Report.Verdict, heap.Report.Reason)
			if heap.Report.Verdict != tc.want {
				t.Errorf("verdict %v (%s), want %v", heap.Report.Verdict, heap.Report.Reason, tc.want)
			}
			if tc.want == detect.LeakSuspected && (len(verdicts) == 0 || verdicts[0] != "redis/heap true") {
				t.Errorf("verdict changes %v, want redis/heap true first", verdicts)
			}
		})
	}
}

// TestRedisSecrets: the password, from a file, works, and never appears in
// an error, nor in the monitor's logs, whether it is right or wrong.
func TestRedisSecrets(t *testing.T) {
	const password = "pw-Zq81xK-secret"
	srv := testfixture.StartRedis(t)
	if err := redisAdmin(t, srv.Addr(), "").ConfigSet(context.Background(), "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	right, wrong := write("right", password+"\n"), write("wrong", password+"-not\n")
	for _, tc := range []struct {
		name, url, file string
		ok              bool
	}{
		{"right password", srv.URL(), right, true},
		{"wrong password", srv.URL(), wrong, false},
		{"no password", srv.URL(), "", false},
		{"password in a bad url", "redis://:" + password + "@127.0.0.1:%zz", "", false},
		{"wrong password in url", strings.Replace(srv.URL(), "redis://", "redis://:"+password+"-not@", 1), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			cfg := DefaultConfig()
			cfg.Sources, cfg.RedisURL, cfg.RedisPasswordFile = []string{SourceRedis}, tc.url, tc.file
			var errs []error
			if err := cfg.Validate(); err != nil {
				errs = append(errs, err)
			} else {
				m, err := New(cfg, zap.New(core), prometheus.NewRegistry(), WithClock(time.Now))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				m.Tick(ctx)
				cancel()
				m.closeSamplers()
				for _, s := range m.samplers {
					if _, err := s.Sample(context.Background()); err != nil {
						errs = append(errs, err)
					}
				}
				if rep := m.Reports(); tc.ok && len(rep) != 2 {
					t.Errorf("reports %+v, want heap and rss", rep)
				}
			}
			if tc.ok && len(logs.All()) > 1 {
				t.Errorf("logs %v", logs.All())
			}
			if !tc.ok && len(errs) == 0 && logs.FilterMessage("memory sample failed; retrying every interval").Len() == 0 {
				t.Errorf("no error seen")
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), password) {
					t.Errorf("error carries the password: %v", err)
				}
			}
			for _, e := range logs.All() {
				if s := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(s, password) {
					t.Errorf("log carries the password: %s", s)
				}
			}
		})
	}
}

func TestRedisConfig(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		sources   []string
		want      string // substring of the error, "" for none
		tls       bool
	}{
		{"redis", "redis://127.0.0.1:6379/0", nil, "", false},
		{"rediss", "rediss://cache.example:6380", []string{"redis"}, "", true},
		{"required", "", []string{"redis"}, "SOAK_MEMORY_REDIS_URL: required", false},
		{"scheme", "http://127.0.0.1:6379", nil, "SOAK_MEMORY_REDIS_URL: must be a redis://", false},
		{"unix", "unix:///tmp/redis.sock", nil, "SOAK_MEMORY_REDIS_URL: must be a redis://", false},
		{"bad db", "redis://:pw-hidden@127.0.0.1:6379/x", nil, "SOAK_MEMORY_REDIS_URL: redis: invalid database", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.RedisURL, cfg.Sources = tc.url, tc.sources
			err := cfg.Validate()
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Validate = %v, want %q", err, tc.want)
				}
				if strings.Contains(err.Error(), "pw-hidden") {
					t.Errorf("error %q carries the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if srcs := cfg.ResolvedSources(); !strings.Contains(strings.Join(srcs, ","), SourceRedis) {
				t.Errorf("sources %v lack redis", srcs)
			}
			r, err := NewRedis(RedisConfig{URL: tc.url}, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.client.(*redis.Client).Options().TLSConfig != nil; got != tc.tls {
				t.Errorf("TLS = %v, want %v", got, tc.tls)
			}
		})
	}
}
