package heapsnap

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestParseV8(t *testing.T) {
	for _, tc := range []struct {
		file  string
		want  map[string]Group
		count int64
		bytes int64
	}{
		{"small-a.heapsnapshot", map[string]Group{"Foo": {2, 80}, "(string)": {1, 20}, "(closure)": {1, 32}, "(system)": {1, 0}, "(synthetic)": {1, 0}}, 6, 132},
		{"small-b.heapsnapshot", map[string]Group{"Foo": {5, 200}, `Bar "quoted" é`: {1, 100}, "(string)": {2, 40}, "(closure)": {1, 32}, "(system)": {1, 0}, "(synthetic)": {1, 0}}, 11, 372},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			a, err := ParseV8(f)
			if err != nil {
				t.Fatal(err)
			}
			if a.Count != tc.count || a.Bytes != tc.bytes {
				t.Errorf("totals = %d objects %d bytes, want %d, %d", a.Count, a.Bytes, tc.count, tc.bytes)
			}
			if len(a.Groups) != len(tc.want) {
				t.Errorf("groups = %v, want %v", a.Groups, tc.want)
			}
			for name, g := range tc.want {
				if a.Groups[name] != g {
					t.Errorf("group %q = %+v, want %+v", name, a.Groups[name], g)
				}
			}
		})
	}
}

func TestParseV8Bad(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "small-b.heapsnapshot"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"not json", "hello"},
		{"truncated", string(good[:len(good)/2])},
		{"truncated strings", string(good[:len(good)-10])},
		{"no nodes", `{"snapshot":{"meta":{"node_fields":["type","name","self_size"],"node_types":[["object"]]}},"strings":[]}`},
		{"node count", strings.Replace(string(good), `"node_count":11`, `"node_count":12`, 1)},
		{"float in nodes", strings.Replace(string(good), "3,1,5,40", "3,1,5,4.5", 1)},
		{"nodes first", `{"nodes":[1],"snapshot":{}}`},
		{"name beyond strings", `{"snapshot":{"meta":{"node_fields":["type","name","self_size"],"node_types":[["object"]]},"node_count":1},"nodes":[0,7,1],"strings":["a"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a, err := ParseV8(strings.NewReader(tc.in)); err == nil {
				t.Fatalf("ParseV8 = %+v, want an error", a)
			}
		})
	}
}

func TestDiffMain(t *testing.T) {
	a, b := filepath.Join("testdata", "small-a.heapsnapshot"), filepath.Join("testdata", "small-b.heapsnapshot")
	bad := filepath.Join(t.TempDir(), "bad.heapsnapshot")
	if err := os.WriteFile(bad, []byte(`{"snapshot":`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		golden string // stdout golden file, "" to skip
		stderr string // substring of stderr
	}{
		{"text", []string{a, b}, 0, "diff-small.txt", ""},
		{"json", []string{"--json", a, b}, 0, "diff-small.json", ""},
		{"top", []string{"--top", "1", a, b}, 0, "diff-small-top1.txt", ""},
		{"pprof", []string{filepath.Join("testdata", "heap-a.pb.gz"), filepath.Join("testdata", "heap-b.pb.gz")}, 0, "diff-pprof.txt", ""},
		{"one file", []string{a}, 2, "", "usage"},
		{"no such file", []string{a, "testdata/none"}, 2, "", "no such file"},
		{"bad snapshot", []string{a, bad}, 2, "", "bad.heapsnapshot"},
		{"mixed formats", []string{a, filepath.Join("testdata", "heap-a.pb.gz")}, 2, "", "cannot compare"},
		{"bad flag", []string{"--nope", a, b}, 2, "", "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := DiffMain(tc.args, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.stderr)
			}
			if tc.golden == "" {
				return
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), want)
			}
		})
	}
}
