// Package heapsnap captures the evidence when a memory leak is suspected:
// heap snapshots of a Node target through the V8 inspector protocol, or heap
// profiles of a Go target from /debug/pprof/heap, taken twice some time
// apart, and the diff of what grew between the two captures (by constructor
// for V8 snapshots, by allocation site for pprof profiles).
//
// A heap holds the target's secrets: captures are written to a directory
// with bounded retention and never served by this package. Taking a V8
// snapshot pauses the target's event loop for as long as the snapshot
// takes, so nothing is captured unless SOAK_HEAP_SNAPSHOT asks for it.
package heapsnap
