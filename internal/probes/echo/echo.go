// Package echo is the acked-echo probe: at a fixed rate over the pool, on an
// open-loop schedule, a client emits an event (a fixed payload, or a
// template of the application's own) and the server answers it, with an
// ack or with a reply event matched by a field. Loss and latency are
// accounted exactly once per event (package tracker), latency from the
// scheduled send time.
package echo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/jsonpath"
	"github.com/generic-corp/soak-exporter/internal/payload"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/tracker"
)

// Name is the probe's name.
const Name = "echo"

const (
	// sweepInterval is the resolution of answer timeouts.
	sweepInterval = 100 * time.Millisecond
	// lateHorizon is how long after its timeout a late answer is still
	// recognised (and counted late rather than unexpected).
	lateHorizon = time.Minute
	// minPayloadBytes is the smallest default payload that holds the
	// sequence number and the scheduled time.
	minPayloadBytes = 64
)

// Config configures the echo probe, read from SOAK_* variables.
type Config struct {
	EventName    string        `envconfig:"EVENT_NAME" default:"echo" desc:"Event the echo probe emits; the server answers it with an ack (or with SOAK_EVENT_REPLY_EVENT)."`
	EventRate    float64       `envconfig:"EVENT_RATE" default:"100" desc:"Echo events per second in total over the pool (open loop; 0 disables the probe)."`
	PayloadBytes int           `envconfig:"EVENT_PAYLOAD_BYTES" default:"64" desc:"Size of the default JSON payload of one echo event ({\"seq\",\"t\",\"pad\"}, padded)."`
	AckTimeout   time.Duration `envconfig:"ACK_TIMEOUT" default:"5s" desc:"An answer later than this after the scheduled send time counts as lost (and as late if it arrives afterwards)."`
	Payload      string        `envconfig:"EVENT_PAYLOAD" default:"" desc:"JSON template of the event's payload, with placeholders {{seq}}, {{ts}} (scheduled time, Unix ms), {{client}}, {{uuid}}, {{pad N}}, e.g. {\"roomId\":\"soak\",\"text\":\"hi {{pad 32}}\",\"clientMsgId\":\"{{uuid}}\"}; empty: {\"seq\",\"t\",\"pad\"} padded to SOAK_EVENT_PAYLOAD_BYTES."`
	ReplyEvent   string        `envconfig:"EVENT_REPLY_EVENT" default:"" desc:"Server event that answers the echo event instead of an ack (e.g. message:new); needs SOAK_EVENT_REPLY_MATCH."`
	ReplyMatch   string        `envconfig:"EVENT_REPLY_MATCH" default:"" desc:"Field (dotted path) whose value in the reply equals the same field in the request (e.g. clientMsgId); it must hold {{seq}} or {{uuid}} in SOAK_EVENT_PAYLOAD so that each reply answers one event."`
}

// MaxEventRate is the highest SOAK_EVENT_RATE accepted, in events per
// second over the whole agent (one pool's capacity, so several targets keep
// a margin). The pool's stream hands the items due on a 5 ms grid
// (pool.SendTick, 200 ticks a second) to their sessions' writers:
// 100,000/s is 500 items per tick, each written by its own connection's
// writer, 10 microseconds of CPU per write on each of 2 cores, about what
// one small frame costs. Above, the agent's own backlog, not the target,
// would decide how many events go out (it showed as hundreds of thousands
// of "lost" events at 1e9/s), so such a rate is refused at start.
const MaxEventRate = 100_000

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	switch {
	case c.EventName == "":
		return errors.New("SOAK_EVENT_NAME: must not be empty")
	case c.EventRate < 0 || c.EventRate != c.EventRate:
		return fmt.Errorf("SOAK_EVENT_RATE: must be >= 0, got %v", c.EventRate)
	case c.EventRate > MaxEventRate:
		// MaxEventRate explains the figure.
		return fmt.Errorf("SOAK_EVENT_RATE: must be at most %d events per second (one pool's send capacity: 500 writes per 5 ms send tick), got %v", MaxEventRate, c.EventRate)
	case c.PayloadBytes < minPayloadBytes || c.PayloadBytes > 1<<20:
		return fmt.Errorf("SOAK_EVENT_PAYLOAD_BYTES: must be in [%d, 1048576], got %d", minPayloadBytes, c.PayloadBytes)
	case c.AckTimeout <= 0:
		return fmt.Errorf("SOAK_ACK_TIMEOUT: must be > 0, got %q", c.AckTimeout)
	case c.ReplyMatch != "" && c.ReplyEvent == "":
		return errors.New("SOAK_EVENT_REPLY_EVENT: required with SOAK_EVENT_REPLY_MATCH")
	case c.ReplyEvent != "" && c.ReplyMatch == "":
		return errors.New("SOAK_EVENT_REPLY_MATCH: required with SOAK_EVENT_REPLY_EVENT (the field that ties a reply to its event)")
	}
	_, _, err := c.templates()
	return err
}

