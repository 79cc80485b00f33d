// Package target turns the SOAK_ target variables (URLs, names, path,
// credentials, TLS, frame limit) into the probe.Target values the drivers
// dial. It reads the token, CA and key files at start.
package target

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/secret"
)

// Config is how to reach the target(s), read from SOAK_* variables. Its
// secret fields have the type Secret (package secret), which fmt, encoding/json and zap's
// reflection never print.
type Config struct {
	TargetURL     string                   `envconfig:"TARGET_URL" desc:"Socket.IO server URL(s), comma-separated, one per server replica; the URL path is the namespace (http://host:3000/admin). Empty: soak the built-in demo target."`
	TargetName    string                   `envconfig:"TARGET_NAME" desc:"Short name(s) for the target label, comma-separated, one per URL. Default: host:port plus the namespace."`
	Driver        string                   `envconfig:"DRIVER" default:"native" desc:"Client driver: native (our Engine.IO v4 client) or zishang520 (the zishang520 library)."`
	EventLoop     bool                     `envconfig:"NATIVE_EVENT_LOOP" default:"true" desc:"Native driver on Linux: serve ws:// connections from a few epoll loops (no goroutine or buffer per idle connection). false: a reader goroutine per connection, as before. wss:// and long-polling always use a goroutine per connection."`
	SocketIOPath  string                   `envconfig:"SOCKETIO_PATH" default:"/socket.io/" desc:"Engine.IO request path on the server."`
	AuthToken     secret.Secret            `envconfig:"AUTH_TOKEN" desc:"secret.Secret. Sent as {\"token\": ...} in the namespace CONNECT auth payload. Never logged or exported."`
	AuthTokenFile string                   `envconfig:"AUTH_TOKEN_FILE" desc:"File holding the auth token (trailing newline trimmed); read at start."`
	AuthJSON      secret.Secret            `envconfig:"AUTH_JSON" desc:"secret.Secret. A JSON object sent as the CONNECT auth payload (the token, if any, is added as \"token\")."`
	Headers       map[string]secret.Secret `envconfig:"HEADERS" desc:"Extra handshake headers, as Name:value,Name2:value2. Values are treated as secrets."`
	Query         map[string]secret.Secret `envconfig:"QUERY" desc:"Extra handshake query parameters, as key:value,key2:value2. Values are treated as secrets."`
	TLSCAFile     string                   `envconfig:"TLS_CA_FILE" desc:"PEM file of CA certificates to trust for https/wss targets (added to the system pool)."`
	TLSCertFile   string                   `envconfig:"TLS_CERT_FILE" desc:"PEM client certificate for https/wss targets that require one (mTLS); needs SOAK_TLS_KEY_FILE."`
	TLSKeyFile    string                   `envconfig:"TLS_KEY_FILE" desc:"PEM private key of SOAK_TLS_CERT_FILE; read at start, never logged."`
	TLSServerName string                   `envconfig:"TLS_SERVER_NAME" desc:"Host name to verify the target's certificate against (and to send as SNI) instead of the URL's host."`
	TLSInsecure   bool                     `envconfig:"TLS_INSECURE_SKIP_VERIFY" default:"false" desc:"Do not verify the target's certificate. For tests only; logged as a warning."`
	MaxFrameBytes int64                    `envconfig:"MAX_FRAME_BYTES" default:"1048576" desc:"Largest WebSocket message (or long-polling response) accepted from the server; larger ones are a parse error."`
	SourceAddrs   string                   `envconfig:"SOURCE_ADDRESSES" desc:"Local addresses the clients connect from, spread over the clients in turn: IPs and ranges, comma-separated (127.0.0.2-127.0.0.9; pod IPs in a cluster). Each gives about 28,000 connections to one server address (the ephemeral port range). Empty: the system chooses one. Native driver only; checked at start."`
	// Transports defaults (when empty) to socket.io-client's own default,
	// long-polling then upgrade, because that is what users' browsers do and
	// what tests the proxy's sticky sessions; the zishang520 driver speaks
	// WebSocket only, so its default is websocket.
	Parser     string `envconfig:"PARSER" default:"json" desc:"Socket.IO parser of the server: json (the default parser) or msgpack (socket.io-msgpack-parser). Native driver only for msgpack."`
	Transports string `envconfig:"TRANSPORTS" desc:"Engine.IO transports, as socket.io-client's transports option: polling,websocket (long-polling handshake, then upgrade to WebSocket; tests sticky sessions and Upgrade forwarding like a browser), websocket (WebSocket only; needs no sticky sessions) or polling (long-polling only, never upgrades). Default: polling,websocket with the native driver, websocket with zishang520 (which supports only websocket)."`
}

