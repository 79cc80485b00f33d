package heapsnap

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/generic-corp/soak-exporter/internal/secret"
)

// Modes of SOAK_HEAP_SNAPSHOT.
const (
	ModeOff  = "off"
	ModeNode = "node"
	ModeGo   = "go"
	ModeURL  = "url"
)

// Config configures captures. Process it with envconfig and the prefix SOAK,
// then call Validate.
type Config struct {
	Mode      string        `envconfig:"HEAP_SNAPSHOT" default:"off" desc:"capture the target's heap when a leak is suspected: off, node (V8 inspector at SOAK_HEAP_SNAPSHOT_INSPECTOR), go (pprof heap profile at SOAK_HEAP_SNAPSHOT_URL) or url (any URL returning a .heapsnapshot or pprof profile); a V8 snapshot pauses the target's event loop"`
	Inspector secret.Secret `envconfig:"HEAP_SNAPSHOT_INSPECTOR" default:"" desc:"host:port of the Node target's inspector (the target runs with --inspect=127.0.0.1:9229); never exposed in metrics"`
	URL       string        `envconfig:"HEAP_SNAPSHOT_URL" default:"" desc:"URL of the heap profile, e.g. http://127.0.0.1:6060/debug/pprof/heap?gc=1 (modes go and url)"`
	Interval  time.Duration `envconfig:"HEAP_SNAPSHOT_INTERVAL" default:"10m" desc:"time between the first and the second capture of a suspicion"`
	Cooldown  time.Duration `envconfig:"HEAP_SNAPSHOT_COOLDOWN" default:"1h" desc:"least time between the first captures of two suspicions"`
	Timeout   time.Duration `envconfig:"HEAP_SNAPSHOT_TIMEOUT" default:"5m" desc:"longest time one capture may take"`
	Dir       string        `envconfig:"HEAP_SNAPSHOT_DIR" default:"/tmp/soak-exporter-heap" desc:"directory of the captures and their diffs (created if missing, mode 0700)"`
	MaxBytes  int64         `envconfig:"HEAP_SNAPSHOT_MAX_BYTES" default:"2147483648" desc:"total size of the files kept in SOAK_HEAP_SNAPSHOT_DIR, bytes; also the largest capture"`
	Keep      int           `envconfig:"HEAP_SNAPSHOT_KEEP" default:"3" desc:"suspicions whose captures are kept (older ones are deleted)"`
	Sources   []string      `envconfig:"HEAP_SNAPSHOT_SOURCES" default:"scrape,procfs" desc:"memory sources (SOAK_MEMORY_SOURCES) whose leak suspicion triggers captures; the agent's own (self) and Redis's are not the target's heap"`
}

// DefaultConfig returns the defaults of the envconfig tags.
func DefaultConfig() Config {
	return Config{
		Mode: ModeOff, Interval: 10 * time.Minute, Cooldown: time.Hour, Timeout: 5 * time.Minute,
		Dir: "/tmp/soak-exporter-heap", MaxBytes: 2 << 30, Keep: 3, Sources: []string{"scrape", "procfs"},
	}
}

// Enabled reports whether captures are on.
func (c Config) Enabled() bool { return c.Mode != ModeOff && c.Mode != "" }

// Validate checks the configuration; errors name the environment variable.
// The inspector address is never repeated in an error.
func (c Config) Validate() error {
	for _, src := range c.Sources {
		switch src {
		case "scrape", "procfs", "self", "redis": // leak.SourceScrape, ...: heapsnap does not import leak
		default:
			return fmt.Errorf("SOAK_HEAP_SNAPSHOT_SOURCES: unknown source %q (want scrape, procfs, self or redis)", src)
		}
	}
	switch c.Mode {
	case ModeOff, "":
		return nil
	case ModeNode:
		host, port, err := net.SplitHostPort(c.Inspector.Reveal())
		if c.Inspector == "" {
			return fmt.Errorf("SOAK_HEAP_SNAPSHOT_INSPECTOR: required when SOAK_HEAP_SNAPSHOT is node")
		}
		if err != nil || host == "" {
			return fmt.Errorf("SOAK_HEAP_SNAPSHOT_INSPECTOR: must be host:port")
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("SOAK_HEAP_SNAPSHOT_INSPECTOR: port must be 1-65535")
		}
	case ModeGo, ModeURL:
		if c.URL == "" {
			return fmt.Errorf("SOAK_HEAP_SNAPSHOT_URL: required when SOAK_HEAP_SNAPSHOT is %s", c.Mode)
		}
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("SOAK_HEAP_SNAPSHOT_URL: must be an http(s) URL")
		}
	default:
		return fmt.Errorf("SOAK_HEAP_SNAPSHOT: must be off, node, go or url, got %q", c.Mode)
	}
	if c.Interval <= 0 {
		return fmt.Errorf("SOAK_HEAP_SNAPSHOT_INTERVAL: must be > 0, got %q", c.Interval)
	}
	if c.Cooldown < 0 {
		return fmt.Errorf("SOAK_HEAP_SNAPSHOT_COOLDOWN: must be >= 0, got %q", c.Cooldown)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("SOAK_HEAP_SNAPSHOT_TIMEOUT: must be > 0, got %q", c.Timeout)
	}
	if c.Dir == "" {
		return fmt.Errorf("SOAK_HEAP_SNAPSHOT_DIR: must not be empty")
	}
	if c.MaxBytes <= 0 {
		return fmt.Errorf("SOAK_HEAP_SNAPSHOT_MAX_BYTES: must be > 0, got %d", c.MaxBytes)
	}
	if len(c.Sources) == 0 {
		return fmt.Errorf("SOAK_HEAP_SNAPSHOT_SOURCES: must name at least one source")
	}
	if c.Keep < 1 {
		return fmt.Errorf("SOAK_HEAP_SNAPSHOT_KEEP: must be >= 1, got %d", c.Keep)
	}
	return nil
}
