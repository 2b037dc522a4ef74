package filesource

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/emailcrm/emailcrm/mailcase"
)

// backend is one kind of file store. Its methods are called with the
// Source's lock held.
type backend interface {
	// next returns the next mail, or io.EOF.
	next() (*mailcase.Received, error)
	// ack applies a disposition to a mail handed out by next.
	ack(r *mailcase.Received, d mailcase.Disposition, reason string) error
	close() error
}

// syncer is a backend whose ack only writes its record: sync, called
// after ack without the Source's lock, makes the records written so far
// durable before Ack returns.
type syncer interface {
	sync() error
}

// Source is a mailcase.Source over local files (see the package
// documentation). It is safe for concurrent use. Close it when done.
type Source struct {
	o Options
	b backend

	mu       sync.Mutex
	inFlight map[string]bool
	closed   bool
}

var _ mailcase.Source = (*Source)(nil)

func newSource(o Options, b backend) *Source {
	return &Source{o: o, b: b, inFlight: map[string]bool{}}
}

// Receive returns the next mail, io.EOF when every mail was handed out, or
// ctx's error.
func (s *Source) Receive(ctx context.Context) (*mailcase.Received, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, mailcase.ErrClosed
	}
	r, err := s.b.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, &mailcase.Error{Code: mailcase.Unknown, Op: "filesource.Receive", Err: err}
	}
	r.Mailbox, r.Quiet = s.o.Mailbox, s.o.Quiet
	if r.Attempt == 0 {
		r.Attempt = 1
	}
	s.inFlight[r.ID] = true
	return r, nil
}

// Ack applies the disposition of a mail handed out by Receive. It runs
// even when ctx is done (the pipeline acknowledges committed mail during
// shutdown); file operations are not interruptible.
func (s *Source) Ack(_ context.Context, r *mailcase.Received, d mailcase.Disposition, reason string) error {
	if r == nil {
		return errNotInFlight
	}
	if err := s.ack(r, d, reason); err != nil {
		return err
	}
	if sy, ok := s.b.(syncer); ok {
		if err := sy.sync(); err != nil {
			return &mailcase.Error{Code: mailcase.Unknown, Op: "filesource.Ack", Err: err}
		}
	}
	return nil
}

// ack is the part of Ack under the lock.
func (s *Source) ack(r *mailcase.Received, d mailcase.Disposition, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inFlight[r.ID] {
		return errNotInFlight
	}
	switch d {
	case mailcase.Done, mailcase.Retry, mailcase.Quarantine:
	default:
		return &mailcase.Error{Code: mailcase.InvalidArgument, Op: "filesource.Ack", Err: errors.New("unknown disposition " + d.String())}
	}
	if err := s.b.ack(r, d, reason); err != nil {
		return &mailcase.Error{Code: mailcase.Unknown, Op: "filesource.Ack", Err: err}
	}
	delete(s.inFlight, r.ID)
	return nil
}

// Close releases the source's files. A second Close returns
// mailcase.ErrClosed.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return mailcase.ErrClosed
	}
	s.closed = true
	return s.b.close()
}
