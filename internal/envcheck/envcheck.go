// Package envcheck checks the SOAK_ environment against the configuration
// structs that envconfig reads: it lists the variables they declare (from
// envconfig itself, never from a hand-kept list), warns about unknown
// SOAK_ variables with the closest known name, and gives every
// time.Duration variable one syntax: a Go duration (500ms, 5s) or a plain
// number of seconds (5, 0.5).
package envcheck

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/nearest"

	"github.com/kelseyhightower/envconfig"

	"github.com/generic-corp/soak-exporter/internal/secret"
)

// Var is one variable a configuration struct declares.
type Var struct {
	// Key is the full name, SOAK_ prefix included.
	Key string
	// Type is the Go type of the field, as reflect prints it
	// ("time.Duration", "[]time.Duration", "int"...).
	Type string
}

// Vars lists the variables that envconfig reads into specs (pointers to
// Config structs) with prefix, sorted by name, without duplicates.
func Vars(prefix string, specs ...any) ([]Var, error) {
	seen := map[string]bool{}
	var out []Var
	for _, spec := range specs {
		var buf bytes.Buffer
		// The same walk envconfig.Process does: embedded structs, tags,
		// ignored fields and prefixes are handled by envconfig itself.
		if err := envconfig.Usagef(prefix, spec, &buf, "{{range .}}{{.Key}}\t{{.Field.Type}}\n{{end}}"); err != nil {
			return nil, fmt.Errorf("list variables of %T: %w", spec, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			key, typ, ok := strings.Cut(line, "\t")
			if !ok || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, Var{Key: key, Type: typ})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Unknown is a SOAK_ variable of the environment that no configuration
// declares. It holds the name only: the value is never kept, so that it
// cannot be printed.
type Unknown struct {
	Name    string
	Closest string // the closest known name; empty when none is close
}

// String is the warning line, e.g. "SOAK_CLIENT is not a known variable;
// did you mean SOAK_CLIENTS?".
func (u Unknown) String() string {
	if u.Closest == "" {
		return u.Name + " is not a known variable (see soak-exporter --help); it is ignored"
	}
	return u.Name + " is not a known variable; did you mean " + u.Closest + "?"
}

// FindUnknown returns the variables of environ (KEY=value strings, as
// os.Environ gives) whose name starts with prefix + "_" (in upper case, as
// envconfig reads them) and is not among known, in the order of environ.
func FindUnknown(prefix string, environ []string, known []Var) []Unknown {
	names := make(map[string]bool, len(known))
	for _, v := range known {
		names[v.Key] = true
	}
	p := strings.ToUpper(prefix) + "_"
	var out []Unknown
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, p) || names[name] {
			continue
		}
		out = append(out, Unknown{Name: name, Closest: closest(name, known)})
	}
	return out
}

// closest returns the known name nearest to name by edit distance, if it is
// near enough to be a likely typo: at most a third of the name's length
// (and at least 2) edits.
func closest(name string, known []Var) string {
	keys := make([]string, len(known))
	for i, v := range known {
		keys[i] = v.Key
	}
	best, d := nearest.Name(name, keys)
	if d < 0 || d > max(2, len(name)/3) {
		return ""
	}
	return best
}

// Duration types whose values NormalizeDurations rewrites: the plain
// time.Duration fields envconfig parses with time.ParseDuration. Types of
// our own (such as oneshot.Duration) parse both syntaxes themselves.
const (
	durationType      = "time.Duration"
	durationSliceType = "[]time.Duration"
)

// NormalizeDurations gives every time.Duration variable of vars (and each
// element of a []time.Duration one) the syntax of the one-shot flags: a
// plain number is seconds, so it is rewritten to the Go duration envconfig
// parses ("5" -> "5s", "0.5" -> "0.5s"). A value that is neither a number
// nor a Go duration is an error naming the variable. lookup and set are
// os.LookupEnv and os.Setenv in the program.
func NormalizeDurations(vars []Var, lookup func(string) (string, bool), set func(key, value string) error) error {
	for _, v := range vars {
		if v.Type != durationType && v.Type != durationSliceType {
			continue
		}
		raw, ok := lookup(v.Key)
		if !ok {
			continue
		}
		parts := []string{raw}
		if v.Type == durationSliceType {
			parts = strings.Split(raw, ",")
		}
		changed := false
		for i, p := range parts {
			d, rewritten, err := normalize(p)
			if err != nil {
				return fmt.Errorf("%s: want a Go duration (500ms, 5s, 1h30m) or a number of seconds (5, 0.5), got %q", v.Key, secret.Value(v.Key, strings.TrimSpace(p)))
			}
			if rewritten {
				parts[i], changed = d, true
			}
		}
		if !changed {
			continue
		}
		if err := set(v.Key, strings.Join(parts, ",")); err != nil {
			return fmt.Errorf("%s: %w", v.Key, err)
		}
	}
	return nil
}

// normalize returns s as a Go duration, and whether it had to be rewritten.
func normalize(s string) (string, bool, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return s, false, nil // envconfig treats an empty value as unset
	}
	if _, err := time.ParseDuration(t); err == nil {
		return s, false, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
		return "", false, fmt.Errorf("not a duration: %q", t)
	}
	return strconv.FormatFloat(f, 'f', -1, 64) + "s", true, nil
}

// ParseError formats an error of envconfig.Process as one line that names
// the variable and never quotes the value of a secret variable
// (secret.IsSecretVar): envconfig's own message repeats the value, and a
// malformed secret (SOAK_QUERY=access_token:VALUE:x) is still a secret.
// The agent and the one-shot mode both print config errors through it.
func ParseError(err error) string {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		if secret.IsSecretVar(pe.KeyName) {
			return fmt.Sprintf("%s: cannot parse the value as %s", pe.KeyName, pe.TypeName)
		}
		if strings.Contains(pe.TypeName, ".") && !strings.HasPrefix(pe.TypeName, "time.") {
			// Our own types (oneshot.Ratio...) explain themselves.
			return fmt.Sprintf("%s: %v", pe.KeyName, pe.Err)
		}
		return fmt.Sprintf("%s: cannot parse %q as %s", pe.KeyName, pe.Value, pe.TypeName)
	}
	return "configuration: " + err.Error()
}
