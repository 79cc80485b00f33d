package target_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/secret"
	"github.com/generic-corp/soak-exporter/internal/target"
)

func validConfig() target.Config {
	return target.Config{Driver: "native", SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}
}

func TestConfigTLSOptions(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "ca")
	cert, key := ca.issue(t, "client", true, nil, nil)
	_, otherKey := ca.issue(t, "other", true, nil, nil)
	files := map[string]string{
		"ca":       writeFile(t, dir, "ca.pem", ca.pem),
		"cert":     writeFile(t, dir, "cert.pem", cert),
		"key":      writeFile(t, dir, "key.pem", key),
		"otherkey": writeFile(t, dir, "other-key.pem", otherKey),
		"hello":    writeFile(t, dir, "hello.txt", []byte("hello")),
		"badcert":  writeFile(t, dir, "bad-cert.pem", []byte("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n")),
		"missing":  filepath.Join(dir, "missing.pem"),
	}
	tests := []struct {
		name    string
		set     func(*target.Config)
		wantErr string // prefix; "" = valid
	}{
		{"cert and key", func(c *target.Config) { c.TLSCertFile, c.TLSKeyFile = files["cert"], files["key"] }, ""},
		{"server name", func(c *target.Config) { c.TLSServerName = "soak.test" }, ""},
		{"cert without key", func(c *target.Config) { c.TLSCertFile = files["cert"] }, "SOAK_TLS_KEY_FILE: required with SOAK_TLS_CERT_FILE"},
		{"key without cert", func(c *target.Config) { c.TLSKeyFile = files["key"] }, "SOAK_TLS_CERT_FILE: required with SOAK_TLS_KEY_FILE"},
		{"unreadable cert", func(c *target.Config) { c.TLSCertFile, c.TLSKeyFile = files["missing"], files["key"] }, "SOAK_TLS_CERT_FILE: open " + files["missing"]},
		{"cert not PEM", func(c *target.Config) { c.TLSCertFile, c.TLSKeyFile = files["hello"], files["key"] }, "SOAK_TLS_CERT_FILE: " + files["hello"] + " holds no PEM certificate"},
		{"cert not a certificate", func(c *target.Config) { c.TLSCertFile, c.TLSKeyFile = files["badcert"], files["key"] }, "SOAK_TLS_CERT_FILE: " + files["badcert"] + ": x509: "},
		{"key is a certificate", func(c *target.Config) { c.TLSCertFile, c.TLSKeyFile = files["cert"], files["cert"] }, "SOAK_TLS_KEY_FILE: the file holds no PEM private key"},
		{"unreadable key", func(c *target.Config) { c.TLSCertFile, c.TLSKeyFile = files["cert"], files["missing"] }, "SOAK_TLS_KEY_FILE: cannot read the file: no such file or directory"},
		{"key of another cert", func(c *target.Config) { c.TLSCertFile, c.TLSKeyFile = files["cert"], files["otherkey"] }, "SOAK_TLS_KEY_FILE: the key does not go with the certificate in SOAK_TLS_CERT_FILE"},
		{"server name with port", func(c *target.Config) { c.TLSServerName = "soak.test:443" }, `SOAK_TLS_SERVER_NAME: want a host name, got "soak.test:443"`},
		{"server name with space", func(c *target.Config) { c.TLSServerName = "soak test" }, `SOAK_TLS_SERVER_NAME: want a host name`},
		{"CA not PEM", func(c *target.Config) { c.TLSCAFile = files["hello"] }, "SOAK_TLS_CA_FILE: " + files["hello"] + " holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			c.TargetURL = "https://127.0.0.1:1"
			tc.set(&c)
			err := c.Validate()
			var targets []*probe.Target
			if err == nil {
				targets, err = c.Targets()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err quotes file contents or spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			conf := targets[0].TLS
			if conf == nil {
				t.Fatal("no TLS config")
			}
			if conf.ServerName != c.TLSServerName || (c.TLSCertFile != "") != (len(conf.Certificates) == 1) || conf.InsecureSkipVerify {
				t.Fatalf("TLS config: server name %q, %d certificates, insecure %v", conf.ServerName, len(conf.Certificates), conf.InsecureSkipVerify)
			}
		})
	}
}

