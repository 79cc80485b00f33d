package nearest

import "testing"

func TestName(t *testing.T) {
	tests := []struct {
		s     string
		known []string
		want  string
		d     int
	}{
		{"timout", []string{"timeout", "think", "name"}, "timeout", 1},
		{"SOAK_CLIENT", []string{"SOAK_CLIENTS", "SOAK_EVENT_RATE"}, "SOAK_CLIENTS", 1},
		{"abc", []string{"abc"}, "abc", 0},
		{"", []string{"ab", "a"}, "a", 1},
		{"x", nil, "", -1},
	}
	for _, tt := range tests {
		if got, d := Name(tt.s, tt.known); got != tt.want || d != tt.d {
			t.Errorf("Name(%q) = %q, %d; want %q, %d", tt.s, got, d, tt.want, tt.d)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"SOAK_CLIENT", "SOAK_CLIENTS", 1}, {"flaw", "lawn", 2}} {
		if got := distance(tc.a, tc.b); got != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
