package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/generic-corp/soak-exporter/internal/jsonpath"
	"github.com/generic-corp/soak-exporter/internal/nearest"
	"github.com/generic-corp/soak-exporter/internal/payload"
)

// Limits of a scenario file: step and flow names become label values.
const (
	maxSteps = 64
	maxFlows = 16
	maxRate  = 100000
)

// Kind is what a step does.
type Kind uint8

// The step kinds.
const (
	// KindEmit emits an event and, unless Expect is ExpectNone, waits for
	// its answer.
	KindEmit Kind = iota
	// KindWait waits for a server event.
	KindWait
	// KindThink pauses before the next step.
	KindThink
)

// Expect is how an emitted event is answered.
type Expect uint8

// The answers.
const (
	// ExpectAck: the server's ack.
	ExpectAck Expect = iota
	// ExpectReply: a server event whose Match field equals the request's.
	ExpectReply
	// ExpectNone: nothing; the step ends once written.
	ExpectNone
)

// Scenario is a parsed, validated scenario file.
type Scenario struct {
	// Rate is how many flows start per second over the whole agent.
	Rate float64
	// OnConnect are the steps every client runs once per connection, in
	// order, before it takes flows.
	OnConnect []*Step
	// Flows are run at Rate, chosen by weight.
	Flows []*Flow
}

// Flow is a weighted sequence of steps.
type Flow struct {
	Name   string
	Weight int
	Steps  []*Step
}

// Step is one step of a flow or of on_connect.
type Step struct {
	// Name is the step's label value (think steps have none).
	Name string
	Kind Kind
	// Event is the event emitted (KindEmit) or awaited (KindWait).
	Event string
	// Payload is the emitted payload's template; nil for no argument.
	Payload *payload.Template
	Expect  Expect
	// ReplyEvent and Match: with ExpectReply, the answering event and the
	// field (dotted path) whose value ties it to the request; MatchKey
	// renders that field of the request.
	ReplyEvent string
	Match      string
	MatchKey   *payload.Template
	Timeout    time.Duration
	// Think is the pause of a KindThink step.
	Think time.Duration
	// Capture stores fields of the answer's first argument into variables.
	Capture []Capture
	// Assert, if set, must hold for an answer to count as answered (else
	// rejected).
	Assert *Assert
	// Line is where the step starts in the file.
	Line int
	// index is the step's place among the named steps of the scenario.
	index int
}

// Capture stores the value at Path of an answer into variable Var.
type Capture struct{ Var, Path string }

// Assert requires the value at Path of an answer to equal Equals.
type Assert struct {
	Path   string
	Equals json.RawMessage
}

// Events lists every server event a scenario waits for or is answered by.
func (sc *Scenario) Events() []string {
	var out []string
	for _, st := range sc.steps() {
		var ev string
		switch {
		case st.Kind == KindWait:
			ev = st.Event
		case st.Kind == KindEmit && st.Expect == ExpectReply:
			ev = st.ReplyEvent
		}
		if ev != "" && !slices.Contains(out, ev) {
			out = append(out, ev)
		}
	}
	return out
}

// steps lists every step, on_connect's first.
func (sc *Scenario) steps() []*Step {
	out := append([]*Step{}, sc.OnConnect...)
	for _, f := range sc.Flows {
		out = append(out, f.Steps...)
	}
	return out
}

// Load reads and parses a scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario file: %w", err)
	}
	return Parse(data, filepath.Base(path))
}

// parser turns YAML nodes into a Scenario; every error names the file, the
// line and the field.
type parser struct {
	file  string
	names map[string]int // step name -> line
	n     int            // named steps so far
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s: %s", p.file, n.Line, field, fmt.Sprintf(format, args...))
}

