package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSOptions configures a NATSSink. A nil options pointer is equivalent to
// a zero options value.
type NATSOptions struct {
	// Name names the sink in the log; "" means "nats".
	Name string
	// Subject is the subject prefix; an event goes to "<Subject>.<kind>".
	// "" means "emailcrm.events".
	Subject string
	// Stream, when set, is created (or updated) at open to capture
	// "<Subject>.>", with a duplicate window of Duplicates; "" means the
	// stream exists already (publishing then fails until it does).
	Stream string
	// Duplicates is the JetStream duplicate window of a created stream; 0
	// means 2 minutes.
	Duplicates time.Duration
	// Kinds filters the events published (see MatchKind); nil means all.
	Kinds []string
	// Timeout bounds one publish; 0 means 10 seconds.
	Timeout time.Duration
}

// NATSSink publishes events to NATS JetStream with the event ID as
// Nats-Msg-Id, so JetStream drops a redelivery within its duplicate
// window. It is safe for concurrent use.
type NATSSink struct {
	nc *nats.Conn
	js jetstream.JetStream
	o  NATSOptions
}

var _ Sink = (*NATSSink)(nil)

// OpenNATSSink returns a sink publishing over nc (which the caller owns
// and closes), creating the stream when opts names one.
func OpenNATSSink(ctx context.Context, nc *nats.Conn, opts *NATSOptions) (*NATSSink, error) {
	if nc == nil {
		return nil, errors.New("events: a NATS sink needs a connection")
	}
	var o NATSOptions
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "nats"
	}
	if o.Subject == "" {
		o.Subject = "emailcrm.events"
	}
	if o.Duplicates <= 0 {
		o.Duplicates = 2 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("events: NATS JetStream: %w", err)
	}
	if o.Stream != "" {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: o.Stream, Subjects: []string{o.Subject + ".>"}, Duplicates: o.Duplicates, Storage: jetstream.FileStorage,
		})
		if err != nil {
			return nil, fmt.Errorf("events: NATS stream %s: %w", o.Stream, err)
		}
	}
	return &NATSSink{nc: nc, js: js, o: o}, nil
}

// SinkName implements Sink.
func (n *NATSSink) SinkName() string { return "nats:" + n.o.Name }

// Accepts implements Sink.
func (n *NATSSink) Accepts(kind string) bool { return MatchKind(n.o.Kinds, kind) }

// Subject returns the subject of events of kind.
func (n *NATSSink) Subject(kind string) string { return n.o.Subject + "." + kind }

// Send implements Sink: one publish acknowledged by JetStream.
func (n *NATSSink) Send(ctx context.Context, e *Event, attempt int) error {
	body, err := e.Body()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	m := nats.NewMsg(n.Subject(e.Kind))
	m.Data = body
	m.Header.Set("Emailcrm-Event", e.Kind)
	if _, err := n.js.PublishMsg(ctx, m, jetstream.WithMsgID(e.ID)); err != nil {
		return fmt.Errorf("events: NATS publish to %s: %w", n.SinkName(), err)
	}
	return nil
}
