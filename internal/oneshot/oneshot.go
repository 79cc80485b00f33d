package oneshot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/envcheck"
	"github.com/generic-corp/soak-exporter/internal/logging"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/secret"
	"github.com/generic-corp/soak-exporter/internal/target"
)

// Exit codes of a one-shot run.
const (
	// ExitPass: every criterion met.
	ExitPass = 0
	// ExitFail: a criterion failed, or the run was interrupted.
	ExitFail = 1
	// ExitUsage: bad usage or configuration, or the target (or memory
	// source) unreachable at start.
	ExitUsage = 2
	// ExitCannotTell: leaktest met every criterion, but the run was too
	// short (or too gappy) for a robust leak verdict: never a pass.
	ExitCannotTell = 3
)

// Deps are what the one-shot mode takes from main.
type Deps struct {
	// NewDriver returns the client driver the target configuration selects
	// (SOAK_DRIVER, and SOAK_NATIVE_EVENT_LOOP for the native one). Required.
	NewDriver func(c target.Config, log *zap.Logger) probe.Driver
	// LoadEnv fills spec, a pointer to one package's Config (a struct with
	// envconfig tags), from the environment, applying the SOAK_ prefix. It
	// is called once per Config. Nil means envconfig.Process("soak", spec).
	LoadEnv func(spec any) error
	// Version is printed in the report; empty means "unknown".
	Version string
	// IsTerminal tells whether w is a terminal (the progress line is drawn
	// only then). Nil means: w is an *os.File on a character device.
	IsTerminal func(w io.Writer) bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// envSpec is everything a one-shot run reads from SOAK_ variables: the
// agent's target, pool and logging settings, and the one-shot's own. Each
// part is loaded on its own (envconfig skips unexported embedded fields).
type envSpec struct {
	probe   target.Config
	agent   agent.Config
	logging logging.Config
	oneshot Config
	serve   serveConfig
	memory  MemoryConfig
}

// parts are the structs LoadEnv fills.
func (s *envSpec) parts() []any {
	return []any{&s.probe, &s.agent, &s.logging, &s.oneshot, &s.serve, &s.memory}
}

// EnvSpecs returns zero values of every Config a one-shot run reads from
// SOAK_ variables (pointers, as envconfig takes them), so that main can list
// the variables the one-shot mode knows.
func EnvSpecs() []any {
	var s envSpec
	return s.parts()
}

// Main runs the subcommand command ("loadtest" or "leaktest") with its
// arguments and returns the exit status. The text report goes to stdout
// (to stderr when the JSON report goes to stdout); logs, errors and the
// progress line go to stderr.
func Main(ctx context.Context, command string, args []string, deps Deps, stdout, stderr io.Writer) int {
	if deps.NewDriver == nil {
		fmt.Fprintf(stderr, "soak-exporter %s: no client driver (internal error)\n", command)
		return ExitUsage
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.IsTerminal == nil {
		deps.IsTerminal = isCharDevice
	}
	if deps.Version == "" {
		deps.Version = "unknown"
	}
	var spec envSpec
	load := deps.LoadEnv
	if load == nil {
		load = func(s any) error { return envconfig.Process("soak", s) }
	}
	for _, part := range spec.parts() {
		if err := load(part); err != nil {
			fmt.Fprintf(stderr, "soak-exporter %s: %s\n", command, envError(err))
			return ExitUsage
		}
	}
	switch command {
	case "loadtest":
		return runLoadtest(ctx, args, &spec, deps, stdout, stderr)
	case "leaktest":
		return runLeaktest(ctx, args, &spec, deps, stdout, stderr)
	}
	fmt.Fprintf(stderr, "soak-exporter: unknown one-shot command %q (loadtest or leaktest)\n", command)
	return ExitUsage
}

// envError formats an envconfig error in one line naming the variable,
// without the value of a secret (the rule the agent uses too).
func envError(err error) string { return envcheck.ParseError(err) }

// isCharDevice reports whether w is a terminal.
func isCharDevice(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// usageError is bad usage: printed with a pointer to --help, exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// parseCommandLine parses flags and positional parameters of a subcommand:
// on --help it prints header, the flags and footer to usage and returns
// flag.ErrHelp; it rejects more positionals than names (listed in the
// message) as bad usage.
func parseCommandLine(fs *flag.FlagSet, args []string, usage io.Writer, header, footer string, names ...string) ([]string, error) {
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(usage, header)
		flagUsage(usage, fs)
		fmt.Fprint(usage, footer)
		return nil, err
	}
	if err != nil {
		return nil, usagef("%v", err)
	}
	if len(pos) > len(names) {
		return nil, usagef("too many arguments: %q (want at most %s)", strings.Join(pos[len(names):], " "), strings.Join(names, " "))
	}
	return pos, nil
}

// parseRate parses a positional rate parameter: a finite number >= 0.
func parseRate(name, unit, s string) (float64, error) {
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return 0, usagef("%s: want a number of %s >= 0, got %q", name, unit, s)
	}
	return r, nil
}

// parseArgs parses flags and positional arguments in any order with fs:
// flags may come before, between or after the positionals, and "--" ends
// the flags. It returns the positionals.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlagSet returns a silent FlagSet: errors are reported by the caller.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// flagUsage lists fs's flags with their defaults.
func flagUsage(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%-34s %s", line, usage)
		if f.DefValue != "" {
			// The current value comes from the environment: the one
			// secret rule applies to it as to every printed value.
			fmt.Fprintf(w, " (now %s)", secret.Value(f.Name, f.DefValue))
		}
		fmt.Fprintln(w)
	})
}
