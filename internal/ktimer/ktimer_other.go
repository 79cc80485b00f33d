//go:build !linux

package ktimer

import (
	"context"
	"time"
)

// Loop calls step at once and then each time the delay it returned has
// passed (at once when the delay is not positive), until ctx ends; it
// returns ctx's error. Off Linux it is RuntimeLoop.
func Loop(ctx context.Context, step func() time.Duration) error {
	return RuntimeLoop(ctx, step)
}
