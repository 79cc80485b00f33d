package jsonpath_test

import (
	"testing"

	"github.com/generic-corp/soak-exporter/internal/jsonpath"
)

func TestLookup(t *testing.T) {
	doc := []byte(` {"a": {"b": [1, {"c": "x"}]}, "id": 7, "s": "12"} `)
	tests := []struct {
		path, want string
		ok         bool
	}{
		{"", `{"a": {"b": [1, {"c": "x"}]}, "id": 7, "s": "12"}`, true},
		{"id", "7", true},
		{"a.b.0", "1", true},
		{"a.b.1.c", `"x"`, true},
		{"a.b.2", "", false},
		{"a.b.-1", "", false},
		{"a.x", "", false},
		{"id.x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := jsonpath.Lookup(doc, tt.path)
			if ok != tt.ok || string(got) != tt.want {
				t.Errorf("Lookup(%q) = %s, %v; want %s, %v", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		raw  string
		want int64
		ok   bool
	}{
		{"42", 42, true}, {"1.7e12", 1_700_000_000_000, true}, {"3.0", 3, true}, {`"17"`, 17, true},
		{"1.5", 0, false}, {`"x1"`, 0, false}, {`""`, 0, false}, {"", 0, false}, {"null", 0, false},
	}
	for _, tt := range tests {
		got, ok := jsonpath.Int([]byte(tt.raw))
		if ok != tt.ok || got != tt.want {
			t.Errorf("Int(%s) = %d, %v; want %d, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCanonical(t *testing.T) {
	pairs := [][2]string{
		{`{"b":1,"a":"x"}`, `{ "a" : "x", "b" : 1.0 }`},
		{`"m-1"`, ` "m-1"`},
		{`17`, `1.7e1`},
	}
	for _, p := range pairs {
		if a, b := jsonpath.Canonical([]byte(p[0])), jsonpath.Canonical([]byte(p[1])); a != b {
			t.Errorf("Canonical(%s) = %s, Canonical(%s) = %s", p[0], a, p[1], b)
		}
	}
	if jsonpath.Canonical([]byte(`"17"`)) == jsonpath.Canonical([]byte(`17`)) {
		t.Error("a string and a number must differ")
	}
}
