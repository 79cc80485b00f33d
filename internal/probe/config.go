package probe

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Config is how to reach the target(s), read from SOAK_* variables. Token
// fields are secrets: String never prints them.
type Config struct {
	TargetURL     string            `envconfig:"TARGET_URL" desc:"Socket.IO server URL(s), comma-separated, one per server replica; the URL path is the namespace (http://host:3000/admin). Empty: soak the built-in demo target."`
	TargetName    string            `envconfig:"TARGET_NAME" desc:"Short name(s) for the target label, comma-separated, one per URL. Default: host:port plus the namespace."`
	Driver        string            `envconfig:"DRIVER" default:"native" desc:"Client driver: native (our Engine.IO v4 client) or zishang520 (the zishang520 library)."`
	SocketIOPath  string            `envconfig:"SOCKETIO_PATH" default:"/socket.io/" desc:"Engine.IO request path on the server."`
	AuthToken     string            `envconfig:"AUTH_TOKEN" desc:"Secret. Sent as {\"token\": ...} in the namespace CONNECT auth payload. Never logged or exported."`
	AuthTokenFile string            `envconfig:"AUTH_TOKEN_FILE" desc:"File holding the auth token (trailing newline trimmed); read at start."`
	AuthJSON      string            `envconfig:"AUTH_JSON" desc:"Secret. A JSON object sent as the CONNECT auth payload (the token, if any, is added as \"token\")."`
	Headers       map[string]string `envconfig:"HEADERS" desc:"Extra handshake headers, as Name:value,Name2:value2. Values are treated as secrets."`
	Query         map[string]string `envconfig:"QUERY" desc:"Extra handshake query parameters, as key:value,key2:value2."`
	TLSCAFile     string            `envconfig:"TLS_CA_FILE" desc:"PEM file of CA certificates to trust for https/wss targets (added to the system pool)."`
	TLSInsecure   bool              `envconfig:"TLS_INSECURE_SKIP_VERIFY" default:"false" desc:"Do not verify the target's certificate. For tests only; logged as a warning."`
	MaxFrameBytes int64             `envconfig:"MAX_FRAME_BYTES" default:"1048576" desc:"Largest WebSocket message accepted from the server; larger ones are a parse error."`
}

// Validate checks the configuration without touching files; Targets reads
// them. Errors name the variable.
func (c Config) Validate() error {
	if c.Driver != "native" && c.Driver != "zishang520" {
		return fmt.Errorf("SOAK_DRIVER: must be native or zishang520, got %q", c.Driver)
	}
	urls := splitList(c.TargetURL)
	for _, raw := range urls {
		if _, err := parseTargetURL(raw); err != nil {
			return fmt.Errorf("SOAK_TARGET_URL: %w", err)
		}
	}
	if names := splitList(c.TargetName); len(names) > 0 && len(names) != len(urls) {
		return fmt.Errorf("SOAK_TARGET_NAME: %d names for %d URLs in SOAK_TARGET_URL", len(names), len(urls))
	}
	if c.SocketIOPath == "" || c.SocketIOPath[0] != '/' {
		return fmt.Errorf("SOAK_SOCKETIO_PATH: must start with /, got %q", c.SocketIOPath)
	}
	if c.AuthToken != "" && c.AuthTokenFile != "" {
		return errors.New("SOAK_AUTH_TOKEN_FILE: set either SOAK_AUTH_TOKEN or SOAK_AUTH_TOKEN_FILE, not both")
	}
	if c.AuthJSON != "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.AuthJSON), &obj); err != nil {
			// The value is a secret: say what is wrong, not what it is.
			return errors.New("SOAK_AUTH_JSON: must be a JSON object")
		}
	}
	if c.MaxFrameBytes < 1024 {
		return fmt.Errorf("SOAK_MAX_FRAME_BYTES: must be >= 1024, got %d", c.MaxFrameBytes)
	}
	return nil
}