func TestConfigSecretsFromEnvironment(t *testing.T) {
	t.Setenv("SOAK_AUTH_TOKEN", "tok-123")
	t.Setenv("SOAK_AUTH_JSON", `{"k":"v"}`)
	t.Setenv("SOAK_HEADERS", "Authorization:Bearer abc,X-Other:1")
	t.Setenv("SOAK_QUERY", "q:1")
	var c target.Config
	if err := envconfig.Process("soak", &c); err != nil {
		t.Fatal(err)
	}
	if c.AuthToken.Reveal() != "tok-123" || c.AuthJSON.Reveal() != `{"k":"v"}` || c.Headers["Authorization"].Reveal() != "Bearer abc" || c.Headers["X-Other"].Reveal() != "1" {
		t.Fatalf("secrets not read: token %q, json %q, headers %d", c.AuthToken.Reveal(), c.AuthJSON.Reveal(), len(c.Headers))
	}
	tg, err := c.Target("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(tg.Auth); got != `{"k":"v","token":"tok-123"}` {
		t.Fatalf("auth payload %s", got)
	}
	if tg.Header.Get("Authorization") != "Bearer abc" || tg.Query.Get("q") != "1" {
		t.Fatal("header or query not sent")
	}
}

// TestSecretsAreNeverPrinted: a panic message, a debug print or a log field
// built from a Config or a Target shows no secret, whatever the verb.
func TestSecretsAreNeverPrinted(t *testing.T) {
	const token = "s3cr3t-T0KEN-4f9a"
	c := validConfig()
	c.AuthToken = secret.Secret("tok-" + token)
	c.AuthJSON = secret.Secret(`{"key":"json-` + token + `"}`)
	c.Headers = map[string]secret.Secret{"Authorization": secret.Secret("Bearer hdr-" + token)}
	c.Query = map[string]secret.Secret{"access_token": secret.Secret("q-" + token)}
	tg, err := c.Target("http://127.0.0.1:1/nsp?sig=url-" + token)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(tg.Auth, []byte(token)) || !strings.Contains(tg.Header.Get("Authorization"), token) {
		t.Fatal("the target does not carry the secrets: the test proves nothing")
	}
	values := map[string]any{
		"Config": c, "*Config": &c, "Target": *tg, "*Target": tg,
		"AuthToken": c.AuthToken, "in a struct": struct {
			C target.Config
			T probe.Target
		}{c, *tg},
		"in a slice": []probe.Target{*tg},
	}
	forms := func(v any) map[string]string {
		out := map[string]string{}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			out[verb] = fmt.Sprintf(verb, v)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json: %v", err)
		}
		out["json"] = string(b)
		var buf bytes.Buffer
		enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
		log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zap.DebugLevel))
		log.Debug("value", zap.Any("v", v), zap.Reflect("r", v))
		out["zap"] = buf.String()
		return out
	}
	for name, v := range values {
		for form, s := range forms(v) {
			for _, bad := range []string{token, hex.EncodeToString([]byte(token)), strings.ToUpper(hex.EncodeToString([]byte(token))), fmt.Sprint([]byte(token)[:6])} {
				if strings.Contains(s, bad) {
					t.Errorf("%s printed as %s shows a secret: %s", name, form, s)
				}
			}
		}
	}
	if got := fmt.Sprintf("%v", c.AuthToken); got != "[REDACTED]" {
		t.Errorf("AuthToken prints %q, want [REDACTED]", got)
	}
	if got := fmt.Sprintf("%v", secret.Secret("")); got != "" {
		t.Errorf("an empty secret prints %q, want empty", got)
	}
	if s := fmt.Sprintf("%+v", tg); !strings.Contains(s, "Name:127.0.0.1:1/nsp") || !strings.Contains(s, "Auth:[REDACTED]") {
		t.Errorf("the redacted target lost its useful fields: %s", s)
	}
}

// TestPanicOutputRedactsSecrets runs this test binary again with a panic
// whose value is a Secret, then one that prints a Target, and greps the
// crash output (panic message and goroutine traces) for the token.
func TestPanicOutputRedactsSecrets(t *testing.T) {
	const token = "s3cr3t-T0KEN-4f9a"
	if what := os.Getenv("SOAK_TEST_PANIC"); what != "" {
		c := validConfig()
		c.AuthToken = secret.Secret("tok-" + token)
		c.Headers = map[string]secret.Secret{"Authorization": secret.Secret("Bearer " + token)}
		tg, err := c.Target("http://127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		// A panic in a goroutine of its own, as in a pool, crashes the
		// process without the testing package's recovery.
		go func() {
			switch what {
			case "secret":
				panic(c.AuthToken)
			case "config":
				panic(fmt.Sprintf("bad config %+v", c))
			default:
				panic(fmt.Errorf("bad target %v / %#v", tg, tg))
			}
		}()
		// The child only waits for its own crash, which ends it at once;
		// the bound is reached only when the panic failed to crash it.
		time.Sleep(30 * time.Second)
		t.Fatal("the panic did not crash the process")
	}
	for _, what := range []string{"secret", "config", "target"} {
		t.Run(what, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPanicOutputRedactsSecrets$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SOAK_TEST_PANIC="+what, "GOTRACEBACK=all")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "panic: ") {
				t.Fatalf("the child did not panic: %v\n%s", err, out)
			}
			if strings.Contains(string(out), token) {
				t.Fatalf("the panic output shows the token:\n%s", out)
			}
			if !strings.Contains(string(out), "[REDACTED]") {
				t.Fatalf("the panic output does not show the redacted value, the test proves little:\n%s", out)
			}
		})
	}
}

