package target

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// maxSourceAddrs bounds SOAK_SOURCE_ADDRESSES once ranges are expanded.
const maxSourceAddrs = 1024

// ParseSourceAddrs reads SOAK_SOURCE_ADDRESSES: comma-separated IP
// addresses and inclusive ranges (127.0.0.2-127.0.0.9, ::2-::9), one family,
// no duplicates, at most 1,024 addresses in all. An empty list (or only
// commas) gives none.
func ParseSourceAddrs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, item := range splitList(s) {
		lo, hi, isRange := strings.Cut(item, "-")
		first, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or a range like 127.0.0.2-127.0.0.9", item)
		}
		last := first
		if isRange {
			if last, err = netip.ParseAddr(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("%q: %q is not an IP address", item, hi)
			}
			if first.Is4() != last.Is4() || last.Less(first) {
				return nil, fmt.Errorf("%q: the range must go up within one address family", item)
			}
		}
		for a := first; ; a = a.Next() {
			if len(out) == maxSourceAddrs {
				return nil, fmt.Errorf("more than %d addresses", maxSourceAddrs)
			}
			if seen[a] {
				return nil, fmt.Errorf("%s is listed twice", a)
			}
			seen[a] = true
			out = append(out, a)
			if a == last {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	for _, a := range out[1:] {
		if a.Is4() != out[0].Is4() {
			return nil, errors.New("mixes IPv4 and IPv6 addresses: a connection can only bind to one of its server's family")
		}
	}
	return out, nil
}

// checkLocal binds each address once (port chosen by the system) so that a
// non-local address stops the program at start, not every dial later.
func checkLocal(addrs []netip.Addr) error {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			return fmt.Errorf("%s is not an address of this host (%w): add it to an interface (on loopback every 127.0.0.0/8 address works) or remove it", a, err)
		}
		_ = ln.Close()
	}
	return nil
}

// checkFamily refuses a target whose host is an IP literal of the other
// family than the source addresses. Host names are resolved at dial time
// and not checked here.
func checkFamily(t *probe.Target) error {
	if len(t.SourceAddrs) == 0 {
		return nil
	}
	ip, err := netip.ParseAddr(strings.Trim(t.URL.Hostname(), "[]"))
	if err != nil {
		return nil
	}
	if ip.Unmap().Is4() != t.SourceAddrs[0].Is4() {
		return fmt.Errorf("target %s is %s, the source addresses are not: use addresses of the target's family", t.Name, familyName(ip))
	}
	return nil
}

func familyName(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// EphemeralPortsFile is where Linux keeps the ephemeral port range.
const EphemeralPortsFile = "/proc/sys/net/ipv4/ip_local_port_range"

// DefaultEphemeralPorts is Linux's default range, 32768-60999, used when the
// file cannot be read.
const DefaultEphemeralPorts = 60999 - 32768 + 1

// EphemeralPorts returns how many ports the system's ephemeral range holds,
// read from file (EphemeralPortsFile in production), or
// DefaultEphemeralPorts when the file does not exist.
func EphemeralPorts(file string) (int, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultEphemeralPorts, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read ephemeral port range: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("read ephemeral port range: %s: want two numbers, got %q", file, b)
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 0, fmt.Errorf("read ephemeral port range: %s: want two ascending numbers, got %q", file, b)
	}
	return hi - lo + 1, nil
}

// CheckCapacity refuses a pool of clients connections to t that the
// ephemeral ports cannot hold: each source address gives ports connections
// to one server address (one when SOAK_SOURCE_ADDRESSES is empty).
func CheckCapacity(t *probe.Target, clients, ports int) error {
	n := max(len(t.SourceAddrs), 1)
	if clients <= n*ports {
		return nil
	}
	need := (clients + ports - 1) / ports
	return fmt.Errorf("SOAK_CLIENTS: %d clients to target %s need more than the %d ephemeral ports of %d source address(es) (%s): set SOAK_SOURCE_ADDRESSES to at least %d local addresses (for example 127.0.0.2-127.0.0.%d toward a loopback target)",
		clients, t.Name, ports, n, EphemeralPortsFile, need, need+1)
}
