package oneshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/logging"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/target"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testDeps returns Deps with the native driver, no terminal, and the
// variables' defaults (nothing is read from the test's environment),
// changed by the mutators: funcs taking a pointer to one of the Configs.
func testDeps(t *testing.T, mutators ...any) Deps {
	t.Helper()
	return Deps{
		NewDriver: func(_ target.Config, log *zap.Logger) probe.Driver {
			return native.New(native.Options{Logger: log})
		},
		LoadEnv: func(s any) error {
			// A prefix nobody sets: only the defaults apply.
			if err := envconfig.Process("soak_oneshot_test_defaults", s); err != nil {
				return err
			}
			if c, ok := s.(*logging.Config); ok {
				c.Level, c.Format = "warn", "json"
			}
			for _, m := range mutators {
				apply(m, s)
			}
			return nil
		},
		Version:    "test",
		IsTerminal: func(io.Writer) bool { return false },
	}
}

// apply calls m (a func(*T)) with part if part is a *T.
func apply(m, part any) {
	switch f := m.(type) {
	case func(*agent.Config):
		if c, ok := part.(*agent.Config); ok && f != nil {
			f(c)
		}
	case func(*target.Config):
		if c, ok := part.(*target.Config); ok && f != nil {
			f(c)
		}
	case func(*Config):
		if c, ok := part.(*Config); ok && f != nil {
			f(c)
		}
	case func(*MemoryConfig):
		if c, ok := part.(*MemoryConfig); ok && f != nil {
			f(c)
		}
	case func(*serveConfig):
		if c, ok := part.(*serveConfig); ok && f != nil {
			f(c)
		}
	case nil:
	default:
		panic(fmt.Sprintf("testDeps: unsupported mutator %T", m))
	}
}

// result is one Main run's outcome.
type result struct {
	code           int
	stdout, stderr string
}

func runMain(t *testing.T, deps Deps, command string, args ...string) result {
	t.Helper()
	var out, errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Main(ctx, command, args, deps, &out, &errb)
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	t.Logf("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", command, strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func readJSON[T any](t *testing.T, path string) T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v\n%s", path, err, b)
	}
	return v
}

func jsonPath(t *testing.T) string { return filepath.Join(t.TempDir(), "report.json") }

func criterion(t *testing.T, cs []Criterion, name string) Criterion {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no criterion %q in %+v", name, cs)
	return Criterion{}
}
