package mailcase

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// CanLease reports whether the store grants leases (driver.Leaser), which
// several workers use to share mailboxes.
func (s *Store) CanLease() bool {
	_, ok := s.d.(driver.Leaser)
	return ok
}

func checkLease(op, name, holder string, ttl time.Duration, needTTL bool) error {
	if strings.TrimSpace(name) == "" || strings.TrimSpace(holder) == "" {
		return invalid(op, "a lease needs a name and a holder")
	}
	if needTTL && ttl <= 0 {
		return invalid(op, "lease TTL %v is not positive", ttl)
	}
	return nil
}

// AcquireLease grants the lease name to holder for ttl when it is free,
// expired or already held by holder, and reports whether it was granted
// (see driver.Leaser). It is Unimplemented when the driver grants no
// leases. It is retried: acquiring twice for the same holder is harmless.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	const op = "AcquireLease"
	l, ok := s.d.(driver.Leaser)
	if !ok {
		return false, &Error{Code: Unimplemented, Op: op}
	}
	if err := checkLease(op, name, holder, ttl, true); err != nil {
		return false, err
	}
	var got bool
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		got, err = l.AcquireLease(ctx, name, holder, ttl)
		return err
	})
	return got, err
}

// RenewLease extends a lease that holder still holds; it reports false when
// the lease was lost (expired and taken by another holder, or released).
func (s *Store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	const op = "RenewLease"
	l, ok := s.d.(driver.Leaser)
	if !ok {
		return false, &Error{Code: Unimplemented, Op: op}
	}
	if err := checkLease(op, name, holder, ttl, true); err != nil {
		return false, err
	}
	var kept bool
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		kept, err = l.RenewLease(ctx, name, holder, ttl)
		return err
	})
	return kept, err
}

// ReleaseLease gives up a lease held by holder; releasing a lease not held
// is not an error.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	const op = "ReleaseLease"
	l, ok := s.d.(driver.Leaser)
	if !ok {
		return &Error{Code: Unimplemented, Op: op}
	}
	if err := checkLease(op, name, holder, 0, false); err != nil {
		return err
	}
	return s.do(ctx, op, true, func(ctx context.Context) error { return l.ReleaseLease(ctx, name, holder) })
}

// LeaseOptions configures a LeasedSource. A nil *LeaseOptions means
// defaults.
type LeaseOptions struct {
	// TTL is how long a mail stays leased to this worker without renewal;
	// 0 means 30s. Held leases are renewed every TTL/3, so a worker that
	// dies releases its mails to the others after at most TTL.
	TTL time.Duration
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

// LeasedSource shares one Source between several workers (processes on one
// or many machines) through the store's leases: a mail is handed
// out only when this worker acquires the lease "mail:<mailbox>/<id>";
// mails leased by another worker are acknowledged with Retry (left in the
// mailbox) and skipped. Leases are renewed while mails are processed and
// released on Ack. Exactly-once filing does not depend on the leases (the
// store's idempotency keys guarantee it); leases keep workers from doing
// the same work twice and let the others take over the mails of a worker
// that died, once its leases expire.
//
// A LeasedSource is safe for concurrent use. Close stops the renewals; it
// does not close the wrapped source.
type LeasedSource struct {
	src    Source
	store  *Store
	holder string
	ttl    time.Duration
	log    *slog.Logger

	mu     sync.Mutex
	held   map[*Received]string // mail -> lease name
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

var _ Source = (*LeasedSource)(nil)

// NewLeasedSource wraps src for the worker named holder (unique among the
// workers, for example host name and PID). The store must grant leases
// (Store.CanLease).
func NewLeasedSource(src Source, store *Store, holder string, opts *LeaseOptions) (*LeasedSource, error) {
	const op = "NewLeasedSource"
	if src == nil || store == nil || strings.TrimSpace(holder) == "" {
		return nil, invalid(op, "a leased source needs a source, a store and a holder name")
	}
	if !store.CanLease() {
		return nil, &Error{Code: Unimplemented, Op: op, Err: errors.New("the store grants no leases")}
	}
	var o LeaseOptions
	if opts != nil {
		o = *opts
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l := &LeasedSource{src: src, store: store, holder: holder, ttl: o.TTL,
		log:  o.Logger.With("component", "leased-source", "holder", holder),
		held: map[*Received]string{}, stop: make(chan struct{})}
	l.wg.Add(1)
	go l.renew()
	return l, nil
}

// leaseName names the lease of mail r.
func leaseName(r *Received) string {
	id := r.ID
	if id == "" {
		h := sha256.Sum256(r.Raw)
		id = "sha256:" + hex.EncodeToString(h[:])
	}
	return "mail:" + r.Mailbox + "/" + id
}

// Receive returns the next mail this worker could lease.
func (l *LeasedSource) Receive(ctx context.Context) (*Received, error) {
	for {
		r, err := l.src.Receive(ctx)
		if err != nil {
			return nil, err
		}
		name := leaseName(r)
		got, err := l.store.AcquireLease(ctx, name, l.holder, l.ttl)
		if err != nil || !got {
			reason := "leased by another worker"
			if err != nil {
				reason = "lease unavailable: " + err.Error()
			}
			if aerr := l.src.Ack(context.WithoutCancel(ctx), r, Retry, reason); aerr != nil {
				l.log.WarnContext(ctx, "releasing a mail leased elsewhere failed", "mail", r.ID, "err", aerr)
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		l.mu.Lock()
		l.held[r] = name
		l.mu.Unlock()
		return r, nil
	}
}

// Ack acknowledges r to the wrapped source, then releases its lease.
func (l *LeasedSource) Ack(ctx context.Context, r *Received, d Disposition, reason string) error {
	err := l.src.Ack(ctx, r, d, reason)
	l.mu.Lock()
	name, ok := l.held[r]
	delete(l.held, r)
	l.mu.Unlock()
	if ok {
		if rerr := l.store.ReleaseLease(context.WithoutCancel(ctx), name, l.holder); rerr != nil {
			// It expires by itself after the TTL.
			l.log.WarnContext(ctx, "releasing a lease failed", "lease", name, "err", rerr)
		}
	}
	return err
}

// renew extends the held leases every TTL/3 until Close.
func (l *LeasedSource) renew() {
	defer l.wg.Done()
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		names := make([]string, 0, len(l.held))
		for _, n := range l.held {
			names = append(names, n)
		}
		l.mu.Unlock()
		// One round may take until the next is due plus a margin: the
		// leases are still valid for two thirds of the TTL.
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/2)
		for _, n := range names {
			kept, err := l.store.RenewLease(ctx, n, l.holder, l.ttl)
			switch {
			case err != nil:
				l.log.Warn("renewing a lease failed", "lease", n, "err", err)
			case !kept:
				// Another worker may now process it too; the store's
				// idempotency keys still file it once.
				l.log.Warn("lost the lease of a mail in process", "lease", n)
			}
		}
		cancel()
	}
}

// Close stops renewing leases. Leases still held expire after the TTL.
func (l *LeasedSource) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	return nil
}