// Parse parses a scenario file's content; name is used in errors.
func Parse(data []byte, name string) (*Scenario, error) {
	p := &parser{file: name, names: map[string]int{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:1: the file is empty; it needs rate and flows", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:1: the file must be a mapping with rate, on_connect and flows", name)
	}
	root := doc.Content[0]
	sc := &Scenario{}
	fields, err := p.fields(root, "", "rate", "on_connect", "flows")
	if err != nil {
		return nil, err
	}
	rate, ok := fields["rate"]
	if !ok {
		return nil, p.errf(root, "rate", "required (flows per second over the whole agent)")
	}
	if sc.Rate, err = strconv.ParseFloat(rate.Value, 64); err != nil || rate.Kind != yaml.ScalarNode || !(sc.Rate > 0) || sc.Rate > maxRate {
		return nil, p.errf(rate, "rate", "must be a number in (0, %d], got %q", maxRate, rate.Value)
	}
	vars := map[string]bool{}
	if oc, ok := fields["on_connect"]; ok {
		if sc.OnConnect, err = p.steps(oc, "on_connect", vars); err != nil {
			return nil, err
		}
	}
	flows, ok := fields["flows"]
	if !ok || flows.Kind != yaml.SequenceNode || len(flows.Content) == 0 {
		return nil, p.errf(root, "flows", "at least one flow is required")
	}
	if len(flows.Content) > maxFlows {
		return nil, p.errf(flows, "flows", "at most %d flows", maxFlows)
	}
	flowNames := map[string]bool{}
	for i, fn := range flows.Content {
		where := fmt.Sprintf("flows[%d]", i)
		ff, err := p.fields(fn, where, "name", "weight", "steps")
		if err != nil {
			return nil, err
		}
		f := &Flow{Weight: 1}
		if f.Name, err = p.label(ff, fn, where); err != nil {
			return nil, err
		}
		if flowNames[f.Name] {
			return nil, p.errf(fn, where+".name", "duplicate flow name %q", f.Name)
		}
		flowNames[f.Name] = true
		if w, ok := ff["weight"]; ok {
			if f.Weight, err = strconv.Atoi(w.Value); err != nil || f.Weight < 1 || f.Weight > 1000 {
				return nil, p.errf(w, where+".weight", "must be an integer in [1, 1000], got %q", w.Value)
			}
		}
		st, ok := ff["steps"]
		if !ok {
			return nil, p.errf(fn, where+".steps", "required")
		}
		flowVars := maps(vars)
		if f.Steps, err = p.steps(st, where+".steps", flowVars); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(f.Steps, func(s *Step) bool { return s.Kind == KindEmit }) {
			return nil, p.errf(fn, where+".steps", "a flow needs at least one emit step")
		}
		sc.Flows = append(sc.Flows, f)
	}
	return sc, nil
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var (
	labelRE   = regexp.MustCompile(`^[a-z0-9_:.-]{1,40}$`)
	varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func (p *parser) label(ff map[string]*yaml.Node, n *yaml.Node, where string) (string, error) {
	v, ok := ff["name"]
	if !ok {
		return "", p.errf(n, where+".name", "required")
	}
	if !labelRE.MatchString(v.Value) {
		return "", p.errf(v, where+".name", "must match [a-z0-9_:.-]{1,40}, got %q", v.Value)
	}
	return v.Value, nil
}

// fields checks a mapping's keys against the known ones (suggesting the
// closest for an unknown one) and returns its values by key.
func (p *parser) fields(n *yaml.Node, where string, known ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, strings.TrimPrefix(where, "."), "must be a mapping")
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := k.Value
		if where != "" {
			field = where + "." + k.Value
		}
		if !slices.Contains(known, k.Value) {
			if near, ok := closest(k.Value, known); ok {
				return nil, p.errf(k, field, "unknown field; did you mean %q?", near)
			}
			return nil, p.errf(k, field, "unknown field; known fields: %s", strings.Join(known, ", "))
		}
		if first, dup := out[k.Value]; dup {
			// yaml.v3 keeps the last of duplicate keys in a Node silently.
			return nil, p.errf(k, field, "given twice (first value at line %d)", first.Line)
		}
		out[k.Value] = v
	}
	return out, nil
}

// closest returns the known name nearest to s by edit distance, if it is
// near enough to be a plausible typo (at most a third of its letters, and
// at least one, differ).
func closest(s string, known []string) (string, bool) {
	best, d := nearest.Name(s, known)
	return best, d >= 0 && d <= max(1, len(best)/3)
}

