package mailcasetest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Fault is the error and panic injection shared by the plugin fakes. The
// zero value injects nothing.
type Fault struct {
	// Err is returned by the call; Times bounds how many calls fail (0
	// means all). After Times failures the fake answers normally, which
	// tests "retry then success".
	Err   error
	Times int
	// Panic, when non-nil, is the value the call panics with (subject to
	// Times like Err).
	Panic any
	// Match, when set, limits the fault to the mails it returns true for.
	Match func(m *mailcase.Message) bool

	fired atomic.Int64
}

// inject panics or returns the injected error for m, if any.
func (f *Fault) inject(m *mailcase.Message) error {
	if f.Err == nil && f.Panic == nil {
		return nil
	}
	if f.Match != nil && !f.Match(m) {
		return nil
	}
	if n := f.fired.Add(1); f.Times > 0 && n > int64(f.Times) {
		return nil
	}
	if f.Panic != nil {
		panic(f.Panic)
	}
	return f.Err
}

// Fired returns how many calls the fault hit (including ones past Times).
func (f *Fault) Fired() int { return int(f.fired.Load()) }

func message(d *mailcase.Delivery) *mailcase.Message {
	if d == nil {
		return nil
	}
	return d.Message
}

// Router is a mailcase.Router returning Result (or the fault), and counting
// calls.
type Router struct {
	Result mailcase.Route
	Fault  Fault
	calls  atomic.Int64
}

var _ mailcase.Router = (*Router)(nil)

// Route implements mailcase.Router.
func (r *Router) Route(_ context.Context, d *mailcase.Delivery) (mailcase.Route, error) {
	r.calls.Add(1)
	if err := r.Fault.inject(message(d)); err != nil {
		return mailcase.Route{}, err
	}
	return r.Result, nil
}

// Calls returns the number of calls.
func (r *Router) Calls() int { return int(r.calls.Load()) }

// Filter is a mailcase.Filter dropping the mails Drop returns true for
// (none when nil) with Rule and Reason, and injecting Fault.
type Filter struct {
	Drop   func(m *mailcase.Message) bool
	Rule   string
	Reason string
	Fault  Fault
	calls  atomic.Int64
}

var _ mailcase.Filter = (*Filter)(nil)

// FilterMail implements mailcase.Filter.
func (f *Filter) FilterMail(_ context.Context, d *mailcase.Delivery) (mailcase.FilterVerdict, error) {
	f.calls.Add(1)
	m := message(d)
	if err := f.Fault.inject(m); err != nil {
		return mailcase.FilterVerdict{}, err
	}
	if f.Drop != nil && m != nil && f.Drop(m) {
		return mailcase.FilterVerdict{Drop: true, Rule: f.Rule, Reason: f.Reason}, nil
	}
	return mailcase.FilterVerdict{}, nil
}

// Calls returns the number of calls.
func (f *Filter) Calls() int { return int(f.calls.Load()) }

// SenderMatcher is a mailcase.SenderMatcher answering from Matches (keyed
// by normalised address; absent addresses are SenderUnknown) and injecting
// Fault (its Match sees no message: use Times).
type SenderMatcher struct {
	mu      sync.Mutex
	Matches map[string]mailcase.SenderMatch
	Fault   Fault
	calls   atomic.Int64
}

var _ mailcase.SenderMatcher = (*SenderMatcher)(nil)

// Set records the match of addr.
func (s *SenderMatcher) Set(addr string, m mailcase.SenderMatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Matches == nil {
		s.Matches = map[string]mailcase.SenderMatch{}
	}
	s.Matches[mailcase.NormalizeAddress(addr)] = m
}

// MatchSender implements mailcase.SenderMatcher.
func (s *SenderMatcher) MatchSender(_ context.Context, from mailcase.Address) (mailcase.SenderMatch, error) {
	s.calls.Add(1)
	if err := s.Fault.inject(nil); err != nil {
		return mailcase.SenderMatch{}, err
	}
	addr := mailcase.NormalizeAddress(from.Email)
	s.mu.Lock()
	m, ok := s.Matches[addr]
	s.mu.Unlock()
	if !ok {
		return mailcase.SenderMatch{Kind: mailcase.SenderUnknown, Address: addr, Reason: "not in the fake matcher"}, nil
	}
	if m.Address == "" {
		m.Address = addr
	}
	return m, nil
}

// Calls returns the number of calls.
func (s *SenderMatcher) Calls() int { return int(s.calls.Load()) }

// ThreadResolver is a mailcase.ThreadResolver returning Decision (zero:
// ThreadNew) or, when Func is set, what Func returns; it injects Fault.
type ThreadResolver struct {
	Decision mailcase.ThreadDecision
	Func     func(ctx context.Context, d *mailcase.Delivery) (mailcase.ThreadDecision, error)
	Fault    Fault
	calls    atomic.Int64
}

var _ mailcase.ThreadResolver = (*ThreadResolver)(nil)

// ResolveThread implements mailcase.ThreadResolver.
func (t *ThreadResolver) ResolveThread(ctx context.Context, d *mailcase.Delivery) (mailcase.ThreadDecision, error) {
	t.calls.Add(1)
	if err := t.Fault.inject(message(d)); err != nil {
		return mailcase.ThreadDecision{}, err
	}
	if t.Func != nil {
		return t.Func(ctx, d)
	}
	if t.Decision.Action == "" {
		return mailcase.ThreadDecision{Action: mailcase.ThreadNew, Reason: "fake resolver"}, nil
	}
	return t.Decision, nil
}

// Calls returns the number of calls.
func (t *ThreadResolver) Calls() int { return int(t.calls.Load()) }

// Clock is a settable clock for Options.Now seams. The zero value reads
// 2026-01-02 03:04:05 UTC.
type Clock struct {
	mu  sync.Mutex
	t   time.Time
	set bool
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t, set: true} }

// Now returns the clock's time; pass c.Now as an Options.Now.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.set {
		c.t, c.set = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), true
	}
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.Now()
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t, c.set = t, true
	c.mu.Unlock()
}
