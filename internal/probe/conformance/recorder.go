package conformance

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// recorder collects what a driver hands to the Handlers of one connection,
// and checks the handler contract on the way: nothing after OnClose, OnClose
// at most once.
type recorder struct {
	mu         sync.Mutex
	acks       map[uint64][][]json.RawMessage
	events     []recordedEvent
	closes     []recordedClose
	violations []string
	changed    chan struct{} // gets a token after every change
}

type recordedEvent struct {
	name string
	args []json.RawMessage
}

type recordedClose struct {
	reason probe.DisconnectReason
	err    error
}

func newRecorder() *recorder {
	return &recorder{acks: make(map[uint64][][]json.RawMessage), changed: make(chan struct{}, 1)}
}

func (r *recorder) handlers() probe.Handlers {
	return probe.Handlers{
		OnAck: func(id uint64, args []json.RawMessage) {
			r.update(func() {
				if len(r.closes) > 0 {
					r.violations = append(r.violations, fmt.Sprintf("OnAck(%d) after OnClose", id))
				}
				r.acks[id] = append(r.acks[id], cloneArgs(args))
			})
		},
		OnEvent: func(name string, args []json.RawMessage) {
			r.update(func() {
				if len(r.closes) > 0 {
					r.violations = append(r.violations, fmt.Sprintf("OnEvent(%q) after OnClose", name))
				}
				r.events = append(r.events, recordedEvent{name: name, args: cloneArgs(args)})
			})
		},
		OnClose: func(reason probe.DisconnectReason, err error) {
			r.update(func() {
				r.closes = append(r.closes, recordedClose{reason: reason, err: err})
			})
		},
	}
}

// cloneArgs copies args: a driver may reuse its read buffer after a handler
// returns.
func cloneArgs(args []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(args))
	for i, a := range args {
		out[i] = append(json.RawMessage(nil), a...)
	}
	return out
}

func (r *recorder) update(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called with the lock held) holds, failing t with
// what after timeout.
func (r *recorder) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-timer.C:
			t.Fatalf("%s: not within %v; recorded %s", what, timeout, r.summary())
		}
	}
}

// waitClose waits for the first OnClose and returns it.
func (r *recorder) waitClose(t testing.TB, timeout time.Duration) recordedClose {
	t.Helper()
	r.waitFor(t, timeout, "OnClose", func() bool { return len(r.closes) > 0 })
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closes[0]
}

func (r *recorder) closeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.closes)
}

func (r *recorder) ackCopy(id uint64) [][]json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]json.RawMessage(nil), r.acks[id]...)
}

func (r *recorder) eventsCopy() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.events...)
}

// checkContract fails t if the handler contract was broken: a handler call
// after OnClose, or OnClose more than once.
func (r *recorder) checkContract(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.violations {
		t.Errorf("handler contract: %s", v)
	}
	if len(r.closes) > 1 {
		t.Errorf("handler contract: OnClose called %d times: %s", len(r.closes), r.closesText())
	}
}

func (r *recorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d ack ids, %d events, closes [%s]", len(r.acks), len(r.events), r.closesText())
}

func (r *recorder) closesText() string {
	s := ""
	for i, c := range r.closes {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%s (%v)", c.reason, c.err)
	}
	return s
}