// steps parses a sequence of steps; vars holds the variables captured
// before it and gains the ones it captures.
func (p *parser) steps(n *yaml.Node, where string, vars map[string]bool) ([]*Step, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, where, "must be a list of steps")
	}
	var out []*Step
	for i, sn := range n.Content {
		st, err := p.step(sn, fmt.Sprintf("%s[%d]", where, i), vars)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (p *parser) step(n *yaml.Node, where string, vars map[string]bool) (*Step, error) {
	ff, err := p.fields(n, where, "name", "emit", "wait", "think", "payload", "expect", "reply", "timeout", "capture", "assert")
	if err != nil {
		return nil, err
	}
	st := &Step{Line: n.Line, Timeout: 5 * time.Second}
	_, emit := ff["emit"]
	_, wait := ff["wait"]
	_, think := ff["think"]
	switch {
	case emit && !wait && !think:
		st.Kind = KindEmit
		st.Event = ff["emit"].Value
	case wait && !emit && !think:
		st.Kind, st.Event = KindWait, ff["wait"].Value
	case think && !emit && !wait:
		st.Kind = KindThink
		if st.Think, err = duration(ff["think"].Value); err != nil || st.Think <= 0 {
			return nil, p.errf(ff["think"], where+".think", "must be a duration > 0 (500ms, or seconds), got %q", ff["think"].Value)
		}
		for k := range ff {
			if k != "think" {
				return nil, p.errf(ff[k], where+"."+k, "not allowed on a think step")
			}
		}
		return st, nil
	default:
		return nil, p.errf(n, where, "a step has exactly one of emit, wait and think")
	}
	if st.Event == "" {
		return nil, p.errf(n, where, "the event name must not be empty")
	}
	if st.Name, err = p.label(ff, n, where); err != nil {
		return nil, err
	}
	if line, dup := p.names[st.Name]; dup {
		return nil, p.errf(ff["name"], where+".name", "duplicate step name %q (first at line %d)", st.Name, line)
	}
	p.names[st.Name] = ff["name"].Line
	if p.n++; p.n > maxSteps {
		return nil, p.errf(n, where, "at most %d named steps", maxSteps)
	}
	st.index = p.n - 1
	if t, ok := ff["timeout"]; ok {
		if st.Timeout, err = duration(t.Value); err != nil || st.Timeout <= 0 {
			return nil, p.errf(t, where+".timeout", "must be > 0, got %q", t.Value)
		}
	}
	if pl, ok := ff["payload"]; ok {
		if st.Kind != KindEmit {
			return nil, p.errf(pl, where+".payload", "only an emit step sends a payload")
		}
		src, err := payloadSource(pl)
		if err != nil {
			return nil, p.errf(pl, where+".payload", "%v", err)
		}
		if st.Payload, err = payload.Parse(src); err != nil {
			return nil, p.errf(pl, where+".payload", "%v", err)
		}
		for _, v := range st.Payload.VarNames() {
			if !vars[v] {
				return nil, p.errf(pl, where+".payload", "{{var %s}} is not captured by an earlier step", v)
			}
		}
	}
	if st.Kind == KindEmit {
		if err := p.answer(st, ff, where); err != nil {
			return nil, err
		}
	} else if _, ok := ff["expect"]; ok {
		return nil, p.errf(ff["expect"], where+".expect", "only an emit step has an answer")
	} else if _, ok := ff["reply"]; ok {
		return nil, p.errf(ff["reply"], where+".reply", "only an emit step has an answer")
	}
	if c, ok := ff["capture"]; ok {
		if st.Kind == KindEmit && st.Expect == ExpectNone {
			return nil, p.errf(c, where+".capture", "nothing to capture from without an answer")
		}
		cf, err := p.fields(c, where+".capture", keysOf(c)...)
		if err != nil {
			return nil, err
		}
		for i := 0; i+1 < len(c.Content); i += 2 {
			name, path := c.Content[i].Value, c.Content[i+1].Value
			if !varNameRE.MatchString(name) || path == "" {
				return nil, p.errf(cf[name], where+".capture."+name, "want VARIABLE: dotted.path")
			}
			st.Capture = append(st.Capture, Capture{Var: name, Path: path})
			vars[name] = true
		}
	}
	if a, ok := ff["assert"]; ok {
		af, err := p.fields(a, where+".assert", "path", "equals")
		if err != nil {
			return nil, err
		}
		path, eq := af["path"], af["equals"]
		if path == nil || eq == nil {
			return nil, p.errf(a, where+".assert", "want {path: dotted.path, equals: VALUE}")
		}
		var v any
		if err := eq.Decode(&v); err != nil {
			return nil, p.errf(eq, where+".assert.equals", "%v", err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, p.errf(eq, where+".assert.equals", "%v", err)
		}
		st.Assert = &Assert{Path: path.Value, Equals: raw}
	}
	return st, nil
}

func keysOf(n *yaml.Node) []string {
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

// answer reads how an emit step is answered.
func (p *parser) answer(st *Step, ff map[string]*yaml.Node, where string) error {
	if r, ok := ff["reply"]; ok {
		rf, err := p.fields(r, where+".reply", "event", "match")
		if err != nil {
			return err
		}
		ev, m := rf["event"], rf["match"]
		if ev == nil || m == nil || ev.Value == "" || m.Value == "" {
			return p.errf(r, where+".reply", "want {event: NAME, match: dotted.path}")
		}
		if st.Payload == nil {
			return p.errf(r, where+".reply.match", "the payload must hold the matched field")
		}
		key, err := st.Payload.At(m.Value)
		if err != nil {
			return p.errf(m, where+".reply.match", "not in the payload: %v", err)
		}
		if !key.Unique() {
			return p.errf(m, where+".reply.match", "the payload's %q must hold {{seq}} or {{uuid}}, so that each reply answers one request", m.Value)
		}
		st.Expect, st.ReplyEvent, st.Match, st.MatchKey = ExpectReply, ev.Value, m.Value, key
		if e, ok := ff["expect"]; ok && e.Value != "reply" {
			return p.errf(e, where+".expect", "a step with reply expects the reply")
		}
		return nil
	}
	if e, ok := ff["expect"]; ok {
		switch e.Value {
		case "ack":
			st.Expect = ExpectAck
		case "none":
			st.Expect = ExpectNone
		default:
			return p.errf(e, where+".expect", "must be ack or none (or give reply), got %q", e.Value)
		}
	}
	return nil
}

// payloadSource is a payload given as a JSON template string, or as a YAML
// mapping or sequence converted to JSON whose strings may hold
// placeholders; a string that is exactly {{seq}}, {{ts}}, {{client}} or
// {{var X}} becomes the bare value.
func payloadSource(n *yaml.Node) (string, error) {
	if n.Kind == yaml.ScalarNode {
		return n.Value, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := encodeTemplate(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// barePlaceholder is a YAML string that stands for a bare JSON value.
var barePlaceholder = regexp.MustCompile(`^\{\{\s*(?:seq|ts|client|var [A-Za-z_][A-Za-z0-9_]*)\s*\}\}$`)

// encodeTemplate writes v (decoded YAML) as JSON template text, object
// keys sorted. It walks the value rather than rewriting encoded JSON, so
// that an escaped quote next to a placeholder stays escaped.
func encodeTemplate(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case string:
		if barePlaceholder.MatchString(v) {
			b.WriteString(v)
			return nil
		}
		return encodeJSON(b, v)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeJSON(b, k); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := encodeTemplate(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeTemplate(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	default:
		return encodeJSON(b, v)
	}
}

// encodeJSON writes v as compact JSON, leaving <, > and & unescaped.
func encodeJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode ends with a newline
	return nil
}

// duration reads a Go duration or plain seconds.
func duration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	// Converting NaN, ±Inf or an out-of-range float to an integer is
	// implementation-defined in Go: refuse them before.
	if math.IsNaN(f) || math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
		return 0, fmt.Errorf("%q seconds is out of range", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// matches reports whether the value at path of an answer equals want.
func (a *Assert) matches(arg json.RawMessage) bool {
	v, ok := jsonpath.Lookup(arg, a.Path)
	return ok && jsonpath.Canonical(v) == jsonpath.Canonical(a.Equals)
}
