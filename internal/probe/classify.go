package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// ClassifyDialError maps an error from dialing (TCP, TLS, HTTP upgrade) to a
// FailureReason. It is shared by the drivers so that both name the same fault
// the same way. ctxErr is the dial context's Err() after the failure, so that a
// deadline reads as a timeout whatever the layer reported.
func ClassifyDialError(err, ctxErr error) FailureReason {
	var ce *ConnectError
	switch {
	case err == nil:
		return FailOther
	case errors.As(err, &ce):
		return ce.Reason
	case errors.Is(ctxErr, context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded):
		return FailTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return FailTimeout
		}
		return FailDNS
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return FailRefused
	}
	var (
		certErr    *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
	)
	if errors.As(err, &certErr) || errors.As(err, &recordErr) || errors.As(err, &alertErr) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalidErr) {
		return FailTLS
	}
	// A TLS alert from the server (certificate required, unknown CA...)
	// arrives as a net.OpError "remote error" wrapping crypto/tls's
	// unexported alert type; with TLS 1.3 it shows on the first read after
	// the handshake, when the server rejects the client certificate.
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "remote error" {
		return FailTLS
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return FailReset
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return FailTimeout
	}
	if errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return FailRefused
	}
	return FailOther
}
