package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// serverCert makes a self-signed certificate for 127.0.0.1 and writes it
// and its key to dir. It returns the files and a pool that trusts it.
func serverCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "soak-exporter test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// runServer runs s on a loopback port until the test ends and returns its
// address.
func runServer(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s")
		}
	})
	return ln.Addr().String()
}

// TestWebConfigTLSAndBasicAuth serves the endpoints with an exporter-toolkit
// web configuration (TLS and a bcrypt basic-auth user) and talks to them
// with a real TLS client.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := serverCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("right-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	yml := "tls_server_config:\n  cert_file: " + certFile + "\n  key_file: " + keyFile + "\n" +
		"basic_auth_users:\n  prometheus: " + string(hash) + "\n"
	if err := os.WriteFile(webConfig, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, pprofOn := range []bool{false, true} {
		name := "pprof off"
		if pprofOn {
			name = "pprof on"
		}
		t.Run(name, func(t *testing.T) {
			cfg := Config{ListenAddress: "127.0.0.1:0", WebConfigFile: webConfig, EnablePprof: pprofOn}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "soak_clients_connected", Help: "h"})
			reg.MustRegister(g)
			g.Set(7)
			addr := runServer(t, New(cfg, zap.NewNop(), Options{Gatherer: reg}))
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

			get := func(t *testing.T, c *http.Client, url, user, pass string) (int, string, error) {
				t.Helper()
				req, err := http.NewRequest(http.MethodGet, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				if user != "" {
					req.SetBasicAuth(user, pass)
				}
				resp, err := c.Do(req)
				if err != nil {
					return 0, "", err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b), err
			}

			base := "https://" + addr
			tests := []struct {
				name, path, user, pass string
				status                 int
				contains               string
			}{
				{"no password", "/metrics", "", "", http.StatusUnauthorized, ""},
				{"wrong password", "/metrics", "prometheus", "wrong-password", http.StatusUnauthorized, ""},
				{"unknown user", "/metrics", "root", "right-password", http.StatusUnauthorized, ""},
				{"right password", "/metrics", "prometheus", "right-password", http.StatusOK, "soak_clients_connected 7"},
				{"landing page", "/", "prometheus", "right-password", http.StatusOK, "soak-exporter"},
				{"pprof needs auth too", "/debug/pprof/", "", "", http.StatusUnauthorized, ""},
				{"pprof", "/debug/pprof/", "prometheus", "right-password", map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[pprofOn], map[bool]string{false: "", true: "goroutine"}[pprofOn]},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					status, body, err := get(t, client, base+tc.path, tc.user, tc.pass)
					if err != nil {
						t.Fatal(err)
					}
					if status != tc.status {
						t.Fatalf("status %d, want %d; body %q", status, tc.status, body)
					}
					if !strings.Contains(body, tc.contains) {
						t.Fatalf("body lacks %q: %q", tc.contains, body)
					}
					if status == http.StatusUnauthorized && strings.Contains(body, "soak_") {
						t.Fatalf("a refused request got metrics: %q", body)
					}
				})
			}

			t.Run("plain http is refused", func(t *testing.T) {
				plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
				status, body, err := get(t, plain, "http://"+addr+"/metrics", "prometheus", "right-password")
				if err == nil && (status == http.StatusOK || strings.Contains(body, "soak_")) {
					t.Fatalf("plain HTTP got %d %q", status, body)
				}
			})
			t.Run("untrusted certificate", func(t *testing.T) {
				tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
				defer tr.CloseIdleConnections()
				_, _, err := get(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, base+"/metrics", "prometheus", "right-password")
				var unknown x509.UnknownAuthorityError
				if !errors.As(err, &unknown) {
					t.Fatalf("err = %v, want an unknown-authority error", err)
				}
			})
		})
	}
}

func TestWebConfigInvalid(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(bad, []byte("tls_server_config:\n  cert_file: "+filepath.Join(dir, "missing.pem")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Config{ListenAddress: ":9477", WebConfigFile: bad}.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "SOAK_WEB_CONFIG_FILE: ") {
		t.Fatalf("err = %v, want SOAK_WEB_CONFIG_FILE: ...", err)
	}
}
