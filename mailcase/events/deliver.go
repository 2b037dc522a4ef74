package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// DelivererOptions configures a Deliverer. A nil options pointer is
// equivalent to a zero options value.
type DelivererOptions struct {
	// Holder names this deliverer in claims; "" means host-pid-random,
	// unique per Deliverer.
	Holder string
	// Batch is the number of deliveries of one sink claimed at once; 0
	// means 50.
	Batch int
	// Parallel is the number of sends of one batch in flight at once; 0
	// means 8.
	Parallel int
	// ClaimTTL is how long a claimed batch is reserved; 0 means 2 minutes.
	// Every send of the batch ends by a deadline a tenth of the TTL before
	// the claim does, counted from before the claim call (the time the
	// claim took, and the wait of a send for its turn among Parallel, count
	// against it), so another deliverer never takes an event while it is
	// being sent. The deadline is a span on this process's monotonic
	// clock and the lease a span on the store's clock (SQL stores stamp
	// it with the database's time, which also judges its expiry), so the
	// two clocks need not agree on the time of day, only on how fast time
	// passes: a store clock stepped forward by more than a tenth of the
	// TTL while a batch is out can let another deliverer send an event
	// again (at least once still holds; the receiver dedupes on the
	// idempotency key).
	ClaimTTL time.Duration
	// PollInterval is the pause of Run after a pass that found nothing
	// due; 0 means 1 second.
	PollInterval time.Duration
	// MaxAttempts bounds the attempts of one delivery; the last failed
	// attempt makes it fail, with its error kept. 0 means 10.
	MaxAttempts int
	// BackoffMin and BackoffMax bound the delay before a retry: BackoffMin
	// doubled at each failed attempt, up to BackoffMax, less up to a fifth
	// of random jitter (so retries of many events spread out). 0 means 1
	// second and 15 minutes.
	BackoffMin, BackoffMax time.Duration
	// Logger receives final failures (Warn) and retries (Debug); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Deliverer delivers the events of a store's log to sinks, at least once:
// see the package comment. Several Deliverers share a log safely. It is
// safe for concurrent use.
type Deliverer struct {
	store *mailcase.Store
	sinks []Sink
	o     DelivererOptions
	log   *slog.Logger
	mu    sync.Mutex
	rnd   *mrand.Rand
}

// NewDeliverer returns a Deliverer of store's event log to sinks.
func NewDeliverer(store *mailcase.Store, sinks []Sink, opts *DelivererOptions) (*Deliverer, error) {
	if store == nil || !store.CanEventLog() {
		return nil, errors.New("events: a deliverer needs a store with an event log")
	}
	var o DelivererOptions
	if opts != nil {
		o = *opts
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = 2 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 15 * time.Minute
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	seen := map[string]bool{}
	for _, s := range sinks {
		if seen[s.SinkName()] {
			return nil, fmt.Errorf("events: sink %q given twice", s.SinkName())
		}
		seen[s.SinkName()] = true
	}
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	return &Deliverer{store: store, sinks: append([]Sink(nil), sinks...), o: o,
		log: o.Logger.With("component", "events-deliverer"), rnd: mrand.New(mrand.NewChaCha8(seed))}, nil
}

// Backoff returns the delay before the attempt after failed attempt n
// (counting from 1): BackoffMin·2^(n-1), capped at BackoffMax, less up to
// a fifth of jitter.
func (d *Deliverer) Backoff(n int) time.Duration {
	b := d.o.BackoffMin
	for i := 1; i < n && b < d.o.BackoffMax; i++ {
		b *= 2
	}
	b = min(b, d.o.BackoffMax)
	d.mu.Lock()
	j := time.Duration(d.rnd.Int64N(int64(b)/5 + 1))
	d.mu.Unlock()
	return b - j
}

// RunOnce claims and sends one batch per sink, and returns the number of
// deliveries attempted. It returns the first error of the log; send
// failures are recorded on the deliveries, not returned.
func (d *Deliverer) RunOnce(ctx context.Context) (int, error) {
	total := 0
	for _, s := range d.sinks {
		n, err := d.runSink(ctx, s)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (d *Deliverer) runSink(ctx context.Context, s Sink) (int, error) {
	// The store stamps the claim at some moment of the call, its lease
	// ending ClaimTTL after that: measured from before the call, the
	// deadline of the sends comes before the lease ends however long the
	// call took.
	start := time.Now()
	batch, err := d.store.ClaimDeliveries(ctx, s.SinkName(), d.o.Holder, d.o.Batch, d.o.ClaimTTL)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	sctx, cancel := context.WithDeadline(ctx, start.Add(d.o.ClaimTTL-d.o.ClaimTTL/10))
	defer cancel()
	sem := make(chan struct{}, d.o.Parallel)
	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	for i := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = d.deliver(ctx, sctx, s, &batch[i])
		})
	}
	wg.Wait()
	return len(batch), errors.Join(errs...)
}

// deliver sends one claimed delivery (under sctx) and records the result
// (under ctx, even when sctx ran out).
func (d *Deliverer) deliver(ctx, sctx context.Context, s Sink, dl *driver.EventDelivery) error {
	e := FromRecord(&dl.Event)
	var res driver.DeliveryResult
	err := d.send(sctx, s, &e, dl.Attempts)
	var permanent interface{ Permanent() bool }
	switch {
	case err == nil:
		res.Status = driver.DeliveryDelivered
	case errors.As(err, &permanent) && permanent.Permanent(), dl.Attempts >= d.o.MaxAttempts:
		res = driver.DeliveryResult{Status: driver.DeliveryFailed, Error: err.Error()}
	default:
		wait := d.Backoff(dl.Attempts)
		var he *HTTPError
		if errors.As(err, &he) && he.RetryAfter > wait {
			wait = min(he.RetryAfter, d.o.BackoffMax)
		}
		res = driver.DeliveryResult{Status: driver.DeliveryPending, RetryAfter: wait, Error: err.Error()}
	}
	if ctx.Err() != nil && res.Status != driver.DeliveryDelivered {
		return nil // shutting down: the claim expires and the event is sent again
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if ferr := d.store.FinishDelivery(fctx, s.SinkName(), dl.Event.Seq, d.o.Holder, &res); ferr != nil {
		if mailcase.Code(ferr) == mailcase.FailedPrecondition {
			d.log.WarnContext(ctx, "event delivery outlived its claim; it may be delivered again", "sink", s.SinkName(), "event_id", e.ID)
			return nil
		}
		return ferr
	}
	switch res.Status {
	case driver.DeliveryFailed:
		d.log.WarnContext(ctx, "event delivery failed", "sink", s.SinkName(), "event_id", e.ID, "kind", e.Kind, "attempt", dl.Attempts, "err", res.Error)
	case driver.DeliveryPending:
		d.log.DebugContext(ctx, "event delivery retry scheduled", "sink", s.SinkName(), "event_id", e.ID, "attempt", dl.Attempts, "retry_after", res.RetryAfter, "err", res.Error)
	}
	return nil
}

// send calls the sink, turning a panic into an error.
func (d *Deliverer) send(ctx context.Context, s Sink, e *Event, attempt int) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("events: sink %s panicked: %v", s.SinkName(), v)
		}
	}()
	return s.Send(ctx, e, attempt)
}

// Run delivers until ctx is done, pausing PollInterval after a pass that
// found nothing due (and after an error of the log, which it logs). It
// returns nil when ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := d.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.ErrorContext(ctx, "event delivery pass failed", "err", err)
		}
		if n > 0 && err == nil {
			t.Reset(0)
		} else {
			t.Reset(d.o.PollInterval)
		}
	}
}