// Targets builds one Target per configured URL, reading the token and CA
// files. With no URL configured it returns nil (the caller supplies a demo
// target).
func (c Config) Targets() ([]*Target, error) {
	// Read the files first, so that a bad file stops the program even when
	// it soaks the demo target.
	auth, err := c.authPayload()
	if err != nil {
		return nil, err
	}
	tlsConf, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	urls := splitList(c.TargetURL)
	if len(urls) == 0 {
		return nil, nil
	}
	names := splitList(c.TargetName)
	seen := map[string]bool{}
	var out []*Target
	for i, raw := range urls {
		t, err := c.target(raw, auth, tlsConf)
		if err != nil {
			return nil, fmt.Errorf("SOAK_TARGET_URL: %w", err)
		}
		if len(names) > 0 {
			t.Name = names[i]
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("SOAK_TARGET_NAME: duplicate target name %q (name the targets apart)", t.Name)
		}
		seen[t.Name] = true
		out = append(out, t)
	}
	return out, nil
}

// Target builds the Target for one URL with this configuration's options.
func (c Config) Target(raw string) (*Target, error) {
	auth, err := c.authPayload()
	if err != nil {
		return nil, err
	}
	tlsConf, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	return c.target(raw, auth, tlsConf)
}

func (c Config) target(raw string, auth json.RawMessage, tlsConf *tls.Config) (*Target, error) {
	u, err := parseTargetURL(raw)
	if err != nil {
		return nil, err
	}
	nsp := u.Path
	if nsp == "" {
		nsp = "/"
	}
	base := *u
	base.Path, base.RawPath = "", ""
	q := url.Values{}
	for k, v := range u.Query() {
		q[k] = v
	}
	for k, v := range c.Query {
		q.Set(k, v)
	}
	base.RawQuery = ""
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	name := u.Host
	if nsp != "/" {
		name += nsp
	}
	return &Target{
		Name:          name,
		URL:           &base,
		Path:          c.SocketIOPath,
		Namespace:     nsp,
		Auth:          auth,
		Header:        h,
		Query:         q,
		TLS:           tlsConf,
		MaxFrameBytes: c.MaxFrameBytes,
	}, nil
}

func (c Config) authPayload() (json.RawMessage, error) {
	token := c.AuthToken
	if c.AuthTokenFile != "" {
		b, err := os.ReadFile(c.AuthTokenFile)
		if err != nil {
			return nil, fmt.Errorf("SOAK_AUTH_TOKEN_FILE: %w", err)
		}
		token = strings.TrimRight(string(b), "\r\n")
		if token == "" {
			return nil, fmt.Errorf("SOAK_AUTH_TOKEN_FILE: %s is empty", c.AuthTokenFile)
		}
	}
	obj := map[string]json.RawMessage{}
	if c.AuthJSON != "" {
		if err := json.Unmarshal([]byte(c.AuthJSON), &obj); err != nil {
			return nil, errors.New("SOAK_AUTH_JSON: must be a JSON object")
		}
	}
	if token != "" {
		b, _ := json.Marshal(token)
		obj["token"] = b
	}
	if len(obj) == 0 {
		return nil, nil
	}
	return json.Marshal(obj)
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLSCAFile == "" && !c.TLSInsecure {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecure} //nolint:gosec // explicit opt-in, warned about
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("SOAK_TLS_CA_FILE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !bytes.Contains(pem, []byte("-----BEGIN CERTIFICATE-----")) || !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("SOAK_TLS_CA_FILE: %s holds no PEM certificate", c.TLSCAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// parseTargetURL accepts http, https, ws and wss URLs with a host.
func parseTargetURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, which may hold a secret
		}
		return nil, fmt.Errorf("invalid URL %q: %w", redactURL(raw), err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return nil, fmt.Errorf("URL %q: scheme must be http, https, ws or wss", redactURL(raw))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("URL %q has no host", redactURL(raw))
	}
	if u.User != nil {
		return nil, fmt.Errorf("URL %q: user info is not supported (use SOAK_HEADERS or SOAK_AUTH_TOKEN)", redactURL(raw))
	}
	return u, nil
}

// redactURL drops user info and the query (which may carry tokens) from a URL
// for error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?@"); i >= 0 {
			return raw[:i] + "..."
		}
		return raw
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	return u.String()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
