package heapsnap_test

import (
	"os"

	"github.com/generic-corp/soak-exporter/internal/heapsnap"
)

// The offline diff of two V8 heap snapshots: what `soak-exporter heap diff`
// prints, most bytes added first.
func ExampleDiffMain() {
	code := heapsnap.DiffMain([]string{"testdata/small-a.heapsnapshot", "testdata/small-b.heapsnapshot"}, os.Stdout, os.Stderr)
	if code != 0 {
		os.Exit(code)
	}
	// Output:
	// v8 heap diff small-a.heapsnapshot -> small-b.heapsnapshot: +5 objects, +240 bytes
	//   +COUNT  +BYTES  COUNT  BYTES  CONSTRUCTOR
	//       +3    +120      5    200  Foo
	//       +1    +100      1    100  Bar "quoted" é
	//       +1     +20      2     40  (string)
}
