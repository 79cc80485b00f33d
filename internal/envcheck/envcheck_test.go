package envcheck

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

type inner struct {
	Clients int           `envconfig:"CLIENTS" default:"50" desc:"clients"`
	Timeout time.Duration `envconfig:"ACK_TIMEOUT" default:"5s" desc:"timeout"`
}

type Inner = inner

type spec struct {
	Inner
	Windows []time.Duration `envconfig:"LEAK_WINDOWS" default:"1h" desc:"windows"`
	Token   string          `envconfig:"AUTH_TOKEN" desc:"token"`
	Skipped string          `ignored:"true"`
}

type other struct {
	Rate float64 `envconfig:"EVENT_RATE" default:"100" desc:"rate"`
}

func TestVarsComeFromTheStructs(t *testing.T) {
	vars, err := Vars("soak", &spec{}, &other{}, &spec{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vars {
		got = append(got, v.Key+" "+v.Type)
	}
	want := "SOAK_ACK_TIMEOUT time.Duration,SOAK_AUTH_TOKEN string,SOAK_CLIENTS int,SOAK_EVENT_RATE float64,SOAK_LEAK_WINDOWS []time.Duration"
	if strings.Join(got, ",") != want {
		t.Fatalf("Vars = %q, want %q", strings.Join(got, ","), want)
	}
}

func TestFindUnknown(t *testing.T) {
	known, err := Vars("soak", &spec{}, &other{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  string
		want string // warning line; empty: none
	}{
		{"SOAK_CLIENT=10", "SOAK_CLIENT is not a known variable; did you mean SOAK_CLIENTS?"},
		{"SOAK_EVENTS_RATE=5", "SOAK_EVENT_RATE"},
		{"SOAK_ACK_TIMOUT=5", "did you mean SOAK_ACK_TIMEOUT?"},
		{"SOAK_AUTH_TOKN=hunter2-value", "did you mean SOAK_AUTH_TOKEN?"},
		{"SOAK_COMPLETELY_DIFFERENT=1", "SOAK_COMPLETELY_DIFFERENT is not a known variable (see soak-exporter --help); it is ignored"},
		{"SOAK_CLIENTS=10", ""},
		{"PATH=/bin", ""},
		{"SOAKCLIENTS=1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			got := FindUnknown("soak", []string{tc.env}, known)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("FindUnknown = %v, want none", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0].String(), tc.want) {
				t.Fatalf("FindUnknown = %v, want one containing %q", got, tc.want)
			}
			_, value, _ := strings.Cut(tc.env, "=")
			if strings.Contains(got[0].String(), value) {
				t.Fatalf("the warning %q shows the value %q", got[0], value)
			}
		})
	}
}

func TestNormalizeDurations(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    spec
		wantErr string
	}{
		{"go durations unchanged", map[string]string{"SOAK_ACK_TIMEOUT": "500ms", "SOAK_LEAK_WINDOWS": "1h,5h"},
			spec{Inner: Inner{Clients: 50, Timeout: 500 * time.Millisecond}, Windows: []time.Duration{time.Hour, 5 * time.Hour}}, ""},
		{"plain seconds", map[string]string{"SOAK_ACK_TIMEOUT": "5"},
			spec{Inner: Inner{Clients: 50, Timeout: 5 * time.Second}, Windows: []time.Duration{time.Hour}}, ""},
		{"fraction of a second", map[string]string{"SOAK_ACK_TIMEOUT": " 0.5 "},
			spec{Inner: Inner{Clients: 50, Timeout: 500 * time.Millisecond}, Windows: []time.Duration{time.Hour}}, ""},
		{"mixed list", map[string]string{"SOAK_LEAK_WINDOWS": "3600,5h"},
			spec{Inner: Inner{Clients: 50, Timeout: 5 * time.Second}, Windows: []time.Duration{time.Hour, 5 * time.Hour}}, ""},
		{"zero", map[string]string{"SOAK_ACK_TIMEOUT": "0"},
			spec{Inner: Inner{Clients: 50}, Windows: []time.Duration{time.Hour}}, ""},
		{"garbage", map[string]string{"SOAK_ACK_TIMEOUT": "soon"}, spec{},
			`SOAK_ACK_TIMEOUT: want a Go duration (500ms, 5s, 1h30m) or a number of seconds (5, 0.5), got "soon"`},
		{"infinite", map[string]string{"SOAK_ACK_TIMEOUT": "inf"}, spec{}, `SOAK_ACK_TIMEOUT: want a Go duration`},
		{"too large", map[string]string{"SOAK_ACK_TIMEOUT": "1e12"}, spec{}, `SOAK_ACK_TIMEOUT: want a Go duration`},
		{"garbage in a list", map[string]string{"SOAK_LEAK_WINDOWS": "1h,x"}, spec{}, `SOAK_LEAK_WINDOWS: want a Go duration`},
		{"other types untouched", map[string]string{"SOAK_CLIENTS": "7"},
			spec{Inner: Inner{Clients: 7, Timeout: 5 * time.Second}, Windows: []time.Duration{time.Hour}}, ""},
	}
	vars, err := Vars("soak", &spec{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			set := func(k, v string) error { t.Setenv(k, v); return nil }
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			err := NormalizeDurations(vars, lookup, set)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got spec
			if err := envconfig.Process("soak", &got); err != nil {
				t.Fatalf("envconfig after NormalizeDurations: %v", err)
			}
			if got.Timeout != tc.want.Timeout || got.Clients != tc.want.Clients || len(got.Windows) != len(tc.want.Windows) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got.Windows {
				if got.Windows[i] != tc.want.Windows[i] {
					t.Fatalf("windows %v, want %v", got.Windows, tc.want.Windows)
				}
			}
		})
	}
}

func TestNormalizeDurationsReportsSetError(t *testing.T) {
	vars := []Var{{Key: "SOAK_ACK_TIMEOUT", Type: "time.Duration"}}
	err := NormalizeDurations(vars, func(string) (string, bool) { return "5", true }, func(string, string) error { return errors.New("read-only") })
	if err == nil || !strings.Contains(err.Error(), "SOAK_ACK_TIMEOUT: read-only") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseErrorNeverQuotesASecret(t *testing.T) {
	type cfg struct {
		Query   map[string]string `envconfig:"QUERY"`
		Headers map[string]string `envconfig:"HEADERS"`
		Clients int               `envconfig:"CLIENTS"`
	}
	const token = "VALUE-s3cr3t"
	tests := []struct {
		env, val, want string
	}{
		{"SOAK_QUERY", "access_token:" + token + ":x", "SOAK_QUERY: cannot parse the value as map[string]string"},
		{"SOAK_QUERY", "access_token-" + token, "SOAK_QUERY: cannot parse the value as"},
		{"SOAK_HEADERS", "Authorization" + token, "SOAK_HEADERS: cannot parse the value as"},
		{"SOAK_CLIENTS", "abc", `SOAK_CLIENTS: cannot parse "abc" as int`},
	}
	for _, tc := range tests {
		t.Run(tc.env+"="+tc.val, func(t *testing.T) {
			t.Setenv(tc.env, tc.val)
			err := envconfig.Process("soak", &cfg{})
			if err == nil {
				t.Fatal("envconfig accepted the value; the test proves nothing")
			}
			got := ParseError(err)
			if !strings.HasPrefix(got, tc.want) || strings.Contains(got, token) {
				t.Fatalf("ParseError = %q, want prefix %q and no %q", got, tc.want, token)
			}
		})
	}
}
