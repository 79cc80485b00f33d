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
// Measured on the test fixture (Node 20, 2 shared cores, TestSnapshotPause):
// a heap of 54 MB gave a 42 MB snapshot and a 3.1 s pause; a heap of 541 MB
// (6.9 million nodes) a 467 MB snapshot and a 52.5 s pause. The pause is
// the whole capture: V8 serializes the snapshot on the target's main thread
// while the chunks are sent.
//
// The diff streams: memory grows with the number of distinct constructor
// names, not with the snapshot (the 467 MB snapshot parsed in 5.2 s with
// 11 MB of Go heap).
package heapsnap