// templates compiles the payload template and, in reply mode, the
// template of the matched field; both nil for the default payload.
func (c Config) templates() (tpl, match *payload.Template, err error) {
	if c.Payload == "" {
		if c.ReplyMatch != "" && c.ReplyMatch != "seq" {
			return nil, nil, fmt.Errorf("SOAK_EVENT_REPLY_MATCH: the default payload can only be matched on seq; set SOAK_EVENT_PAYLOAD to match on %q", c.ReplyMatch)
		}
		return nil, nil, nil
	}
	tpl, err = payload.Parse(c.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("SOAK_EVENT_PAYLOAD: %w", err)
	}
	if names := tpl.VarNames(); len(names) > 0 {
		return nil, nil, fmt.Errorf("SOAK_EVENT_PAYLOAD: {{var %s}} needs a scenario step to capture it (SOAK_SCENARIO_FILE)", names[0])
	}
	if c.ReplyMatch == "" {
		return tpl, nil, nil
	}
	match, err = tpl.At(c.ReplyMatch)
	if err != nil {
		return nil, nil, fmt.Errorf("SOAK_EVENT_REPLY_MATCH: not in SOAK_EVENT_PAYLOAD: %w", err)
	}
	if !match.Unique() {
		return nil, nil, fmt.Errorf("SOAK_EVENT_REPLY_MATCH: the value of %q in SOAK_EVENT_PAYLOAD must hold {{seq}} or {{uuid}}, so that each reply answers one event", c.ReplyMatch)
	}
	return tpl, match, nil
}

// Probe is the echo probe of an agent.
type Probe struct {
	cfg Config
	m   *metrics
	reg prometheus.Registerer
	log *zap.Logger
	now func() time.Time
	obs pool.Observer

	tpl   *payload.Template // nil: the default payload
	match *payload.Template // reply mode with a template: the matched field

	mu    sync.Mutex
	parts []*part
}

// New returns the echo probe, or nil when cfg disables it (rate 0).
func New(cfg Config, d pool.Deps) (*Probe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.EventRate == 0 {
		return nil, nil
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	tpl, match, _ := cfg.templates() // validated
	return &Probe{cfg: cfg, m: m, reg: d.Registerer, log: d.Logger, now: d.Now, obs: d.Observer, tpl: tpl, match: match}, nil
}

// Name implements pool.Probe.
func (pr *Probe) Name() string { return Name }

// part is the echo probe in one pool.
type part struct {
	pr      *Probe
	id      pool.ID
	tracker *tracker.Tracker
	sink    *sink
}

// Attach implements pool.Probe: a tracker and a stream per pool.
func (pr *Probe) Attach(p *pool.Pool, id pool.ID) (pool.Part, error) {
	target := p.Target().Name
	s := pr.m.sink(target, pr.cfg.EventName, pr.obs, p.CountUnexpectedAck)
	pt := &part{pr: pr, id: id, sink: s, tracker: tracker.New(pr.cfg.AckTimeout, lateHorizon, pr.now, s)}
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        MetricInFlight,
		Help:        "Echo events sent and neither answered nor lost yet.",
		ConstLabels: prometheus.Labels{"target": target},
	}, func() float64 { return float64(pt.tracker.InFlight()) })
	if err := pr.reg.Register(inflight); err != nil {
		return nil, err
	}
	err := p.AddStream(&pool.Stream{
		Rate:    pr.cfg.EventRate * p.Share(),
		MaxLate: pr.cfg.AckTimeout,
		Fire:    pt.fire,
		Skipped: s.Skipped,
		Dropped: s.Dropped,
	})
	if err != nil {
		return nil, err
	}
	pr.mu.Lock()
	pr.parts = append(pr.parts, pt)
	pr.mu.Unlock()
	return pt, nil
}

