// Package zishangtest holds test helpers for code that links the zishang520
// Socket.IO client (package zishang). It is a separate package so that the
// production binary does not link goleak.
package zishangtest

import "go.uber.org/goleak"

// Top functions of the goroutines that the init() of
// github.com/zishang520/socket.io/clients/engine/v3 (v3.0.6) starts. They run
// for the life of the process and cannot be stopped from outside.
const (
	// IntervalLoop is the timer loop of utils.SetInterval that drives the
	// network-interface polling, blocked in a select between ticks
	// (always present).
	IntervalLoop = "github.com/zishang520/socket.io/v3/pkg/utils.SetInterval.func1"
	// NetworkCheck is one tick of that polling (net.Interfaces), started
	// every 3 s and short-lived; it can be caught anywhere in its stack.
	NetworkCheck = "github.com/zishang520/socket.io/clients/engine/v3.setupNetworkHandling.func1"
	// SignalWaiter waits for the first SIGINT, SIGTERM or SIGQUIT. It is
	// not started in binaries whose name ends in ".test" (go test).
	SignalWaiter = "github.com/zishang520/socket.io/clients/engine/v3.setupSignalHandling.func1"
	// SignalContext is the goroutine of signal.NotifyContext behind
	// SignalWaiter (also absent under go test).
	SignalContext = "os/signal.NotifyContext.func1"
)

// GoleakIgnores returns the goleak options that ignore the goroutines the
// zishang520 client engine starts from init(). Use them in every package
// whose test binary links the client (directly or through the agent):
//
//	goleak.VerifyTestMain(m, zishangtest.GoleakIgnores()...)
//
// IntervalLoop is matched by top function, which would also hide a leaked
// utils.SetInterval loop of the library; adding goleak.IgnoreCurrent() in
// TestMain instead of that one option is stricter.
func GoleakIgnores() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction(IntervalLoop),
		goleak.IgnoreAnyFunction(NetworkCheck),
		goleak.IgnoreTopFunction(SignalWaiter),
		goleak.IgnoreTopFunction(SignalContext),
	}
}
