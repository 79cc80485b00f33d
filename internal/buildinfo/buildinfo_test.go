package buildinfo

import (
	"runtime/debug"
	"testing"
)

func build(version string, settings ...string) func() (*debug.BuildInfo, bool) {
	return func() (*debug.BuildInfo, bool) {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/generic-corp/soak-exporter", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi, true
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		stamped Info
		read    func() (*debug.BuildInfo, bool)
		want    Info
	}{
		{"go install @tag", Info{}, build("v1.4.2", "vcs.revision", "abc123", "vcs.time", "2026-12-01T10:00:00Z"),
			Info{Version: "1.4.2", Revision: "abc123", Date: "2026-12-01T10:00:00Z"}},
		{"go install without vcs settings (module proxy)", Info{}, build("v1.4.2"), Info{Version: "1.4.2"}},
		{"go build in a dirty checkout", Info{}, build("v0.0.0-20261204150000-abcdef123456+dirty", "vcs.revision", "abcdef123456ff", "vcs.modified", "true", "vcs.time", "2026-12-04T15:00:00Z"),
			Info{Version: "0.0.0-20261204150000-abcdef123456+dirty", Revision: "abcdef123456ff-modified", Date: "2026-12-04T15:00:00Z"}},
		{"go run without vcs", Info{}, build("(devel)"), Info{Version: "unknown"}},
		{"no build info", Info{}, func() (*debug.BuildInfo, bool) { return nil, false }, Info{Version: "unknown"}},
		{"nil reader", Info{}, nil, Info{Version: "unknown"}},
		{"make build stamps win", Info{Version: "2.0.0", Revision: "feed", Date: "20261204-15:00:00"}, build("v1.0.0", "vcs.revision", "abc", "vcs.time", "x"),
			Info{Version: "2.0.0", Revision: "feed", Date: "20261204-15:00:00"}},
		{"partial stamp completed", Info{Version: "2.0.0"}, build("v1.0.0", "vcs.revision", "abc", "vcs.modified", "false"),
			Info{Version: "2.0.0", Revision: "abc"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Resolve(tc.stamped, tc.read); got != tc.want {
				t.Fatalf("Resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}
