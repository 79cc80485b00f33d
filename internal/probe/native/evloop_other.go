//go:build !linux

package native

import (
	"context"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// eventLoopSupported reports whether Options.EventLoop has an effect: the
// event-loop transport needs epoll.
const eventLoopSupported = false

// evLoop is not used on this platform.
type evLoop struct{}

func newLoops(*Driver) []*evLoop { return nil }

// dialLoop always leaves the dial to the goroutine transport here.
func (d *Driver) dialLoop(context.Context, *probe.Target, string) (wsDialed, bool, *probe.ConnectError) {
	return nil, false, nil
}
