package analyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated inputs and golden files in testdata")

// series generates a GC-like memory series: every step seconds for hours,
// floor base + leak after leakFrom hours, a 50 s sawtooth of 40 %, and a
// little noise. Deterministic.
func series(seed uint64, hours, step, base, leakMBh, leakFrom float64) [][2]float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	var out [][2]float64
	t0 := 1_700_000_000.0
	wander := 0.0
	for s := 0.0; s < hours*3600; s += step {
		wander = 0.98*wander + 0.3e6*r.NormFloat64()
		floor := base + wander
		if h := s / 3600; h > leakFrom {
			floor += leakMBh * 1e6 * (h - leakFrom)
		}
		phase := math.Mod(s+r.Float64()*5, 50) / 50
		out = append(out, [2]float64{t0 + s, math.Round(floor*(1+0.4*phase) + 0.5e6*r.NormFloat64())})
	}
	return out
}

func writeCSV(t *testing.T, name string, rows [][2]float64) {
	writeRows(t, name, "timestamp,bytes\n", rows)
}

func writeRows(t *testing.T, name, header string, rows [][2]float64) {
	var b strings.Builder
	b.WriteString(header)
	for _, r := range rows {
		fmt.Fprintf(&b, "%.0f,%.0f\n", r[0], r[1])
	}
	if err := os.WriteFile(filepath.Join("testdata", name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeProm(t *testing.T, name string, a, b [][2]float64) {
	type res struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	conv := func(rows [][2]float64) [][2]any {
		out := make([][2]any, len(rows))
		for i, r := range rows {
			out[i] = [2]any{r[0], fmt.Sprintf("%.0f", r[1])}
		}
		return out
	}
	doc := map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": []res{
		{Metric: map[string]string{"__name__": "nodejs_heap_size_used_bytes", "job": "api"}, Values: conv(a)},
		{Metric: map[string]string{"__name__": "process_resident_memory_bytes", "job": "api"}, Values: conv(b)},
	}}}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// generateInputs rewrites the committed inputs (with -update).
func generateInputs(t *testing.T) {
	writeCSV(t, "steady.csv", series(1, 26, 60, 150e6, 0, 0))
	writeCSV(t, "leak.csv", series(2, 26, 60, 150e6, 4, 12))
	writeCSV(t, "short.csv", series(3, 5.0/60, 5, 80e6, 0, 0))
	writeProm(t, "range.json", series(4, 8, 60, 60e6, 30, 4), series(5, 8, 60, 200e6, 0, 0))
	// Issue 10: a 6 h recording leaking 20 MB/h from its start, headerless.
	writeRows(t, "leak6h_noheader.csv", "", series(6, 6, 15, 150e6, 20, 0))
}

func TestGolden(t *testing.T) {
	if *update {
		generateInputs(t)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"steady", []string{"--grace", "1h", "testdata/steady.csv"}, ExitNoLeak},
		{"steady_json", []string{"--json", "--grace", "1h", "testdata/steady.csv"}, ExitNoLeak},
		{"leak", []string{"--grace", "1h", "testdata/leak.csv"}, ExitLeak},
		{"leak_json", []string{"--json", "--grace=1h", "testdata/leak.csv"}, ExitLeak},
		// Defaults on 5 minutes of data: cannot tell, never 0.
		{"short", []string{"testdata/short.csv"}, ExitCannotTell},
		// Every series is analysed without --all; the leaking one decides.
		{"range_first", []string{"--grace", "1h", "testdata/range.json"}, ExitLeak},
		// A recording is judged without the live start-up grace.
		{"leak6h_noheader", []string{"testdata/leak6h_noheader.csv"}, ExitLeak},
		{"range_all_json", []string{"--json", "--all", "--grace", "1h", "--limit-bytes", "1e9", "testdata/range.json"}, ExitLeak},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := AnalyzeMain(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if (stderr.Len() > 0) != (tc.code == ExitCannotTell) {
				t.Errorf("stderr: %q", stderr.String())
			}
			golden := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if stdout.String() != string(want) {
				t.Errorf("output differs from %s:\n%s", golden, stdout.String())
			}
			if strings.HasSuffix(tc.name, "json") {
				var doc map[string]any
				if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
					t.Fatal(err)
				}
				if _, ok := doc["leak_suspected"].(bool); !ok {
					t.Error("no leak_suspected")
				}
				if _, ok := doc["slope_bytes_per_second"]; !ok {
					t.Error("no slope_bytes_per_second")
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"empty", "", "empty input"},
		{"header", "time,value\n1,2\n", `line 1: header must be "timestamp,bytes" (or no header and two numeric columns), got "time,value"`},
		{"fields", "timestamp,bytes\n1700000000,1\n1700000005\n", "line 3: want 2 fields (timestamp,bytes), got 1"},
		{"bytes", "timestamp,bytes\n1700000000,12MB\n", `line 2: bytes "12MB" is not a number`},
		{"negative", "timestamp,bytes\n1700000000,-5\n", `line 2: bytes "-5" must be a finite number >= 0`},
		{"timestamp", "timestamp,bytes\n2024-01-01,5\n", `line 2: timestamp "2024-01-01" is not a number of Unix seconds`},
		{"millis", "timestamp,bytes\n1700000000000,5\n", "line 2: timestamp 1700000000000 is out of range"},
		{"order", "timestamp,bytes\n1700000005,1\n1700000000,2\n", "line 3: timestamp 1700000000 is not after the previous one (1700000005)"},
		{"quote", "timestamp,bytes\n\"17,1\n", "line 2"},
		{"no rows", "timestamp,bytes\n", "no samples after the header"},
		{"json syntax", "{\"status\":\"success\",\n\"data\": {,}}", "line 2, column 10: invalid JSON"},
		{"json type", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,2]]}]}}`, "value 2 must be a quoted number"},
		{"prom error", `{"status":"error","errorType":"bad_data","error":"parse error"}`, "Prometheus returned an error: bad_data: parse error"},
		{"vector", `{"status":"success","data":{"resultType":"vector","result":[]}}`, `resultType is "vector"`},
		{"no series", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, "no series"},
		{"prom value", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"m"},"values":[[1700000000,"1"],[1700000005,"x"]]}]}}`, `series 0 (m), point 1: bytes "x" is not a number`},
		{"prom order", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1700000000,"1"],[1700000000,"2"]]}]}}`, `series 0 ({a="b"}), point 1: timestamp 1700000000 is not after`},
		{"trailing", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"1"]]}]}} {}`, "unexpected data after the JSON object"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.input), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := AnalyzeMain([]string{path}, &stdout, &stderr); code != ExitBadInput {
				t.Errorf("exit %d, want 2; stdout %s", code, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.want) || !strings.HasPrefix(stderr.String(), "leak analyze: ") {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"--windows", "1h,x", "f"}, {"--p-value", "2", "testdata/steady.csv"}, {"--nope"}, {"/does/not/exist"}} {
		var stdout, stderr bytes.Buffer
		if code := AnalyzeMain(args, &stdout, &stderr); code != ExitBadInput || stderr.Len() == 0 {
			t.Errorf("%v: exit %d stderr %q", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := AnalyzeMain([]string{"-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "usage: soak-exporter leak analyze") {
		t.Errorf("help: %d %q", code, stderr.String())
	}
}

func TestParseCSVAcceptsVariants(t *testing.T) {
	s, err := ParseCSV(strings.NewReader("\ufeffTimestamp, Bytes\r\n1700000000.5, 100\r\n\r\n1700000001,1e3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Points) != 2 || s.Points[0].Time.UnixNano() != 1_700_000_000_500_000_000 || s.Points[1].Bytes != 1000 {
		t.Errorf("points %+v", s.Points)
	}
	var ie *InputError
	if _, err := ParseCSV(strings.NewReader("timestamp,bytes\n1,NaN\n")); !errors.As(err, &ie) || ie.Line != 2 {
		t.Errorf("err %v", err)
	}
}

func TestParseCSVHeaderless(t *testing.T) {
	s, err := ParseCSV(strings.NewReader("1700000000,100\n1700000005,200\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Points) != 2 || s.Points[0].Bytes != 100 || s.Points[1].Bytes != 200 {
		t.Fatalf("points %+v", s.Points)
	}
}

// TestWorstSeriesDecides: leak beats cannot tell beats no leak.
func TestWorstSeriesDecides(t *testing.T) {
	const no, cant, leak = "no_leak", "insufficient_data", "leak_suspected"
	tests := []struct {
		verdicts []string
		want     string
	}{
		{[]string{no, no}, no},
		{[]string{no, cant}, cant},
		{[]string{cant, no}, cant},
		{[]string{cant, leak, no}, leak},
		{nil, cant},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.verdicts, "+"), func(t *testing.T) {
			out := Output{Verdict: cant}
			for _, v := range tc.verdicts {
				out.Series = append(out.Series, SeriesResult{Verdict: v, LeakSuspected: v == leak})
			}
			summarise(&out)
			if out.Verdict != tc.want || out.LeakSuspected != (tc.want == leak) {
				t.Fatalf("verdict %s leak %v, want %s", out.Verdict, out.LeakSuspected, tc.want)
			}
		})
	}
}
