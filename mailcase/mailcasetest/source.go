package mailcasetest

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Ack is one acknowledgement recorded by Source.
type Ack struct {
	// ID is the Received.ID ("1", "2", ... in order of Add).
	ID          string
	Raw         []byte
	Disposition mailcase.Disposition
	Reason      string
}

// Source is a mailcase.Source over a slice of raw mails. It hands them out
// in order, records every Ack, and returns io.EOF when exhausted (or blocks
// until ctx is done when Endless is set). It is safe for concurrent use.
type Source struct {
	// Mailbox and Quiet are copied into every Received.
	Mailbox string
	Quiet   bool
	// Endless makes Receive wait for more mail (Add) or ctx instead of
	// returning io.EOF once exhausted, like a mailbox that stays open.
	Endless bool
	// ReceiveErr, when set, is returned by Receive once ReceiveErrAfter
	// mails were handed out; ReceiveErrTimes bounds how many times (0 means
	// every call).
	ReceiveErr      error
	ReceiveErrAfter int
	ReceiveErrTimes int
	// AckErr, when set, is returned by every Ack (the ack is still
	// recorded).
	AckErr error

	mu       sync.Mutex
	mails    [][]byte
	next     int
	errs     int
	acks     []Ack
	inFlight map[string]bool
	wake     chan struct{}
}

var _ mailcase.Source = (*Source)(nil)

// NewSource returns a Source handing out raws in order.
func NewSource(raws ...[]byte) *Source {
	s := &Source{inFlight: map[string]bool{}, wake: make(chan struct{})}
	s.mails = append(s.mails, raws...)
	return s
}

// Add appends mails; it wakes a Receive waiting on an Endless source.
func (s *Source) Add(raws ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.mails = append(s.mails, raws...)
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *Source) init() {
	if s.inFlight == nil {
		s.inFlight = map[string]bool{}
	}
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
}

// Receive implements mailcase.Source.
func (s *Source) Receive(ctx context.Context) (*mailcase.Received, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.init()
		if s.ReceiveErr != nil && s.next >= s.ReceiveErrAfter && (s.ReceiveErrTimes == 0 || s.errs < s.ReceiveErrTimes) {
			s.errs++
			s.mu.Unlock()
			return nil, s.ReceiveErr
		}
		if s.next < len(s.mails) {
			raw := s.mails[s.next]
			s.next++
			id := strconv.Itoa(s.next)
			s.inFlight[id] = true
			s.mu.Unlock()
			return &mailcase.Received{Raw: raw, Mailbox: s.Mailbox, ID: id, Size: int64(len(raw)),
				Quiet: s.Quiet, Attempt: 1}, nil
		}
		if !s.Endless {
			s.mu.Unlock()
			return nil, io.EOF
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Ack implements mailcase.Source. Acknowledging a mail that is not in
// flight is an error.
func (s *Source) Ack(_ context.Context, r *mailcase.Received, d mailcase.Disposition, reason string) error {
	if r == nil {
		return errors.New("mailcasetest: Ack of nil mail")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if !s.inFlight[r.ID] {
		return errors.New("mailcasetest: Ack of mail " + r.ID + " that is not in flight")
	}
	delete(s.inFlight, r.ID)
	s.acks = append(s.acks, Ack{ID: r.ID, Raw: r.Raw, Disposition: d, Reason: reason})
	return s.AckErr
}

// Acks returns the acknowledgements so far, in call order.
func (s *Source) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// Count returns how many acknowledgements had disposition d.
func (s *Source) Count(d mailcase.Disposition) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.acks {
		if a.Disposition == d {
			n++
		}
	}
	return n
}

// InFlight returns how many mails were received and not acknowledged.
func (s *Source) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inFlight)
}

// Remaining returns how many mails were not yet received.
func (s *Source) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mails) - s.next
}
