package target_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/demo"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/probe/zishang"
	"github.com/generic-corp/soak-exporter/internal/probe/zishang/zishangtest"
	"github.com/generic-corp/soak-exporter/internal/target"
)

// TestTargetTLS dials the demo Socket.IO server behind a TLS server that
// requires a client certificate, through target.Config's TLS options, with
// each driver.
func TestTargetTLS(t *testing.T) {
	defer goleak.VerifyNone(t, append(zishangtest.GoleakIgnores(), goleak.IgnoreCurrent())...)
	dir := t.TempDir()
	ca := newTestCA(t, "soak test CA")
	other := newTestCA(t, "some other CA")
	srvCert, srvKey := ca.issue(t, "soak.test", false, []string{"soak.test"}, nil)
	cliCert, cliKey := ca.issue(t, "soak-exporter", true, nil, nil)
	strangerCert, strangerKey := other.issue(t, "stranger", true, nil, nil)
	files := map[string]string{
		"ca":      writeFile(t, dir, "ca.pem", ca.pem),
		"otherca": writeFile(t, dir, "other-ca.pem", other.pem),
		"cert":    writeFile(t, dir, "client.pem", cliCert),
		"key":     writeFile(t, dir, "client-key.pem", cliKey),
		"strcert": writeFile(t, dir, "stranger.pem", strangerCert),
		"strkey":  writeFile(t, dir, "stranger-key.pem", strangerKey),
	}

	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)
	dsrv := demo.New(zap.NewNop(), demo.Options{})
	ts := httptest.NewUnstartedServer(dsrv.Handler())
	ts.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	ts.StartTLS()
	defer ts.Close()
	url := "https://" + ts.Listener.Addr().String() // 127.0.0.1:port; the certificate says soak.test

	tests := []struct {
		name string
		cfg  target.Config
		want probe.FailureReason // "" = connects and gets an ack
	}{
		{"ca, client cert and server name", target.Config{TLSCAFile: files["ca"], TLSCertFile: files["cert"], TLSKeyFile: files["key"], TLSServerName: "soak.test"}, ""},
		{"no client cert", target.Config{TLSCAFile: files["ca"], TLSServerName: "soak.test"}, probe.FailTLS},
		{"client cert of another CA", target.Config{TLSCAFile: files["ca"], TLSCertFile: files["strcert"], TLSKeyFile: files["strkey"], TLSServerName: "soak.test"}, probe.FailTLS},
		{"wrong CA", target.Config{TLSCAFile: files["otherca"], TLSCertFile: files["cert"], TLSKeyFile: files["key"], TLSServerName: "soak.test"}, probe.FailTLS},
		{"no server name override", target.Config{TLSCAFile: files["ca"], TLSCertFile: files["cert"], TLSKeyFile: files["key"]}, probe.FailTLS},
	}
	for _, drv := range []probe.Driver{native.New(native.Options{}), zishang.New(zishang.Options{})} {
		for _, tc := range tests {
			t.Run(drv.Name()+"/"+tc.name, func(t *testing.T) {
				dialTLS(t, drv, url, tc.cfg, tc.want)
			})
		}
	}
}

// dialTLS dials url with cfg's TLS options; with want empty it expects an
// echo ack, otherwise a connect failure with that reason.
func dialTLS(t *testing.T, drv probe.Driver, url string, cfg target.Config, want probe.FailureReason) {
	t.Helper()
	cfg.SocketIOPath, cfg.MaxFrameBytes, cfg.Driver = "/socket.io/", 1<<20, drv.Name()
	cfg.Transports = "websocket" // the demo server speaks WebSocket only
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	target, err := cfg.Target(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acks := make(chan []json.RawMessage, 1)
	conn, err := drv.Dial(ctx, target, probe.Handlers{OnAck: func(_ uint64, args []json.RawMessage) {
		select {
		case acks <- args:
		default:
		}
	}})
	if want != "" {
		if err == nil {
			_ = conn.Close(ctx)
			t.Fatalf("Dial succeeded, want a %s failure", want)
		}
		var ce *probe.ConnectError
		if !errors.As(err, &ce) || ce.Reason != want {
			t.Fatalf("Dial: %v (reason %q), want reason %q", err, probe.ClassifyDialError(err, nil), want)
		}
		return
	}
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if err := conn.Emit(ctx, "echo", 1, json.RawMessage(`"over mTLS"`)); err != nil {
		t.Fatal(err)
	}
	select {
	case args := <-acks:
		if len(args) == 0 || string(args[0]) != `"over mTLS"` {
			t.Fatalf("ack args %s, want the echo", args)
		}
	case <-ctx.Done():
		t.Fatal("no ack within 10 s")
	}
}
