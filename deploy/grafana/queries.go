package grafana

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// FileName is the committed dashboard's file name in this directory.
const FileName = "soak-exporter.json"

//go:embed soak-exporter.json
var committedJSON string

// JSON returns a copy of the committed dashboard JSON (soak-exporter.json).
func JSON() []byte { return []byte(committedJSON) }

// PanelQuery is one PromQL query of one dashboard panel, as committed.
type PanelQuery struct {
	// Row is the title of the row the panel is in.
	Row string
	// PanelID and Panel are the panel's id and title.
	PanelID int
	Panel   string
	// RefID is the query's refId (A, B, ...) within the panel.
	RefID string
	// Expr is the query with Grafana variables ($job, $__rate_interval...).
	Expr string
	// Format is time_series or heatmap.
	Format string
}

// PanelQueries returns every query of every panel of the committed
// dashboard, in panel order. Use Expand to turn one into plain PromQL.
func PanelQueries() ([]PanelQuery, error) { return panelQueries(JSON()) }

func panelQueries(data []byte) ([]PanelQuery, error) {
	var d struct {
		Panels []jsonPanel `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard: %w", err)
	}
	var out []PanelQuery
	row := ""
	var walk func(ps []jsonPanel)
	walk = func(ps []jsonPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				row = p.Title
				walk(p.Panels) // collapsed rows hold their panels
				continue
			}
			for _, t := range p.Targets {
				out = append(out, PanelQuery{Row: row, PanelID: p.ID, Panel: p.Title, RefID: t.RefID, Expr: t.Expr, Format: t.Format})
			}
		}
	}
	walk(d.Panels)
	return out, nil
}

type jsonPanel struct {
	ID      int         `json:"id"`
	Type    string      `json:"type"`
	Title   string      `json:"title"`
	Panels  []jsonPanel `json:"panels"`
	Targets []struct {
		RefID  string `json:"refId"`
		Expr   string `json:"expr"`
		Format string `json:"format"`
	} `json:"targets"`
}

// DefaultVars returns variable values that select everything: ".*" for the
// job, instance, target and window variables (their All value) and rate
// interval for $__rate_interval. Pass a rate interval of at least four
// scrape intervals, as Grafana would compute it, e.g. "1m".
func DefaultVars(rateInterval string) map[string]string {
	return map[string]string{
		"job": ".*", "instance": ".*", "target": ".*", "window": ".*",
		"__rate_interval": rateInterval,
	}
}

// Expand replaces the Grafana variables of expr ($name, ${name} and
// ${name:format}) with vars[name], the longest names first, and returns an
// error naming any variable left without a value.
func Expand(expr string, vars map[string]string) (string, error) {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	out := expr
	for _, n := range names {
		v := vars[n]
		out = regexp.MustCompile(`\$\{`+regexp.QuoteMeta(n)+`(?::[a-z]+)?\}`).ReplaceAllLiteralString(out, v)
		out = regexp.MustCompile(`\$`+regexp.QuoteMeta(n)+`\b`).ReplaceAllLiteralString(out, v)
	}
	if i := strings.Index(out, "$"); i >= 0 {
		return "", fmt.Errorf("expand %q: variable without a value at %q", expr, out[i:])
	}
	return out, nil
}
