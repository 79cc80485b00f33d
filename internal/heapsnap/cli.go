package heapsnap

import (
	"flag"
	"fmt"
	"io"
)

// DiffMain is `soak-exporter heap diff [--json] [--top N] BEFORE AFTER`: it
// prints what grew between two captures (V8 .heapsnapshot files or pprof
// heap profiles). It returns the exit code: 0 done, 2 bad usage or input.
func DiffMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("heap diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the diff as JSON")
	top := fs.Int("top", 20, "growers shown (0: all)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: soak-exporter heap diff [--json] [--top N] BEFORE AFTER")
		fmt.Fprintln(stderr, "BEFORE and AFTER are V8 .heapsnapshot files or pprof heap profiles of the same target.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 || *top < 0 {
		fs.Usage()
		return 2
	}
	d, err := DiffFiles(fs.Arg(0), fs.Arg(1), *top)
	if err != nil {
		fmt.Fprintf(stderr, "heap diff: %v\n", err)
		return 2
	}
	if *asJSON {
		err = d.WriteJSON(stdout)
	} else {
		err = d.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "heap diff: %v\n", err)
		return 2
	}
	return 0
}
