package grafana

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/deploy/prometheus"
)

// loadDashboard decodes the committed JSON generically.
func loadDashboard(t *testing.T) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(JSON(), &d); err != nil {
		t.Fatalf("decode %s: %v", FileName, err)
	}
	return d
}

// dataPanels returns every non-row panel, including those inside rows.
func dataPanels(t *testing.T, d map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	var walk func(v any)
	walk = func(v any) {
		list, _ := v.([]any)
		for _, x := range list {
			p := x.(map[string]any)
			if p["type"] == "row" {
				walk(p["panels"])
				continue
			}
			out = append(out, p)
		}
	}
	walk(d["panels"])
	if len(out) == 0 {
		t.Fatal("dashboard has no panels")
	}
	return out
}

func exprs(p map[string]any) []string {
	var out []string
	ts, _ := p["targets"].([]any)
	for _, x := range ts {
		if e, ok := x.(map[string]any)["expr"].(string); ok {
			out = append(out, e)
		}
	}
	return out
}

func TestCommittedJSONUpToDate(t *testing.T) {
	built, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	disk, err := os.ReadFile(FileName)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, disk) {
		t.Fatalf("%s is stale: run `go generate ./deploy/grafana`", FileName)
	}
	if !bytes.Equal(disk, JSON()) {
		t.Fatalf("embedded %s differs from the file on disk; rebuild", FileName)
	}
}

func TestPanelsHaveUnitAndDescription(t *testing.T) {
	for _, p := range dataPanels(t, loadDashboard(t)) {
		title, _ := p["title"].(string)
		if title == "" {
			t.Errorf("panel %v has no title", p["id"])
		}
		if d, _ := p["description"].(string); strings.TrimSpace(d) == "" {
			t.Errorf("panel %q has no description", title)
		}
		fc, _ := p["fieldConfig"].(map[string]any)
		defaults, _ := fc["defaults"].(map[string]any)
		if u, _ := defaults["unit"].(string); u == "" {
			t.Errorf("panel %q has no fieldConfig.defaults.unit", title)
		}
		if len(exprs(p)) == 0 {
			t.Errorf("panel %q has no query", title)
		}
	}
}

func TestRatesUseRateInterval(t *testing.T) {
	rangeRE := regexp.MustCompile(`\[[^\]]*\]`)
	rateRE := regexp.MustCompile(`\b(rate|irate|increase|deriv|[a-z]+_over_time)\s*\(`)
	for _, p := range dataPanels(t, loadDashboard(t)) {
		for _, e := range exprs(p) {
			ranges := rangeRE.FindAllString(e, -1)
			for _, r := range ranges {
				if r != "[$__rate_interval]" {
					t.Errorf("panel %q: range %s, want [$__rate_interval] in %q", p["title"], r, e)
				}
			}
			if rateRE.MatchString(e) && len(ranges) == 0 {
				t.Errorf("panel %q: rate without a range in %q", p["title"], e)
			}
		}
	}
}

// TestDatasourceRefs walks the whole JSON: every datasource reference must
// be the ${datasource} variable, and the variable itself must exist.
func TestDatasourceRefs(t *testing.T) {
	d := loadDashboard(t)
	var walk func(path string, v any)
	refs := 0
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "datasource" {
					refs++
					switch ds := c.(type) {
					case map[string]any:
						if ds["uid"] != "${datasource}" || ds["type"] != "prometheus" {
							t.Errorf("%s.datasource = %v, want prometheus ${datasource}", path, ds)
						}
					case string:
						if ds != "${datasource}" {
							t.Errorf("%s.datasource = %q, want ${datasource}", path, ds)
						}
					default:
						t.Errorf("%s.datasource has type %T", path, c)
					}
				}
				walk(path+"."+k, c)
			}
		case []any:
			for _, c := range x {
				walk(path+"[]", c)
			}
		case string:
			if strings.Contains(x, "${DS_") {
				t.Errorf("%s uses an import-time datasource input: %q", path, x)
			}
		}
	}
	walk("$", d)
	if refs == 0 {
		t.Fatal("no datasource reference found")
	}
	if _, ok := d["__inputs"]; ok {
		t.Error("dashboard has __inputs (import-time datasource); use the datasource variable")
	}
}