// Run sweeps the answer timeouts of every pool until ctx ends.
func (pr *Probe) Run(ctx context.Context) error {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	return pr.run(ctx, t.C)
}

func (pr *Probe) run(ctx context.Context, tick <-chan time.Time) error {
	pr.log.Info("echo probe started", zap.String("event", pr.cfg.EventName), zap.Float64("rate", pr.cfg.EventRate))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			now := pr.now()
			for _, pt := range pr.snapshot() {
				pt.tracker.Sweep(now)
			}
		}
	}
}

func (pr *Probe) snapshot() []*part {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.parts
}

// InFlight is the number of events sent and not yet resolved, over every
// pool.
func (pr *Probe) InFlight() int {
	n := 0
	for _, pt := range pr.snapshot() {
		n += pt.tracker.InFlight()
	}
	return n
}

// Events are the reply event in reply mode.
func (pt *part) Events() []string {
	if pt.pr.cfg.ReplyEvent == "" {
		return nil
	}
	return []string{pt.pr.cfg.ReplyEvent}
}

// Init gives the session its own ack id space.
func (pt *part) Init(*pool.Session) any { return pt.tracker.NewConn() }

func (pt *part) Open(*pool.Session)                          {}
func (pt *part) Close(*pool.Session, probe.DisconnectReason) {}

// Event resolves the event a reply answers, on the session that sent it;
// replies that match nothing (a broadcast reaching other members of a room)
// are ignored.
func (pt *part) Event(s *pool.Session, _ string, args []json.RawMessage) {
	if len(args) == 0 {
		return
	}
	v, ok := jsonpath.Lookup(args[0], pt.pr.cfg.ReplyMatch)
	if !ok {
		return
	}
	s.State(pt.id).(*tracker.Conn).Reply(jsonpath.Canonical(v), args)
}

func (pt *part) Ack(s *pool.Session, id uint64, args []json.RawMessage) {
	s.State(pt.id).(*tracker.Conn).Ack(id, args)
}

// fire sends event k on s. The request is registered before the write, so
// that an answer can never arrive for an unknown id; a failed write leaves
// it to be lost at its deadline.
func (pt *part) fire(ctx context.Context, s *pool.Session, k uint64, scheduled time.Time, buf []byte) []byte {
	pr := pt.pr
	conn := s.State(pt.id).(*tracker.Conn)
	var v payload.Vars
	if pr.tpl != nil {
		v = payload.Vars{Seq: k, TS: scheduled, Client: s.Slot()}
		if pr.tpl.NeedsUUID() {
			v.NewUUID(rand.Uint64(), rand.Uint64())
		}
		buf = pr.tpl.Append(buf, &v)
	} else {
		buf = appendPayload(buf, k, scheduled, pr.cfg.PayloadBytes)
	}
	var err error
	if pr.cfg.ReplyEvent == "" {
		id := conn.Register(scheduled, nil)
		err = s.EmitAck(ctx, pt.id, id, pr.cfg.EventName, buf)
	} else {
		key := strconv.FormatUint(k, 10)
		if pr.match != nil {
			key = jsonpath.Canonical(pr.match.Append(nil, &v))
		}
		if !conn.RegisterReply(scheduled, key, nil) {
			pt.sink.Dropped(1) // cannot happen with {{seq}} or {{uuid}} in the key
			return buf
		}
		err = s.Emit(ctx, pr.cfg.EventName, buf)
	}
	if err != nil {
		pr.log.Debug("emit failed", zap.Error(err))
	}
	return buf
}

// appendPayload appends {"seq":N,"t":UNIXNANO,"pad":"xx..."} padded to size
// bytes (or more, if size is too small to hold the numbers).
func appendPayload(b []byte, seq uint64, at time.Time, size int) []byte {
	start := len(b)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, at.UnixNano(), 10)
	b = append(b, `,"pad":"`...)
	for n := size - (len(b) - start) - 2; n > 0; n-- {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}
