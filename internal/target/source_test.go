package target

import (
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

func TestParseSourceAddrs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: ""},
		{in: " , "},
		{in: "127.0.0.2", want: []string{"127.0.0.2"}},
		{in: "127.0.0.2-127.0.0.4, 10.0.0.1", want: []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "10.0.0.1"}},
		{in: "::2-::3", want: []string{"::2", "::3"}},
		{in: "127.0.0.255-127.0.1.0", want: []string{"127.0.0.255", "127.0.1.0"}},
		{in: "localhost", wantErr: `"localhost" is not an IP address or a range like 127.0.0.2-127.0.0.9`},
		{in: "127.0.0.2-x", wantErr: `"127.0.0.2-x": "x" is not an IP address`},
		{in: "127.0.0.4-127.0.0.2", wantErr: "the range must go up"},
		{in: "127.0.0.2-::3", wantErr: "the range must go up within one address family"},
		{in: "127.0.0.2,127.0.0.2", wantErr: "127.0.0.2 is listed twice"},
		{in: "127.0.0.2,::1", wantErr: "mixes IPv4 and IPv6"},
		{in: "10.0.0.0-10.0.255.255", wantErr: "more than 1024 addresses"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSourceAddrs(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if strings.Join(s, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", s, tc.want)
			}
		})
	}
}

func TestSourceAddressesAtStart(t *testing.T) {
	base := Config{Driver: "native", SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}
	for _, tc := range []struct {
		name, url, src, driver, wantErr string
	}{
		{name: "loopback range", url: "http://127.0.0.1:3000", src: "127.0.0.2-127.0.0.4"},
		{name: "host name not checked", url: "http://localhost:3000", src: "127.0.0.2"},
		// 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this host.
		{name: "not local", url: "http://127.0.0.1:3000", src: "192.0.2.7", wantErr: "SOAK_SOURCE_ADDRESSES: 192.0.2.7 is not an address of this host"},
		{name: "family", url: "http://[::1]:3000", src: "127.0.0.2", wantErr: "SOAK_SOURCE_ADDRESSES: target [::1]:3000 is IPv6, the source addresses are not"},
		{name: "driver", url: "http://127.0.0.1:3000", src: "127.0.0.2", driver: "zishang520", wantErr: "SOAK_SOURCE_ADDRESSES: works with SOAK_DRIVER=native only, got SOAK_DRIVER=zishang520"},
		{name: "syntax", url: "http://127.0.0.1:3000", src: "127.0.0.300", wantErr: `SOAK_SOURCE_ADDRESSES: "127.0.0.300" is not an IP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.TargetURL, c.SourceAddrs = tc.url, tc.src
			if tc.driver != "" {
				c.Driver = tc.driver
			}
			err := c.Validate()
			var ts []*probe.Target
			if err == nil {
				ts, err = c.Targets()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ParseSourceAddrs(tc.src)
			if len(ts) != 1 || len(ts[0].SourceAddrs) != len(want) || ts[0].SourceAddrs[0] != want[0] {
				t.Fatalf("targets %+v, want source addresses %v", ts, want)
			}
		})
	}
}

func TestEphemeralPorts(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, strings.ReplaceAll(s, " ", "_")+".txt")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, file string
		want       int
		wantErr    bool
	}{
		{name: "linux default", file: write("32768\t60999\n"), want: 28232},
		{name: "widened", file: write("1024 65535\n"), want: 64512},
		{name: "missing file", file: filepath.Join(dir, "none"), want: DefaultEphemeralPorts},
		{name: "garbage", file: write("x"), wantErr: true},
		{name: "descending", file: write("60999 32768"), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EphemeralPorts(tc.file)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("EphemeralPorts = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCheckCapacity(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:3000")
	tg := func(n int) *probe.Target {
		t := &probe.Target{Name: "api", URL: u}
		for i := range n {
			t.SourceAddrs = append(t.SourceAddrs, netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}))
		}
		return t
	}
	for _, tc := range []struct {
		name           string
		addrs, clients int
		wantErr        string
	}{
		{name: "fits one address", addrs: 0, clients: 28232},
		{name: "one too many", addrs: 0, clients: 28233, wantErr: "SOAK_CLIENTS: 28233 clients to target api need more than the 28232 ephemeral ports of 1 source address(es) (/proc/sys/net/ipv4/ip_local_port_range): set SOAK_SOURCE_ADDRESSES to at least 2 local addresses"},
		{name: "two addresses", addrs: 2, clients: 50000},
		{name: "fifty thousand on one", addrs: 1, clients: 50000, wantErr: "at least 2 local addresses"},
		{name: "hundred thousand on two", addrs: 2, clients: 100000, wantErr: "at least 4 local addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckCapacity(tg(tc.addrs), tc.clients, 28232)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
