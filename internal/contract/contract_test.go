package contract_test

import (
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/contract"
)

func TestFamiliesCoverEveryPart(t *testing.T) {
	fams, err := contract.Families()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fams {
		if !strings.HasPrefix(f.Name, "soak_") {
			t.Errorf("family %q lacks the soak_ prefix", f.Name)
		}
		got[f.Name] = f.Histogram
	}
	// One family of each part, and the two the hand-kept list used to miss.
	for name, hist := range map[string]bool{
		"soak_clients_connected":             false,
		"soak_connect_duration_seconds":      true,
		"soak_event_latency_seconds":         true,
		"soak_events_in_flight":              false,
		"soak_acks_unexpected_total":         false,
		"soak_push_latency_seconds":          true,
		"soak_fanout_latency_seconds":        true,
		"soak_fanout_joins_total":            false,
		"soak_leak_suspected":                false,
		"soak_memory_sample_errors_total":    false,
		"soak_build_info":                    false,
		"soak_target_cpu_ratio":              false,
		"soak_heap_snapshot_captures_total":  false,
		"soak_agent_memory_per_client_bytes": false,
	} {
		h, ok := got[name]
		if !ok {
			t.Errorf("contract lacks %s", name)
		} else if h != hist {
			t.Errorf("%s: histogram = %v, want %v", name, h, hist)
		}
	}
}
