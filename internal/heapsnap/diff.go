package heapsnap

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/pprof/profile"
)

// Formats of a capture.
const (
	FormatV8    = "v8"
	FormatPprof = "pprof"
)

// Growth is how one group changed between two captures.
type Growth struct {
	// Name is the constructor (V8) or the allocation site, "function
	// file:line" of the innermost frame outside the Go runtime (pprof).
	Name       string `json:"name"`
	CountAdded int64  `json:"count_added"`
	BytesAdded int64  `json:"bytes_added"`
	CountAfter int64  `json:"count_after"`
	BytesAfter int64  `json:"bytes_after"`
}

// Diff is what grew between two captures of the same target.
type Diff struct {
	Format string    `json:"format"`
	Before string    `json:"before"`
	After  string    `json:"after"`
	Time   time.Time `json:"time,omitzero"`
	// CountAdded and BytesAdded are the change of the whole heap.
	CountAdded int64 `json:"count_added"`
	BytesAdded int64 `json:"bytes_added"`
	// Top are the growers, most bytes added first.
	Top []Growth `json:"top"`
}

// Compare returns the groups of b that grew since a, most bytes added first
// (then most objects added), at most n of them (n <= 0: all).
func Compare(a, b *Aggregate, n int) []Growth {
	var out []Growth
	for name, gb := range b.Groups {
		ga := a.Groups[name]
		g := Growth{Name: name, CountAdded: gb.Count - ga.Count, BytesAdded: gb.Bytes - ga.Bytes, CountAfter: gb.Count, BytesAfter: gb.Bytes}
		if g.BytesAdded > 0 || (g.BytesAdded == 0 && g.CountAdded > 0) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(x, y Growth) int {
		return cmp.Or(cmp.Compare(y.BytesAdded, x.BytesAdded), cmp.Compare(y.CountAdded, x.CountAdded), cmp.Compare(x.Name, y.Name))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// ParseFile reads a capture, a V8 .heapsnapshot or a pprof heap profile
// (told apart by content), and returns its format and aggregate.
func ParseFile(path string) (string, *Aggregate, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(64)
	if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		a, err := ParseV8(br)
		if err != nil {
			return FormatV8, nil, fmt.Errorf("%s: v8 heap snapshot: %w", filepath.Base(path), err)
		}
		return FormatV8, a, nil
	}
	a, err := ParsePprof(br)
	if err != nil {
		return FormatPprof, nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return FormatPprof, a, nil
}

// DiffFiles parses two captures of the same format and returns what grew,
// at most n groups (n <= 0: all).
func DiffFiles(before, after string, n int) (*Diff, error) {
	fa, a, err := ParseFile(before)
	if err != nil {
		return nil, err
	}
	fb, b, err := ParseFile(after)
	if err != nil {
		return nil, err
	}
	if fa != fb {
		return nil, fmt.Errorf("cannot compare a %s capture with a %s capture", fa, fb)
	}
	return &Diff{
		Format: fa, Before: filepath.Base(before), After: filepath.Base(after),
		CountAdded: b.Count - a.Count, BytesAdded: b.Bytes - a.Bytes, Top: Compare(a, b, n),
	}, nil
}

// ParsePprof reads a pprof heap profile (gzipped or not) and sums
// inuse_objects and inuse_space per allocation site.
func ParsePprof(r io.Reader) (*Aggregate, error) {
	p, err := profile.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("pprof profile: %w", err)
	}
	oi, si := -1, -1
	for i, st := range p.SampleType {
		switch st.Type {
		case "inuse_objects":
			oi = i
		case "inuse_space":
			si = i
		}
	}
	if oi < 0 || si < 0 {
		return nil, errors.New("pprof profile: not a heap profile (no inuse_objects and inuse_space)")
	}
	out := &Aggregate{Groups: map[string]Group{}}
	for _, s := range p.Sample {
		name := allocSite(s)
		g := out.Groups[name]
		g.Count += s.Value[oi]
		g.Bytes += s.Value[si]
		out.Groups[name] = g
		out.Count += s.Value[oi]
		out.Bytes += s.Value[si]
	}
	return out, nil
}

// allocSite names the innermost frame of a sample outside the Go runtime.
func allocSite(s *profile.Sample) string {
	for _, loc := range s.Location {
		for _, ln := range loc.Line { // innermost (inlined) first
			if ln.Function == nil {
				continue
			}
			fn := ln.Function.Name
			if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/runtime/") {
				continue
			}
			return fmt.Sprintf("%s %s:%d", fn, ln.Function.Filename, ln.Line)
		}
	}
	return "(unknown)"
}

// WriteJSON writes d as indented JSON.
func (d *Diff) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// Lines returns the text table, header first, at most n growers (n <= 0:
// all).
func (d *Diff) Lines(n int) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	what := "CONSTRUCTOR"
	if d.Format == FormatPprof {
		what = "ALLOCATION SITE"
	}
	fmt.Fprintf(tw, "+COUNT\t+BYTES\tCOUNT\tBYTES\t  %s\n", what)
	top := d.Top
	if n > 0 && len(top) > n {
		top = top[:n]
	}
	for _, g := range top {
		fmt.Fprintf(tw, "%+d\t%+d\t%d\t%d\t  %s\n", g.CountAdded, g.BytesAdded, g.CountAfter, g.BytesAfter, printable(g.Name))
	}
	_ = tw.Flush()
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}

// WriteText writes a summary line and the table.
func (d *Diff) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "%s heap diff %s -> %s: %+d objects, %+d bytes\n%s\n",
		d.Format, d.Before, d.After, d.CountAdded, d.BytesAdded, strings.Join(d.Lines(0), "\n"))
	return err
}

// printable makes a group name fit one table cell: control characters
// become spaces, and long names are cut.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 120 {
		s = string(r[:119]) + "…"
	}
	return s
}
