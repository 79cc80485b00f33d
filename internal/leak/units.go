package leak

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Bytes is an amount of memory in bytes, parsed from "21MB", "1.5GiB",
// "512KiB" or a plain number of bytes. SI prefixes (kB, MB, GB) are powers
// of 1000, binary ones (KiB, MiB, GiB) of 1024.
type Bytes float64

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// Decode implements envconfig.Decoder.
func (b *Bytes) Decode(s string) error {
	v, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = Bytes(v)
	return nil
}

// String prints the value in MB.
func (b Bytes) String() string {
	return strconv.FormatFloat(float64(b)/1e6, 'g', -1, 64) + "MB"
}

func parseBytes(s string) (float64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q is not a byte amount like 21MB, 1.5GiB or 1048576", s)
	}
	return v * mult, nil
}

// ByteRate is a growth rate in bytes per second, parsed from "0.25MB/h",
// "1MiB/m", "300B/s" or a plain number of bytes per second.
type ByteRate float64

// Decode implements envconfig.Decoder.
func (r *ByteRate) Decode(s string) error {
	amount, per, found := strings.Cut(strings.TrimSpace(s), "/")
	b, err := parseBytes(amount)
	if err != nil {
		return fmt.Errorf("%q is not a rate like 0.25MB/h or 300B/s", s)
	}
	if !found {
		*r = ByteRate(b)
		return nil
	}
	unit := map[string]float64{"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[strings.TrimSpace(per)]
	if unit == 0 {
		return fmt.Errorf("%q is not a rate like 0.25MB/h or 300B/s: unknown time unit %q", s, per)
	}
	*r = ByteRate(b / unit)
	return nil
}

// String prints the rate in MB/h.
func (r ByteRate) String() string {
	return strconv.FormatFloat(float64(r)*3600/1e6, 'g', -1, 64) + "MB/h"
}

// GrowthByWindow maps window lengths to a minimum floor growth in bytes,
// parsed from "1h:15MB,24h:12MB".
type GrowthByWindow map[time.Duration]float64

// Decode implements envconfig.Decoder.
func (g *GrowthByWindow) Decode(s string) error {
	m := GrowthByWindow{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		w, amount, ok := strings.Cut(part, ":")
		if !ok {
			return fmt.Errorf("%q is not window:amount like 1h:15MB", part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(w))
		if err != nil || d <= 0 {
			return fmt.Errorf("%q: window %q is not a positive duration", part, w)
		}
		b, err := parseBytes(amount)
		if err != nil {
			return fmt.Errorf("%q: %w", part, err)
		}
		m[d] = b
	}
	*g = m
	return nil
}

// String prints the map as it is parsed, windows ascending.
func (g GrowthByWindow) String() string {
	ws := make([]time.Duration, 0, len(g))
	for w := range g {
		ws = append(ws, w)
	}
	slices.Sort(ws)
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = detect.FormatDuration(w) + ":" + Bytes(g[w]).String()
	}
	return strings.Join(parts, ",")
}
