package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// A Sink receives events from the durable log through a [Deliverer]:
// [Webhook] and [NATSSink] implement it.
type Sink interface {
	// SinkName names the sink in the log's deliveries; it must stay the
	// same across restarts (a renamed sink starts with no deliveries).
	SinkName() string
	// Accepts reports whether events of kind are delivered to the sink
	// (its event filter).
	Accepts(kind string) bool
	// Send delivers e; attempt counts from 1. An error whose Permanent()
	// method returns true fails the delivery at once; any other error is
	// retried. Error texts must not carry secrets.
	Send(ctx context.Context, e *Event, attempt int) error
}

// MatchKind reports whether kind matches one of patterns: an exact kind,
// a prefix ending in ".*" ("case.*"), or "*". No patterns match every kind.
func MatchKind(patterns []string, kind string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		switch {
		case p == "*" || p == kind:
			return true
		case strings.HasSuffix(p, ".*") && strings.HasPrefix(kind, p[:len(p)-1]):
			return true
		}
	}
	return false
}

// RecorderOptions configures a Recorder. A nil options pointer is
// equivalent to a zero options value.
type RecorderOptions struct {
	// Sinks get a delivery of every event their filter accepts; nil means
	// none (observers and the log only). Sinks need a store with an event
	// log.
	Sinks []Sink
	// Logger receives failed appends (Error) and observer drops (Warn);
	// nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of event times; nil means time.Now.
	Now func() time.Time
	// AppendTimeout bounds one append to the log; 0 means 10 seconds.
	AppendTimeout time.Duration
}

// Stats counts what a Recorder did.
type Stats struct {
	// Recorded events were appended to the log (or handed to observers
	// when there is no log); Failed appends lost the event.
	Recorded, Failed uint64
	// Dropped counts, per observer name, the events dropped because the
	// observer's buffer was full.
	Dropped map[string]uint64
}

// Recorder records lifecycle events: to the store's durable event log with
// a delivery per sink, then to in-process observers. It is safe for
// concurrent use. Close stops the observers.
type Recorder struct {
	store *mailcase.Store // nil or without an event log: observers only
	o     RecorderOptions
	log   *slog.Logger

	recorded, failed atomic.Uint64

	mu        sync.Mutex
	closed    bool
	observers []*observer
}

// NewRecorder returns a Recorder writing to store's event log. store may
// be nil, or lack an event log, when no sink is configured: events then go
// to observers only.
func NewRecorder(store *mailcase.Store, opts *RecorderOptions) (*Recorder, error) {
	var o RecorderOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AppendTimeout <= 0 {
		o.AppendTimeout = 10 * time.Second
	}
	o.Sinks = append([]Sink(nil), o.Sinks...)
	seen := map[string]bool{}
	for _, s := range o.Sinks {
		n := s.SinkName()
		if n == "" || len(n) > 128 || seen[n] {
			return nil, fmt.Errorf("events: sink name %q is empty, too long or used twice", n)
		}
		seen[n] = true
	}
	if store != nil && !store.CanEventLog() {
		store = nil
	}
	if store == nil && len(o.Sinks) > 0 {
		return nil, errors.New("events: sinks need a store with an event log")
	}
	return &Recorder{store: store, o: o, log: o.Logger.With("component", "events")}, nil
}

var _ mailcase.EventRecorder = (*Recorder)(nil)

// OnEvent records an event; it has the shape of the OnEvent callbacks of
// the pipeline, the outbox and the worklists, so a method value wires
// them. Failures are logged and counted (see Stats), never returned.
func (r *Recorder) OnEvent(ctx context.Context, kind string, caseID driver.CaseID, data map[string]any) {
	_, _ = r.Record(ctx, kind, caseID, data)
}

// Record records an event and returns it (with its Seq when the log
// issued one). The event is durable when the error is nil and the
// recorder has a log.
func (r *Recorder) Record(ctx context.Context, kind string, caseID driver.CaseID, data map[string]any) (Event, error) {
	rec, err := r.PrepareEvent(kind, caseID, data)
	if err != nil {
		return Event{}, err
	}
	e := FromRecord(rec)
	if r.store != nil {
		if err := r.appendBatch(ctx, []*driver.EventRecord{rec}); err != nil {
			return e, err
		}
	}
	r.recorded.Add(1)
	r.notify(&e)
	return e, nil
}

