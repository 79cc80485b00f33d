// Command vulndb builds an offline Go vulnerability database for govulncheck
// from the golang.org/x/vulndb module, fetched through the Go module proxy.
//
// The module holds the database's source: data/reports/*.yaml (the reports)
// and data/osv/*.json (one OSV entry per report, already generated, but with
// "modified" left at the zero time: the real database takes it from git
// history). govulncheck's -db file://DIR wants the v1 layout of
// https://go.dev/security/vuln/database#api:
//
//	DIR/index/db.json       {"modified": T}
//	DIR/index/modules.json  [{"path": M, "vulns": [{"id": ID, "modified": T}]}]
//	DIR/ID/<ID>.json        the OSV entries
//
// vulndb copies the entries and writes the two indexes. A zero "modified" is
// replaced by the module version's commit time (from its pseudo-version), so
// that govulncheck reports how old the database is. The optional "fixed" of
// the modules index is left out: it only lets govulncheck skip fetching
// entries, which are then matched against their affected ranges anyway.
//
// Usage: go run ./scripts/vulndb -version v0.0.0-... -out DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

const module = "golang.org/x/vulndb"

func main() {
	version := flag.String("version", "", "version of "+module+" (a pseudo-version, see Makefile)")
	out := flag.String("out", "", "directory to write the database into (replaced)")
	flag.Parse()
	if *version == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "vulndb: usage: vulndb -version VERSION -out DIR")
		os.Exit(2)
	}
	n, err := build(*version, *out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vulndb: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("vulndb: %d entries from %s@%s in %s\n", n, module, *version, *out)
}

// download fetches the module through the Go module proxy (or the module
// cache) and returns its directory.
func download(version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir() // outside any module: go.mod and go.sum stay as they are
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(b, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w: %s", module, version, err, strings.TrimSpace(stderr.String()))
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no directory in %q", module, version, b)
	}
	return info.Dir, nil
}

var pseudoTime = regexp.MustCompile(`-(\d{14})-[0-9a-f]{12}$`)

// entry is the part of an OSV entry that the indexes need.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

func build(version, out string) (int, error) {
	stamp := time.Time{}
	if m := pseudoTime.FindStringSubmatch(version); m != nil {
		t, err := time.Parse("20060102150405", m[1])
		if err != nil {
			return 0, fmt.Errorf("version %s: %w", version, err)
		}
		stamp = t.UTC()
	}
	dir, err := download(version)
	if err != nil {
		return 0, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "data", "osv", "*.json"))
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("%s@%s has no data/osv/*.json", module, version)
	}
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "ID"), 0o755); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "index"), 0o755); err != nil {
		return 0, err
	}
	modules := map[string]*moduleMeta{}
	dbModified := stamp
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return 0, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		if e.ID == "" || filepath.Base(f) != e.ID+".json" {
			return 0, fmt.Errorf("%s: id %q does not match the file name", filepath.Base(f), e.ID)
		}
		if e.Modified.IsZero() {
			e.Modified = stamp
		}
		if e.Modified.After(dbModified) {
			dbModified = e.Modified
		}
		seen := map[string]bool{}
		for _, a := range e.Affected {
			p := a.Package.Name
			if p == "" || seen[p] {
				continue
			}
			seen[p] = true
			m, ok := modules[p]
			if !ok {
				m = &moduleMeta{Path: p}
				modules[p] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
		}
		if err := os.WriteFile(filepath.Join(tmp, "ID", e.ID+".json"), b, 0o644); err != nil {
			return 0, err
		}
	}
	metas := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		metas = append(metas, m)
	}
	sort.Slice(metas, func(i, j int) bool { return metas[i].Path < metas[j].Path })
	if err := writeJSON(filepath.Join(tmp, "index", "modules.json"), metas); err != nil {
		return 0, err
	}
	if err := writeJSON(filepath.Join(tmp, "index", "db.json"), map[string]time.Time{"modified": dbModified}); err != nil {
		return 0, err
	}
	if err := os.RemoveAll(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return 0, err
	}
	return len(files), nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
