package oneshot

import (
	"fmt"
	"io"
	"strings"
)

// ActionItem is what to look at when a criterion fails: the old suite's
// "action items", tied to the criterion and completed with what the run
// measured.
type ActionItem struct {
	// Criterion is the failed criterion's name; Title its human name.
	Criterion string   `json:"criterion"`
	Title     string   `json:"title"`
	Items     []string `json:"items"`
}

// leakHunt is the old suite's advice for a memory leak.
func leakHunt() []string {
	return []string{
		"Take heap snapshots at the start and at the end of a run (node --inspect, or v8.writeHeapSnapshot()), a few GC cycles apart.",
		"Compare them in Chrome DevTools (Memory tab, Comparison view, sorted by size delta) to see which objects accumulate and what retains them.",
		"Look for: unclosed WebSocket connections and sockets never removed from rooms; event listeners added per connection and never removed (socket.on, emitter.on); caches or maps keyed by socket or user never pruned; timers and intervals not cleared on disconnect; circular references held by closures; unclosed database connections.",
	}
}

// loadActions returns the action items of the failed loadtest criteria.
func loadActions(rep LoadReport) []ActionItem {
	out := []ActionItem{}
	for _, c := range rep.Criteria {
		if c.Passed {
			continue
		}
		var items []string
		switch c.Name {
		case "connection_success_ratio":
			if len(rep.Connections.FailuresByReason) > 0 {
				items = append(items, "Connection failures by reason: "+strings.TrimSuffix(strings.TrimPrefix(reasons(rep.Connections.FailuresByReason), " ("), ")")+"; the server's logs at those times say why.")
			}
			items = append(items,
				"connect_error: check the namespace (the URL path) and the credentials (SOAK_AUTH_TOKEN, SOAK_AUTH_JSON); timeout or refused: check server load and its connection limits (open files, ulimit -n, maxHttpBufferSize, proxy or load balancer limits).",
				"Check that a proxy or load balancer in front of the server supports WebSocket upgrades and keeps connections open long enough.")
		case "connection_time_p95":
			items = append(items,
				"Check the server's load (CPU, event loop lag) while the clients connect: the ramp-up connects them within the warmup.",
				"Check the network latency between this runner and the server, and TLS termination.",
				"Check what the server does on connection: authentication middleware, database or Redis lookups, joining rooms.")
		case "event_latency_p95":
			items = append(items,
				"Investigate the Redis adapter: round trips and pub/sub lag between the server's instances.",
				"Investigate event processing: slow or synchronous handlers blocking the event loop, GC pauses.",
				"Read the latency over time in the HTML report (--html): a steady climb means a backlog (the server cannot keep up with the rate), isolated spikes mean pauses.")
		case "event_loss_ratio":
			items = append(items, "Check for queue overflow: server-side buffers and backpressure, the Redis adapter, events dropped under load.")
			if d := rep.Disconnects; d.Unexpected > 0 {
				items = append(items, fmt.Sprintf("Check connection stability: %d unexpected disconnects%s; in-flight events on a dropped connection are lost.", d.Unexpected, reasons(unexpectedOnly(d.ByReason))))
			} else {
				items = append(items, "Connection stability: no unexpected disconnect during the run, so the server received these events and did not answer them in time.")
			}
			ack := fmt.Sprintf("Check that the server acks every %q event within the ack timeout (%s)", rep.Events.Event, fmtSeconds(rep.Settings.AckTimeout))
			if rep.Events.Late > 0 {
				ack += fmt.Sprintf("; %d of the lost events were acked later, so the server is slow rather than silent", rep.Events.Late)
			}
			items = append(items, ack+".")
		default:
			continue
		}
		out = append(out, ActionItem{Criterion: c.Name, Title: c.Title, Items: items})
	}
	return out
}

// leakActions returns the action items of the failed leaktest criteria.
func leakActions(rep LeakReport) []ActionItem {
	out := []ActionItem{}
	for _, c := range rep.Criteria {
		if c.Passed {
			continue
		}
		var items []string
		switch c.Name {
		case "leak_rate":
			items = append(items, fmt.Sprintf("The memory grew at %s on average over the run (least squares). On a short run this can be the GC sawtooth rather than a leak: check the robust verdict, and run longer (several GC cycles) before hunting.", fmtRate(float64(c.Value))))
			items = append(items, leakHunt()...)
		case "robust_verdict":
			items = append(items, "The floor of the GC sawtooth (the memory left after each collection) rose steadily over the whole run: memory is retained, not just allocated.")
			if !hasFailed(rep.Criteria, "leak_rate") {
				items = append(items, leakHunt()...)
			} else {
				items = append(items, "Hunt it as for the leak rate above; the floor chart of the HTML report (--html) shows when the growth started.")
			}
		default:
			continue
		}
		out = append(out, ActionItem{Criterion: c.Name, Title: c.Title, Items: items})
	}
	return out
}

func hasFailed(cs []Criterion, name string) bool {
	for _, c := range cs {
		if c.Name == name && !c.Passed {
			return true
		}
	}
	return false
}

// renderActions writes the action items of the failed criteria.
func renderActions(w io.Writer, as []ActionItem) {
	if len(as) == 0 {
		return
	}
	fmt.Fprintln(w, "Action items")
	for _, a := range as {
		fmt.Fprintf(w, "  %s failed:\n", a.Title)
		for _, it := range a.Items {
			fmt.Fprintf(w, "    - %s\n", wrapIndent(it, 6, 100))
		}
	}
	fmt.Fprintln(w)
}

// wrapIndent wraps s at width columns, indenting continuation lines by
// indent spaces.
func wrapIndent(s string, indent, width int) string {
	words := strings.Fields(s)
	var b strings.Builder
	col := indent
	for i, w := range words {
		if i > 0 {
			if col+1+len([]rune(w)) > width {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(w)
		col += len([]rune(w))
	}
	return b.String()
}
