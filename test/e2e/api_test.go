package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// newHTTPClient returns a client without idle connections, so that nothing
// outlives a request (goleak).
func newHTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// getJSON fetches u and decodes the JSON answer into out.
func getJSON(c *http.Client, u string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: read: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", u, err)
	}
	return nil
}

// promClient queries Prometheus' HTTP API.
type promClient struct {
	base string // http://127.0.0.1:PORT
	c    *http.Client
}

// sample is one series of a query result: an instant vector element, or a
// range vector's series with all its points.
type sample struct {
	Metric map[string]string
	Values []float64
}

// String is the series' labels and (last) value, for messages.
func (s sample) String() string {
	keys := make([]string, 0, len(s.Metric))
	for k := range s.Metric {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(s.Metric["__name__"])
	b.WriteString("{")
	first := true
	for _, k := range keys {
		if k == "__name__" {
			continue
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%s=%q", k, s.Metric[k])
	}
	b.WriteString("}")
	if n := len(s.Values); n > 0 {
		fmt.Fprintf(&b, " %g", s.Values[n-1])
		if n > 1 {
			fmt.Fprintf(&b, " (%d points)", n)
		}
	}
	return b.String()
}

// hasNumber reports whether any value of the series is not NaN.
func (s sample) hasNumber() bool {
	for _, v := range s.Values {
		if !math.IsNaN(v) {
			return true
		}
	}
	return false
}

type promResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (p promClient) api(path string, params url.Values, data any) error {
	var r promResponse
	if err := getJSON(p.c, p.base+path+"?"+params.Encode(), &r); err != nil {
		return err
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// parseValue decodes a [timestamp, "value"] pair.
func parseValue(raw []json.RawMessage) (float64, error) {
	if len(raw) != 2 {
		return 0, fmt.Errorf("bad sample value %s", raw)
	}
	var s string
	if err := json.Unmarshal(raw[1], &s); err != nil {
		return 0, fmt.Errorf("bad sample value %s: %w", raw[1], err)
	}
	return strconv.ParseFloat(s, 64)
}

// query runs an instant query now.
func (p promClient) query(expr string) ([]sample, error) {
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &d); err != nil {
		return nil, err
	}
	switch d.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  []json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(vec))
		for _, e := range vec {
			v, err := parseValue(e.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, sample{Metric: e.Metric, Values: []float64{v}})
		}
		return out, nil
	case "scalar":
		var pair []json.RawMessage
		if err := json.Unmarshal(d.Result, &pair); err != nil {
			return nil, err
		}
		v, err := parseValue(pair)
		if err != nil {
			return nil, err
		}
		return []sample{{Metric: map[string]string{}, Values: []float64{v}}}, nil
	default:
		return nil, fmt.Errorf("query %q: unexpected result type %q", expr, d.ResultType)
	}
}

// queryRange runs a range query from start to now.
func (p promClient) queryRange(expr string, start time.Time, step time.Duration) ([]sample, error) {
	params := url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Unix(), 10)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	var d struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string   `json:"metric"`
			Values [][]json.RawMessage `json:"values"`
		} `json:"result"`
	}
	if err := p.api("/api/v1/query_range", params, &d); err != nil {
		return nil, err
	}
	if d.ResultType != "matrix" {
		return nil, fmt.Errorf("query_range %q: unexpected result type %q", expr, d.ResultType)
	}
	out := make([]sample, 0, len(d.Result))
	for _, e := range d.Result {
		s := sample{Metric: e.Metric}
		for _, pair := range e.Values {
			v, err := parseValue(pair)
			if err != nil {
				return nil, err
			}
			s.Values = append(s.Values, v)
		}
		out = append(out, s)
	}
	return out, nil
}

// describe runs each expression and formats the results, for failure
// messages. Errors are part of the text.
func (p promClient) describe(exprs ...string) string {
	var b strings.Builder
	for _, e := range exprs {
		res, err := p.query(e)
		fmt.Fprintf(&b, "  PromQL %s\n", e)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "    error: %v\n", err)
		case len(res) == 0:
			b.WriteString("    (empty)\n")
		}
		for i, s := range res {
			if i == 10 {
				fmt.Fprintf(&b, "    ... %d more\n", len(res)-10)
				break
			}
			fmt.Fprintf(&b, "    %s\n", s)
		}
	}
	return b.String()
}

// alertmanagers returns the URLs of the Alertmanagers Prometheus sends to.
func (p promClient) alertmanagers() ([]string, error) {
	var d struct {
		Active []struct {
			URL string `json:"url"`
		} `json:"activeAlertmanagers"`
	}
	if err := p.api("/api/v1/alertmanagers", nil, &d); err != nil {
		return nil, err
	}
	var out []string
	for _, a := range d.Active {
		out = append(out, a.URL)
	}
	return out, nil
}

// amAlert is one alert of Alertmanager's /api/v2/alerts.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func (a amAlert) String() string {
	return fmt.Sprintf("%s state=%s startsAt=%s endsAt=%s",
		sample{Metric: a.Labels}.String(), a.Status.State,
		a.StartsAt.Format(time.TimeOnly), a.EndsAt.Format(time.TimeOnly))
}

// active reports whether the alert is active and not yet ended.
func (a amAlert) active(now time.Time) bool {
	return a.Status.State == "active" && (a.EndsAt.IsZero() || a.EndsAt.After(now))
}

// amClient reads Alertmanager's API v2.
type amClient struct {
	base string
	c    *http.Client
}

// alerts returns every alert Alertmanager holds (active, silenced,
// inhibited, unprocessed); resolved alerts are not listed by the API.
func (a amClient) alerts() ([]amAlert, error) {
	var out []amAlert
	if err := getJSON(a.c, a.base+"/api/v2/alerts", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// webhook records Alertmanager's notifications.
type webhook struct {
	srv *httptest.Server

	mu    sync.Mutex
	notes []notification
	bad   []string // requests that were not a webhook notification
}

// notification is one alert of one webhook request.
type notification struct {
	at       time.Time
	alert    string
	resolved bool
}

func newWebhook() *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	return w
}

func (w *webhook) serve(rw http.ResponseWriter, r *http.Request) {
	var msg struct {
		Version string `json:"version"`
		Alerts  []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, &msg)
	}
	if err == nil && (msg.Version != "4" || len(msg.Alerts) == 0) {
		err = fmt.Errorf("version %q with %d alerts, want version 4 with alerts", msg.Version, len(msg.Alerts))
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.bad = append(w.bad, fmt.Sprintf("%v: %q", err, body))
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	for _, a := range msg.Alerts {
		w.notes = append(w.notes, notification{at: now, alert: a.Labels["alertname"], resolved: a.Status == "resolved"})
	}
}

// notified reports whether a firing (or resolved) notification of alert
// arrived after since.
func (w *webhook) notified(alert string, resolved bool, since time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.notes {
		if n.alert == alert && n.resolved == resolved && n.at.After(since) {
			return true
		}
	}
	return false
}

// badRequests returns the requests that were not notifications.
func (w *webhook) badRequests() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.bad)
}