func TestVariables(t *testing.T) {
	d := loadDashboard(t)
	list := d["templating"].(map[string]any)["list"].([]any)
	byName := map[string]map[string]any{}
	for _, x := range list {
		v := x.(map[string]any)
		byName[v["name"].(string)] = v
	}
	dsVar := byName["datasource"]
	if dsVar == nil || dsVar["type"] != "datasource" || dsVar["query"] != "prometheus" {
		t.Fatalf("datasource variable = %v, want type datasource, query prometheus", dsVar)
	}
	for _, name := range []string{"job", "instance", "target"} {
		v := byName[name]
		if v == nil || v["type"] != "query" {
			t.Errorf("variable %s missing or not a query variable: %v", name, v)
		}
	}
	records, err := prometheus.ParseRuleFile(prometheus.ShippedRuleFile())
	if err != nil {
		t.Fatal(err)
	}
	lv := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]+\)$`)
	for name, v := range byName {
		if v["type"] != "query" {
			continue
		}
		m := lv.FindStringSubmatch(v["query"].(string))
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", name, v["query"])
			continue
		}
		for _, n := range prometheus.ExprMetricNames(m[1]) {
			if !prometheus.IsAllowedMetric(n, records.RecordNames()) {
				t.Errorf("variable %s uses metric %q outside the contract", name, n)
			}
		}
	}
	if schema, _ := d["schemaVersion"].(float64); schema < 36 || schema > 41 {
		t.Errorf("schemaVersion %v, want about 39", d["schemaVersion"])
	}
}

func TestMetricNamesFromContract(t *testing.T) {
	rules, err := prometheus.ParseRuleFile(prometheus.ShippedRuleFile())
	if err != nil {
		t.Fatal(err)
	}
	records := rules.RecordNames()
	usedRecords := map[string]bool{}
	for _, p := range dataPanels(t, loadDashboard(t)) {
		for _, e := range exprs(p) {
			names := prometheus.ExprMetricNames(e)
			if len(names) == 0 {
				t.Errorf("panel %q: no metric in %q", p["title"], e)
			}
			for _, n := range names {
				if !prometheus.IsAllowedMetric(n, records) {
					t.Errorf("panel %q: metric %q is neither in the contract nor a recording rule", p["title"], n)
				}
				if slices.Contains(records, n) {
					usedRecords[n] = true
				}
			}
		}
	}
	if len(usedRecords) == 0 {
		t.Error("the dashboard uses none of the recording rules")
	}
}

// TestRequiredContent pins what issues 5 and 6 ask of the dashboard.
func TestRequiredContent(t *testing.T) {
	d := loadDashboard(t)
	var rows []string
	for _, x := range d["panels"].([]any) {
		if p := x.(map[string]any); p["type"] == "row" {
			rows = append(rows, p["title"].(string))
		}
	}
	if want := []string{"Overview", "Latency", "Connections", "Fan-out and push", "Memory", "Agent", "Scenarios", "Target vitals and evidence"}; !slices.Equal(rows, want) {
		t.Errorf("rows %v, want %v", rows, want)
	}
	all := ""
	types := map[string]bool{}
	thresholdsSeen := map[float64]bool{}
	for _, p := range dataPanels(t, d) {
		types[p["type"].(string)] = true
		all += strings.Join(exprs(p), "\n") + "\n"
		fc := p["fieldConfig"].(map[string]any)["defaults"].(map[string]any)
		if th, ok := fc["thresholds"].(map[string]any); ok {
			for _, s := range th["steps"].([]any) {
				if v, ok := s.(map[string]any)["value"].(float64); ok {
					thresholdsSeen[v] = true
				}
			}
		}
	}
	for _, want := range []string{
		"soak_clients_desired", "soak_clients_connected", "target:soak_connect_success:ratio_rate5m",
		"soak_event_latency_seconds_bucket", "histogram_quantile(0.99", "soak_connect_failures_total",
		"soak_disconnects_total", "soak_memory_bytes", "soak_leak_baseline_bytes", "soak_leak_suspected",
		"soak_leak_seconds_to_limit", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"go_goroutines", "soak_events_dropped_total",
		// Issue 6: fan-out and server push.
		"soak_fanout_delivered_total", "soak_fanout_lost_total", "sender_target_target:soak_fanout_lost:ratio_rate5m",
		"soak_fanout_latency_seconds_bucket", "sender_target_target:soak_fanout_latency_seconds:cross_replica_p95_rate5m",
		"soak_push_received_total", "soak_push_lost_total", "soak_push_missed_total", "soak_push_duplicated_total",
		"soak_push_out_of_order_total", "soak_push_latency_seconds_bucket",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel query uses %s", want)
		}
	}
	if !types["heatmap"] {
		t.Error("no heatmap panel")
	}
	for _, v := range []float64{0.5, 0.2, 0.995} {
		if !thresholdsSeen[v] {
			t.Errorf("no panel draws the %v threshold", v)
		}
	}
}

func TestLayout(t *testing.T) {
	d := loadDashboard(t)
	ids := map[float64]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	for _, x := range d["panels"].([]any) {
		p := x.(map[string]any)
		id := p["id"].(float64)
		if ids[id] {
			t.Errorf("duplicate panel id %v", id)
		}
		ids[id] = true
		g := p["gridPos"].(map[string]any)
		gx, gy, gw, gh := int(g["x"].(float64)), int(g["y"].(float64)), int(g["w"].(float64)), int(g["h"].(float64))
		if gx < 0 || gw <= 0 || gh <= 0 || gx+gw > 24 {
			t.Errorf("panel %q: gridPos %v out of the 24-column grid", p["title"], g)
		}
		for i := gx; i < gx+gw; i++ {
			for j := gy; j < gy+gh; j++ {
				if other, ok := used[cell{i, j}]; ok {
					t.Errorf("panels %q and %q overlap", other, p["title"])
					return
				}
				used[cell{i, j}] = p["title"].(string)
			}
		}
		refs := map[string]bool{}
		ts, _ := p["targets"].([]any)
		for _, tx := range ts {
			r := tx.(map[string]any)["refId"].(string)
			if r == "" || refs[r] {
				t.Errorf("panel %q: empty or duplicate refId %q", p["title"], r)
			}
			refs[r] = true
		}
	}
}

func TestPanelQueries(t *testing.T) {
	qs, err := PanelQueries()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range dataPanels(t, loadDashboard(t)) {
		n += len(exprs(p))
	}
	if len(qs) != n || n == 0 {
		t.Fatalf("PanelQueries returned %d queries, the dashboard has %d", len(qs), n)
	}
	for _, q := range qs {
		if q.Row == "" || q.Panel == "" || q.RefID == "" || q.PanelID == 0 {
			t.Errorf("incomplete query %+v", q)
		}
		e, err := Expand(q.Expr, DefaultVars("1m"))
		if err != nil {
			t.Errorf("%s/%s: %v", q.Panel, q.RefID, err)
		}
		if strings.Contains(e, "$") {
			t.Errorf("%s/%s: unexpanded variable in %q", q.Panel, q.RefID, e)
		}
	}
	if qs[0].Row != "Overview" {
		t.Errorf("first query in row %q, want Overview", qs[0].Row)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"job": "soak", "instance": ".*", "__rate_interval": "30s", "job_name": "x"}
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`rate(x{job=~"$job"}[$__rate_interval])`, `rate(x{job=~"soak"}[30s])`, true},
		{`x{job=~"${job}",instance=~"${instance:regex}"}`, `x{job=~"soak",instance=~".*"}`, true},
		{`x{a="$job_name",b="$job"}`, `x{a="x",b="soak"}`, true},
		{`x{target=~"$target"}`, "", false},
		{`up`, `up`, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Expand(tc.in, vars)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("Expand(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestPanelQueriesFromCollapsedRows(t *testing.T) {
	data := []byte(`{"panels":[{"id":1,"type":"row","title":"R","collapsed":true,"panels":[{"id":2,"type":"timeseries","title":"P","targets":[{"refId":"A","expr":"up","format":"time_series"}]}]}]}`)
	qs, err := panelQueries(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || qs[0].Row != "R" || qs[0].Panel != "P" || qs[0].Expr != "up" {
		t.Errorf("got %+v", qs)
	}
	if _, err := panelQueries([]byte("{")); err == nil {
		t.Error("broken JSON accepted")
	}
}
