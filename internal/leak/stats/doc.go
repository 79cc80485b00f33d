// Package stats holds the pure numerical pieces of leak detection: streaming
// least-squares moments, the Theil-Sen slope, the Mann-Kendall trend test with
// the Hamed-Rao autocorrelation correction, ranks, medians and the normal
// distribution. Everything works on slices or small values, does no I/O and
// keeps no state beyond what the caller holds, so it is tested on hand-computed
// series.
package stats
