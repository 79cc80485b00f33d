package analyze

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// checkSeries asserts what every parser promises of a series it accepts.
func checkSeries(t *testing.T, s Series) {
	t.Helper()
	for i, p := range s.Points {
		if math.IsNaN(p.Bytes) || math.IsInf(p.Bytes, 0) || p.Bytes < 0 {
			t.Fatalf("point %d: bytes %v", i, p.Bytes)
		}
		if i > 0 && !p.Time.After(s.Points[i-1].Time) {
			t.Fatalf("point %d: time not increasing", i)
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"timestamp,bytes\n1700000000,100\n1700000005,200\n",
		"timestamp,bytes\n",
		"Timestamp, Bytes\r\n1700000000.25,1e6\r\n",
		"timestamp,bytes\n1700000000,\"12\"\n",
		"timestamp,bytes\n1700000005,1\n1700000000,2\n",
		"timestamp,bytes\n1e11,1\n",
		"x\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseCSV(bytes.NewReader(data))
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Error() == "" {
				t.Fatalf("error %v is not a located InputError", err)
			}
			return
		}
		checkSeries(t, s)
	})
}

func FuzzParsePromJSON(f *testing.F) {
	for _, s := range []string{
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"m","a":"b"},"values":[[1700000000,"1"],[1700000005.5,"2"]]}]}}`,
		`{"status":"error","errorType":"bad_data","error":"x"}`,
		`{"status":"success","data":{"resultType":"vector","result":[]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"NaN"]]}]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1e300,"1"]]}]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1",3]]}]}}`,
		`{"status":"success"`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := ParsePromJSON(data)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Error() == "" {
				t.Fatalf("error %v is not an InputError", err)
			}
			return
		}
		if len(ss) == 0 {
			t.Fatal("no series and no error")
		}
		for _, s := range ss {
			if len(s.Points) == 0 {
				t.Fatal("empty series accepted")
			}
			checkSeries(t, s)
		}
	})
}
