package conformance_test

import (
	"testing"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/conformance"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestConformance runs the suite for every driver against every server.
func TestConformance(t *testing.T) {
	drivers := []struct {
		name string
		new  func(t *testing.T) probe.Driver
	}{
		{"native", func(t *testing.T) probe.Driver {
			return native.New(native.Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
		}},
	}
	servers := []conformance.Server{conformance.NodeServer(), conformance.DemoServer()}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			for _, srv := range servers {
				t.Run(srv.Name(), func(t *testing.T) {
					conformance.Run(t, d.new(t), srv)
				})
			}
		})
	}
}