func TestValidateExplainsAURLWithoutScheme(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"127.0.0.1:3000", `SOAK_TARGET_URL: "127.0.0.1:3000" has no scheme; did you mean http://127.0.0.1:3000?`},
		{"localhost:3000/admin", `SOAK_TARGET_URL: "localhost:3000/admin" has no scheme; did you mean http://localhost:3000/admin?`},
		{"[::1]:3000", `SOAK_TARGET_URL: "[::1]:3000" has no scheme; did you mean http://[::1]:3000?`},
		{"example.com", `SOAK_TARGET_URL: "example.com" has no scheme; did you mean http://example.com?`},
		{"//example.com:80", `SOAK_TARGET_URL: "//example.com:80" has no scheme; did you mean http://example.com:80?`},
		{"http://127.0.0.1:3000,127.0.0.1:3001", `SOAK_TARGET_URL: "127.0.0.1:3001" has no scheme; did you mean http://127.0.0.1:3001?`},
		{"ftp://example.invalid", `SOAK_TARGET_URL: URL "ftp://example.invalid": scheme must be http, https, ws or wss`},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			c := target.Config{Driver: "native", SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20, TargetURL: tc.url}
			err := c.Validate()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %s", err, tc.want)
			}
		})
	}
	// The query of a URL may carry a token: it is not repeated.
	c := target.Config{Driver: "native", SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}
	_, err := c.Target("localhost:3000/?token=s3cr3t")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "has no scheme") {
		t.Fatalf("Target(no scheme, token in query) = %v", err)
	}
}

// SOAK_AUTH_TOKEN_FILE is a secret variable: its errors say what is wrong
// without the path, which may name the token.
func TestTokenFileErrorsDoNotPrintThePath(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-s3cr3t")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing-s3cr3t"), "SOAK_AUTH_TOKEN_FILE: cannot read the file: no such file or directory"},
		{empty, "SOAK_AUTH_TOKEN_FILE: the file is empty"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			c := target.Config{Driver: "native", SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20, AuthTokenFile: tc.file}
			_, err := c.Targets()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Targets() = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestConfigTransports(t *testing.T) {
	tests := []struct {
		driver, value string
		want          []string
		wantErr       string
	}{
		{driver: "native", value: "", want: []string{"polling", "websocket"}},
		{driver: "zishang520", value: "", want: []string{"websocket"}},
		{driver: "native", value: "websocket", want: []string{"websocket"}},
		{driver: "native", value: "polling", want: []string{"polling"}},
		{driver: "native", value: "polling, websocket", want: []string{"polling", "websocket"}},
		{driver: "zishang520", value: "websocket", want: []string{"websocket"}},
		{driver: "native", value: "websocket,polling", wantErr: `SOAK_TRANSPORTS: must be websocket, polling or polling,websocket, got "websocket,polling"`},
		{driver: "native", value: "webtransport", wantErr: `SOAK_TRANSPORTS: must be websocket, polling or polling,websocket, got "webtransport"`},
		{driver: "zishang520", value: "polling", wantErr: `SOAK_TRANSPORTS: the zishang520 driver supports websocket only, got "polling"`},
		{driver: "zishang520", value: "polling,websocket", wantErr: `SOAK_TRANSPORTS: the zishang520 driver supports websocket only`},
	}
	for _, tc := range tests {
		t.Run(tc.driver+"/"+tc.value, func(t *testing.T) {
			c := validConfig()
			c.Driver, c.Transports, c.TargetURL = tc.driver, tc.value, "http://127.0.0.1:3000"
			err := c.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("Validate() = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tgs, err := c.Targets()
			if err != nil {
				t.Fatal(err)
			}
			if got := tgs[0].Transports; !slices.Equal(got, tc.want) {
				t.Errorf("Transports = %q, want %q", got, tc.want)
			}
		})
	}
}