// Transport lists accepted in SOAK_TRANSPORTS.
const (
	transportsWebSocket = "websocket"
	transportsPolling   = "polling"
	transportsUpgrade   = "polling,websocket"
)

// transports returns the driver's transport list for SOAK_TRANSPORTS.
func (c Config) transports() []string {
	v := strings.ReplaceAll(c.Transports, " ", "")
	if v == "" {
		v = transportsUpgrade
		if c.Driver == "zishang520" {
			v = transportsWebSocket
		}
	}
	return strings.Split(v, ",")
}

// Validate checks the configuration without touching files; Targets reads
// them. Errors name the variable.
func (c Config) Validate() error {
	if c.Driver != "native" && c.Driver != "zishang520" {
		return fmt.Errorf("SOAK_DRIVER: must be native or zishang520, got %q", c.Driver)
	}
	switch {
	case c.Parser != "" && c.Parser != "json" && c.Parser != "msgpack":
		return fmt.Errorf("SOAK_PARSER: must be json or msgpack, got %q", c.Parser)
	case c.Parser == "msgpack" && c.Driver != "native":
		return fmt.Errorf("SOAK_PARSER: msgpack works with SOAK_DRIVER=native only, got SOAK_DRIVER=%s", c.Driver)
	}
	switch v := strings.ReplaceAll(c.Transports, " ", ""); {
	case v != "" && v != transportsWebSocket && v != transportsPolling && v != transportsUpgrade:
		return fmt.Errorf("SOAK_TRANSPORTS: must be websocket, polling or polling,websocket, got %q", c.Transports)
	case v != "" && v != transportsWebSocket && c.Driver == "zishang520":
		return fmt.Errorf("SOAK_TRANSPORTS: the zishang520 driver supports websocket only, got %q: set SOAK_TRANSPORTS=websocket or SOAK_DRIVER=native", c.Transports)
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
	if c.TLSCertFile != "" && c.TLSKeyFile == "" {
		return errors.New("SOAK_TLS_KEY_FILE: required with SOAK_TLS_CERT_FILE")
	}
	if c.TLSKeyFile != "" && c.TLSCertFile == "" {
		return errors.New("SOAK_TLS_CERT_FILE: required with SOAK_TLS_KEY_FILE")
	}
	if n := c.TLSServerName; n != "" && (strings.ContainsAny(n, "/:@?# \t") || strings.Trim(n, ".") == "") {
		return fmt.Errorf("SOAK_TLS_SERVER_NAME: want a host name, got %q", n)
	}
	if c.MaxFrameBytes < 1024 {
		return fmt.Errorf("SOAK_MAX_FRAME_BYTES: must be >= 1024, got %d", c.MaxFrameBytes)
	}
	if c.SourceAddrs != "" {
		if c.Driver != "native" {
			return fmt.Errorf("SOAK_SOURCE_ADDRESSES: works with SOAK_DRIVER=native only, got SOAK_DRIVER=%s", c.Driver)
		}
		if _, err := ParseSourceAddrs(c.SourceAddrs); err != nil {
			return fmt.Errorf("SOAK_SOURCE_ADDRESSES: %w", err)
		}
	}
	return nil
}

// Targets builds one Target per configured URL, reading the token and CA
// files. With no URL configured it returns nil (the caller supplies a demo
// target).
func (c Config) Targets() ([]*probe.Target, error) {
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
	var out []*probe.Target
	src, err := c.sourceAddrs()
	if err != nil {
		return nil, err
	}
	for i, raw := range urls {
		t, err := c.target(raw, auth, tlsConf)
		if err != nil {
			return nil, fmt.Errorf("SOAK_TARGET_URL: %w", err)
		}
		if len(names) > 0 {
			t.Name = names[i]
		}
		t.SourceAddrs = src
		if err := checkFamily(t); err != nil {
			return nil, fmt.Errorf("SOAK_SOURCE_ADDRESSES: %w", err)
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
func (c Config) Target(raw string) (*probe.Target, error) {
	auth, err := c.authPayload()
	if err != nil {
		return nil, err
	}
	tlsConf, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	t, err := c.target(raw, auth, tlsConf)
	if err != nil {
		return nil, err
	}
	if t.SourceAddrs, err = c.sourceAddrs(); err != nil {
		return nil, err
	}
	if err := checkFamily(t); err != nil {
		return nil, fmt.Errorf("SOAK_SOURCE_ADDRESSES: %w", err)
	}
	return t, nil
}

// sourceAddrs parses SOAK_SOURCE_ADDRESSES and checks that each address is
// local; nil when it is empty.
func (c Config) sourceAddrs() ([]netip.Addr, error) {
	if c.SourceAddrs == "" {
		return nil, nil
	}
	addrs, err := ParseSourceAddrs(c.SourceAddrs)
	if err == nil {
		err = checkLocal(addrs)
	}
	if err != nil {
		return nil, fmt.Errorf("SOAK_SOURCE_ADDRESSES: %w", err)
	}
	return addrs, nil
}

func (c Config) target(raw string, auth json.RawMessage, tlsConf *tls.Config) (*probe.Target, error) {
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
		q.Set(k, v.Reveal())
	}
	base.RawQuery = ""
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v.Reveal())
	}
	name := u.Host
	if nsp != "/" {
		name += nsp
	}
	return &probe.Target{
		Name:          name,
		URL:           &base,
		Path:          c.SocketIOPath,
		Namespace:     nsp,
		Auth:          auth,
		Header:        h,
		Query:         q,
		TLS:           tlsConf,
		MaxFrameBytes: c.MaxFrameBytes,
		Transports:    c.transports(),
		Parser:        c.Parser,
	}, nil
}

func (c Config) authPayload() (json.RawMessage, error) {
	token := c.AuthToken.Reveal()
	if c.AuthTokenFile != "" {
		// SOAK_AUTH_TOKEN_FILE is a secret variable (secret.IsSecretVar):
		// its path is not printed, only what went wrong.
		b, err := secret.ReadFile("SOAK_AUTH_TOKEN_FILE", c.AuthTokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimRight(string(b), "\r\n")
		if token == "" {
			return nil, errors.New("SOAK_AUTH_TOKEN_FILE: the file is empty")
		}
	}
	obj := map[string]json.RawMessage{}
	if c.AuthJSON != "" {
		if err := json.Unmarshal([]byte(c.AuthJSON.Reveal()), &obj); err != nil {
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
	if c.TLSCAFile == "" && !c.TLSInsecure && c.TLSCertFile == "" && c.TLSKeyFile == "" && c.TLSServerName == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecure, ServerName: c.TLSServerName} //nolint:gosec // explicit opt-in, warned about
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
	if c.TLSCertFile != "" || c.TLSKeyFile != "" {
		cert, err := loadKeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// loadKeyPair reads a client certificate and its key. Its errors name the
// variable and never quote the key file's contents.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, errors.New("SOAK_TLS_CERT_FILE: SOAK_TLS_CERT_FILE and SOAK_TLS_KEY_FILE go together")
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("SOAK_TLS_CERT_FILE: %w", err)
	}
	if !hasPEMBlock(certPEM, func(t string) bool { return t == "CERTIFICATE" }) {
		return tls.Certificate{}, fmt.Errorf("SOAK_TLS_CERT_FILE: %s holds no PEM certificate", certFile)
	}
	if _, err := firstCertificate(certPEM); err != nil {
		return tls.Certificate{}, fmt.Errorf("SOAK_TLS_CERT_FILE: %s: %w", certFile, err)
	}
	// SOAK_TLS_KEY_FILE is a secret variable (secret.IsSecretVar): its
	// errors say what is wrong without the path.
	keyPEM, err := secret.ReadFile("SOAK_TLS_KEY_FILE", keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	if !hasPEMBlock(keyPEM, func(t string) bool { return t == "PRIVATE KEY" || strings.HasSuffix(t, " PRIVATE KEY") }) {
		return tls.Certificate{}, errors.New("SOAK_TLS_KEY_FILE: the file holds no PEM private key")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's messages name no key material.
		return tls.Certificate{}, fmt.Errorf("SOAK_TLS_KEY_FILE: the key does not go with the certificate in SOAK_TLS_CERT_FILE: %w", err)
	}
	return cert, nil
}

// firstCertificate parses the first CERTIFICATE block of PEM data.
func firstCertificate(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// hasPEMBlock tells whether data holds a PEM block whose type is accepted.
func hasPEMBlock(data []byte, ok func(blockType string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if ok(b.Type) {
			return true
		}
	}
}

// parseTargetURL accepts http, https, ws and wss URLs with a host. A URL
// written without a scheme (127.0.0.1:3000, localhost:3000/admin) is the
// most common slip: Go's own message for it ("first path segment in URL
// cannot contain colon") does not say what is wrong, so it is explained.
func parseTargetURL(raw string) (*url.URL, error) {
	if raw != "" && !strings.Contains(raw, "://") {
		shown := redactURL(raw)
		return nil, fmt.Errorf("%q has no scheme; did you mean http://%s?", shown, strings.TrimPrefix(shown, "//"))
	}
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
