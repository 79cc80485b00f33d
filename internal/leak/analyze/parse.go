package analyze

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Series is one recorded memory series.
type Series struct {
	// Name identifies the series: "bytes" for a CSV, the labels for a
	// Prometheus series.
	Name   string
	Points []detect.Point
}

// InputError is a problem with the input, located when possible.
type InputError struct {
	// Line is the 1-based line of the problem, 0 when not known.
	Line int
	// Col is the 1-based column, 0 when not known.
	Col int
	Msg string
}

func (e *InputError) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// maxTimestamp bounds Unix timestamps (year 5138) so conversions cannot
// overflow.
const maxTimestamp = 1e11

func parseTimestamp(s string) (time.Time, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return time.Time{}, fmt.Errorf("timestamp %q is not a number of Unix seconds", s)
	}
	if v <= 0 || v >= maxTimestamp {
		return time.Time{}, fmt.Errorf("timestamp %s is out of range (Unix seconds after 1970)", strings.TrimSpace(s))
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
}

func parseBytes(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("bytes %q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("bytes %q must be a finite number >= 0", s)
	}
	return v, nil
}

// ParseCSV reads "timestamp,bytes" rows (a header line first, timestamps in
// Unix seconds, strictly increasing). Blank lines are skipped.
func ParseCSV(r io.Reader) (Series, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	s := Series{Name: "bytes"}
	header := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			return Series{}, &InputError{Line: perr.Line, Col: perr.Column, Msg: perr.Err.Error()}
		}
		if err != nil {
			return Series{}, &InputError{Msg: err.Error()}
		}
		line, _ := cr.FieldPos(0)
		if header {
			h := make([]string, len(rec))
			for i, f := range rec {
				h[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(f, "\ufeff")))
			}
			header = false
			if len(h) == 2 && h[0] == "timestamp" && h[1] == "bytes" {
				continue
			}
			// No header: the first row must already be data.
			if !isDataRow(rec) {
				return Series{}, &InputError{Line: line, Msg: fmt.Sprintf("header must be \"timestamp,bytes\" (or no header and two numeric columns), got %q", strings.Join(rec, ","))}
			}
		}
		if len(rec) != 2 {
			return Series{}, &InputError{Line: line, Msg: fmt.Sprintf("want 2 fields (timestamp,bytes), got %d", len(rec))}
		}
		t, err := parseTimestamp(rec[0])
		if err != nil {
			return Series{}, &InputError{Line: line, Msg: err.Error()}
		}
		b, err := parseBytes(rec[1])
		if err != nil {
			return Series{}, &InputError{Line: line, Msg: err.Error()}
		}
		if n := len(s.Points); n > 0 && !t.After(s.Points[n-1].Time) {
			return Series{}, &InputError{Line: line, Msg: fmt.Sprintf("timestamp %s is not after the previous one (%s): rows must be in time order without duplicates",
				strings.TrimSpace(rec[0]), fmtUnix(s.Points[n-1].Time))}
		}
		s.Points = append(s.Points, detect.Point{Time: t, Bytes: b})
	}
	if header {
		return Series{}, &InputError{Msg: "empty input: expected rows \"timestamp,bytes\""}
	}
	return s, nil
}

// isDataRow tells whether rec is a valid "timestamp,bytes" data row.
func isDataRow(rec []string) bool {
	if len(rec) != 2 {
		return false
	}
	_, terr := parseTimestamp(rec[0])
	_, berr := parseBytes(rec[1])
	return terr == nil && berr == nil
}

func fmtUnix(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', -1, 64)
}

// promResponse is the part of a /api/v1/query_range response that is read.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      *struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string   `json:"metric"`
			Values [][]json.RawMessage `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// ParsePromJSON reads a Prometheus /api/v1/query_range response and returns
// all its series (a matrix).
func ParsePromJSON(data []byte) ([]Series, error) {
	var resp promResponse
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&resp); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := position(data, int(dec.InputOffset()))
		return nil, &InputError{Line: line, Col: col, Msg: "unexpected data after the JSON object"}
	}
	switch {
	case resp.Status == "error":
		return nil, &InputError{Msg: fmt.Sprintf("Prometheus returned an error: %s: %s", resp.ErrorType, resp.Error)}
	case resp.Status != "success":
		return nil, &InputError{Msg: fmt.Sprintf("not a Prometheus API response: status %q, want \"success\"", resp.Status)}
	case resp.Data == nil:
		return nil, &InputError{Msg: "not a Prometheus API response: no \"data\""}
	case resp.Data.ResultType != "matrix":
		return nil, &InputError{Msg: fmt.Sprintf("resultType is %q: save a range query (/api/v1/query_range), whose result is a matrix", resp.Data.ResultType)}
	case len(resp.Data.Result) == 0:
		return nil, &InputError{Msg: "the range query returned no series"}
	}
	out := make([]Series, 0, len(resp.Data.Result))
	for i, r := range resp.Data.Result {
		s := Series{Name: seriesName(r.Metric)}
		where := fmt.Sprintf("series %d (%s)", i, s.Name)
		if len(r.Values) == 0 {
			return nil, &InputError{Msg: where + ": no values"}
		}
		for j, v := range r.Values {
			if len(v) != 2 {
				return nil, &InputError{Msg: fmt.Sprintf("%s, point %d: want [timestamp, \"value\"], got %d elements", where, j, len(v))}
			}
			var ts float64
			if err := json.Unmarshal(v[0], &ts); err != nil {
				return nil, &InputError{Msg: fmt.Sprintf("%s, point %d: timestamp %s is not a number", where, j, v[0])}
			}
			t, err := parseTimestamp(strconv.FormatFloat(ts, 'f', -1, 64))
			if err != nil {
				return nil, &InputError{Msg: fmt.Sprintf("%s, point %d: %v", where, j, err)}
			}
			var val string
			if err := json.Unmarshal(v[1], &val); err != nil {
				return nil, &InputError{Msg: fmt.Sprintf("%s, point %d: value %s must be a quoted number", where, j, v[1])}
			}
			b, err := parseBytes(val)
			if err != nil {
				return nil, &InputError{Msg: fmt.Sprintf("%s, point %d: %v", where, j, err)}
			}
			if n := len(s.Points); n > 0 && !t.After(s.Points[n-1].Time) {
				return nil, &InputError{Msg: fmt.Sprintf("%s, point %d: timestamp %s is not after the previous one", where, j, fmtUnix(t))}
			}
			s.Points = append(s.Points, detect.Point{Time: t, Bytes: b})
		}
		out = append(out, s)
	}
	return out, nil
}

func seriesName(m map[string]string) string {
	name := m["__name__"]
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name)
	if len(keys) > 0 || name == "" {
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(k + "=" + strconv.Quote(m[k]))
		}
		b.WriteString("}")
	}
	return b.String()
}

func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line, col := position(data, int(syn.Offset)-1)
		return &InputError{Line: line, Col: col, Msg: "invalid JSON: " + syn.Error()}
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		line, col := position(data, int(typ.Offset)-1)
		field := typ.Field
		if field == "" {
			field = "the response"
		}
		return &InputError{Line: line, Col: col, Msg: fmt.Sprintf("unexpected JSON %s for %s, want %s", typ.Value, field, typ.Type)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &InputError{Msg: "invalid JSON: unexpected end of input"}
	}
	return &InputError{Msg: "invalid JSON: " + err.Error()}
}

// position converts a byte offset to a 1-based line and column.
func position(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}
