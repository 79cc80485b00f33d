package selfmem

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBytesPerClient(t *testing.T) {
	n := 0
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() int { return n }))
	if got := testutil.CollectAndCount(reg, MetricBytesPerClient); got != 0 {
		t.Fatalf("%d samples with no client connected, want none", got)
	}
	n = 10
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	per := mfs[0].GetMetric()[0].GetGauge().GetValue()
	if held := float64(heldBytes()); per <= 0 || per < held/10*0.5 || per > held/10*2 {
		t.Fatalf("per client %v, runtime holds %v for 10 clients", per, held)
	}
	problems, err := testutil.CollectAndLint(NewCollector(func() int { return 1 }))
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	if !strings.HasSuffix(MetricBytesPerClient, "_bytes") {
		t.Fatal("unit suffix")
	}
}
