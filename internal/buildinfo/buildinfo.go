// Package buildinfo gives the program a real version when the linker did
// not stamp one: `go install ...@v1.2.3` and `go run` leave the ldflags
// variables of github.com/prometheus/common/version empty, but the Go
// toolchain records the module version and the VCS revision, time and
// dirty flag in the binary (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"
)

// Info is what --version, soak_build_info and the landing page show.
type Info struct {
	Version  string // "1.2.3", "0.0.0-20261204150000-abcdef123456+dirty", or "unknown"
	Revision string // VCS commit, "-modified" appended when the tree was dirty
	Date     string // VCS commit time (RFC 3339) when not stamped
}

// Resolve completes stamped (the ldflags values, possibly empty) from the
// build information read returns (runtime/debug.ReadBuildInfo in the
// program). Stamped values win; nothing is invented: a field neither
// source knows stays empty, except Version, which is then "unknown".
func Resolve(stamped Info, read func() (*debug.BuildInfo, bool)) Info {
	out := stamped
	var bi *debug.BuildInfo
	if read != nil {
		if b, ok := read(); ok {
			bi = b
		}
	}
	if bi != nil {
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if out.Version == "" {
			// "(devel)" is what go build prints without VCS information.
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				out.Version = strings.TrimPrefix(v, "v")
			}
		}
		if out.Revision == "" {
			if r := settings["vcs.revision"]; r != "" {
				out.Revision = r
				if settings["vcs.modified"] == "true" {
					out.Revision += "-modified"
				}
			}
		}
		if out.Date == "" {
			out.Date = settings["vcs.time"]
		}
	}
	if out.Version == "" {
		out.Version = "unknown"
	}
	return out
}

// Stamp fills the empty version variables of
// github.com/prometheus/common/version (which --version, the version
// collector behind soak_build_info and the startup log read) from the
// binary's build information. main calls it once, first, before anything
// reads the version; it returns what it set.
func Stamp() Info {
	info := Resolve(Info{Version: version.Version, Revision: version.Revision, Date: version.BuildDate}, debug.ReadBuildInfo)
	version.Version, version.Revision, version.BuildDate = info.Version, info.Revision, info.Date
	return info
}
