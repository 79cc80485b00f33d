package leak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/secret"
	"github.com/redis/go-redis/v9"
)

// SourceRedis is the source of a Redis server's memory (INFO memory), e.g.
// the one behind the Socket.IO Redis adapter.
const SourceRedis = "redis"

// RedisConfig configures the redis source.
type RedisConfig struct {
	// URL is redis://[user@]host:port[/db] or rediss:// (TLS). A password
	// may be in the URL but belongs in PasswordFile.
	URL string
	// PasswordFile holds the password (trailing newline trimmed); empty:
	// none, or the URL's.
	PasswordFile string
	// Timeout bounds one sample.
	Timeout time.Duration
}

// redisInfo is the part of a Redis client the source uses.
type redisInfo interface {
	Info(ctx context.Context, section ...string) *redis.StringCmd
	Close() error
}

// Redis samples a Redis server's used_memory (heap) and used_memory_rss
// (rss) with INFO. The password never appears in its errors.
type Redis struct {
	client redisInfo
	now    func() time.Time
	secret string
}

// parseRedisURL parses a redis:// or rediss:// URL; its errors never repeat
// the URL (it may hold a password).
func parseRedisURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, errors.New("must be a redis:// or rediss:// URL with a host")
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, errors.New("not a valid URL")
		}
		return nil, err
	}
	return opts, nil
}

// validateRedis checks the redis source's settings (part of
// Config.Validate); errors never repeat the URL.
func (c Config) validateRedis(srcs []string) error {
	if !slices.Contains(srcs, SourceRedis) {
		return nil
	}
	if c.RedisURL == "" {
		return errors.New("SOAK_MEMORY_REDIS_URL: required when SOAK_MEMORY_SOURCES includes redis")
	}
	if _, err := parseRedisURL(c.RedisURL); err != nil {
		return fmt.Errorf("SOAK_MEMORY_REDIS_URL: %w", err)
	}
	if c.RedisPasswordFile != "" {
		if _, err := secret.ReadFile("SOAK_MEMORY_REDIS_PASSWORD_FILE", c.RedisPasswordFile); err != nil {
			return err
		}
	}
	return nil
}

// NewRedis returns the redis source. It reads the password file once.
func NewRedis(cfg RedisConfig, now func() time.Time) (*Redis, error) {
	opts, err := parseRedisURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if cfg.PasswordFile != "" {
		b, err := secret.ReadFile("SOAK_MEMORY_REDIS_PASSWORD_FILE", cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts.Password = strings.TrimRight(string(b), "\r\n")
	}
	if cfg.Timeout > 0 {
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout
	}
	opts.PoolSize, opts.MaxIdleConns, opts.MaxRetries = 1, 1, 0
	opts.DisableIdentity = true // no CLIENT SETINFO: works on older servers and proxies
	return &Redis{client: redis.NewClient(opts), now: now, secret: opts.Password}, nil
}

// Source returns "redis".
func (r *Redis) Source() string { return SourceRedis }

// Close closes the client's connections.
func (r *Redis) Close() error { return r.client.Close() }

// redact removes the password from an error's text, should a client or
// server error ever carry it.
func (r *Redis) redact(err error) error {
	if r.secret == "" || !strings.Contains(err.Error(), r.secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), r.secret, "[redacted]"))
}

// Sample runs INFO once: used_memory as heap (with maxmemory as its limit
// when set), used_memory_rss as rss, and the server's start time from
// server_time_usec and uptime_in_seconds.
func (r *Redis) Sample(ctx context.Context) (Sample, error) {
	t := r.now()
	info, err := r.client.Info(ctx, "server", "memory").Result()
	if err != nil {
		return Sample{}, fmt.Errorf("redis info: %w", r.redact(err))
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			fields[k] = v
		}
	}
	num := func(k string) (float64, bool) {
		v, err := strconv.ParseFloat(fields[k], 64)
		return v, err == nil && v >= 0
	}
	out := Sample{Time: t}
	var missing []string
	if v, ok := num("used_memory"); ok {
		lim, _ := num("maxmemory")
		out.Readings = append(out.Readings, Reading{Kind: KindHeap, Bytes: v, Limit: lim})
	} else {
		missing = append(missing, "used_memory")
	}
	if v, ok := num("used_memory_rss"); ok {
		out.Readings = append(out.Readings, Reading{Kind: KindRSS, Bytes: v})
	} else {
		missing = append(missing, "used_memory_rss")
	}
	// The start time by the server's own clock: whole seconds, so that the
	// rounding of uptime_in_seconds moves it by at most 1 s.
	if up, ok := num("uptime_in_seconds"); ok {
		if us, ok := num("server_time_usec"); ok {
			out.StartTime = math.Floor(us/1e6 - up)
		}
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("redis info: fields not found: %s", strings.Join(missing, ", "))
	}
	return out, nil
}