// PrepareEvent returns the record of an event, ready for the store's
// event log: its ID (derived from the mail or outgoing message the payload
// names, so a repeat is kept once; random otherwise), version, time by the
// recorder's clock, payload as JSON and the sinks whose filter accepts the
// kind. It keeps nothing: see Record, or mailcase.Options.Events, which
// keeps the records of a filed mail in the filing's transaction. A failure
// is logged and counted (Stats.Failed).
func (r *Recorder) PrepareEvent(kind string, caseID driver.CaseID, data map[string]any) (*driver.EventRecord, error) {
	if !validKind(kind) {
		r.failed.Add(1)
		err := fmt.Errorf("events: invalid event kind %q", kind)
		r.log.Error("event not recorded", "kind", kind, "err", err)
		return nil, err
	}
	if data == nil {
		data = map[string]any{}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		r.failed.Add(1)
		r.log.Error("event not recorded", "kind", kind, "case_id", caseID, "err", err)
		return nil, fmt.Errorf("events: payload of %s: %w", kind, err)
	}
	rec := &driver.EventRecord{ID: eventID(kind, caseID, data), Kind: kind, CaseID: caseID,
		Time: r.o.Now().UTC().Truncate(time.Microsecond), Version: Version(kind), Data: raw}
	for _, s := range r.o.Sinks {
		if s.Accepts(kind) {
			rec.Sinks = append(rec.Sinks, s.SinkName())
		}
	}
	return rec, nil
}

// EventStore returns the store whose event log the recorder writes, or
// nil when it has none (observers only).
func (r *Recorder) EventStore() *mailcase.Store { return r.store }

// EventsFiled takes the records of a filed mail's events (see
// mailcase.Options.Events): when kept is false it appends them to the log
// in one batch, then it counts them and notifies the observers. A failed
// append is logged and counted, never returned.
func (r *Recorder) EventsFiled(ctx context.Context, recs []*driver.EventRecord, kept bool) {
	if len(recs) == 0 {
		return
	}
	if !kept && r.store != nil {
		if err := r.appendBatch(ctx, recs); err != nil {
			return
		}
	}
	r.recorded.Add(uint64(len(recs)))
	for _, rec := range recs {
		e := FromRecord(rec)
		r.notify(&e)
	}
}

// appendBatch appends recs to the log in one call, bounded by
// AppendTimeout and not cancelled with ctx (the event of a finished change
// is kept even when the caller gave up); a failure is logged and counted.
func (r *Recorder) appendBatch(ctx context.Context, recs []*driver.EventRecord) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.AppendTimeout)
	err := r.store.AppendEvents(actx, recs)
	cancel()
	if err != nil {
		r.failed.Add(uint64(len(recs)))
		for _, rec := range recs {
			r.log.ErrorContext(ctx, "event not recorded", "kind", rec.Kind, "case_id", rec.CaseID, "event_id", rec.ID, "err", err)
		}
	}
	return err
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() Stats {
	s := Stats{Recorded: r.recorded.Load(), Failed: r.failed.Load(), Dropped: map[string]uint64{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.observers {
		s.Dropped[o.name] += o.dropped.Load()
	}
	return s
}

// observer is one registered observer and its goroutine.
type observer struct {
	name    string
	ch      chan Event
	dropped atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// Observe calls fn, on a goroutine of its own, with every event recorded
// from now on, until the returned stop function or Close is called. Up to
// buffer events wait for fn (0 means 256); when the buffer is full an event
// is dropped for this observer, counted in Stats under name and logged,
// and the recorder goes on. fn gets a context cancelled by stop or Close;
// a panic in fn is recovered and logged. stop waits until fn returned.
func (r *Recorder) Observe(name string, buffer int, fn func(ctx context.Context, e Event)) (stop func()) {
	if buffer <= 0 {
		buffer = 256
	}
	o := &observer{name: name, ch: make(chan Event, buffer), stop: make(chan struct{}), done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		close(o.done)
		return func() {}
	}
	r.observers = append(r.observers, o)
	r.mu.Unlock()
	go r.runObserver(o, fn)
	return func() { r.stopObserver(o) }
}

func (r *Recorder) runObserver(o *observer, fn func(context.Context, Event)) {
	defer close(o.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-o.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	call := func(e Event) {
		defer func() {
			if v := recover(); v != nil {
				r.log.ErrorContext(ctx, "recovered panic in event observer", "observer", o.name, "err", fmt.Sprint(v))
			}
		}()
		fn(ctx, e)
	}
	for {
		select {
		case <-o.stop:
			return
		case e := <-o.ch:
			call(e)
		}
	}
}

func (r *Recorder) stopObserver(o *observer) {
	o.once.Do(func() { close(o.stop) })
	<-o.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.observers {
		if x == o {
			r.observers = append(r.observers[:i:i], r.observers[i+1:]...)
			break
		}
	}
}

// notify hands e to every observer without waiting.
func (r *Recorder) notify(e *Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.observers {
		select {
		case o.ch <- *e:
		default:
			n := o.dropped.Add(1)
			if n == 1 || n%1000 == 0 {
				r.log.Warn("event observer too slow; events dropped", "observer", o.name, "dropped", n)
			}
		}
	}
}

// Close stops every observer (waiting for each to return) and makes later
// Observe calls no-ops. Recording continues to the log. A second Close
// returns nil.
func (r *Recorder) Close() error {
	r.mu.Lock()
	r.closed = true
	obs := append([]*observer(nil), r.observers...)
	r.mu.Unlock()
	for _, o := range obs {
		r.stopObserver(o)
	}
	return nil
}
