package conformance_test

import (
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/conformance"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/probe/zishang"
	"github.com/generic-corp/soak-exporter/internal/probe/zishang/zishangtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	// The zishang520 client engine starts goroutines from init() that
	// cannot be stopped; everything else must end.
	goleak.VerifyTestMain(m, zishangtest.GoleakIgnores()...)
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
		{"native-goroutines", func(t *testing.T) probe.Driver {
			return native.New(native.Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), ReaderGoroutines: true})
		}},
		{"zishang520", func(t *testing.T) probe.Driver {
			return zishang.New(zishang.Options{Log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
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
	// The native driver again over long-polling, and over long-polling
	// upgraded to WebSocket (on each WebSocket transport), against the Node
	// server (the demo server speaks WebSocket only).
	for _, transports := range [][]string{{"polling"}, {"polling", "websocket"}} {
		t.Run("native/"+strings.Join(transports, ","), func(t *testing.T) {
			conformance.RunTransports(t, drivers[0].new(t), conformance.NodeServer(), transports)
		})
	}
	t.Run("native-goroutines/polling,websocket", func(t *testing.T) {
		conformance.RunTransports(t, drivers[1].new(t), conformance.NodeServer(), []string{"polling", "websocket"})
	})
}
