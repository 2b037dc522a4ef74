package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Transport delivers composed mail to the outgoing server;
// adapters/smtpsender implements it over SMTP. Send returns nil when the
// server accepted the message for every recipient.
//
// A Send error may implement two methods that the Deliverer asks through
// errors.As:
//
//   - Permanent() bool: true when trying again cannot help (an SMTP 5xx
//     reply); the message fails at once. Any other error is retried.
//   - PartlyDelivered() bool: true when the server accepted the message for
//     some recipients and refused the others; the message is then recorded
//     as sent (never sent again to those who have it) and the refusal is
//     noted on its case.
//
// Error texts must not carry secrets: the Deliverer records them.
type Transport interface {
	Send(ctx context.Context, from string, to []string, raw []byte) error
}

// IsPermanent reports whether err says that delivery can never succeed.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

func partlyDelivered(err error) bool {
	var p interface{ PartlyDelivered() bool }
	return errors.As(err, &p) && p.PartlyDelivered()
}

// DelivererOptions configures a Deliverer; the zero value gives defaults.
type DelivererOptions struct {
	// Holder names this sender in claims; "" means host-pid-random, unique
	// per Deliverer.
	Holder string
	// Batch is the number of messages claimed at once; 0 means 10.
	Batch int
	// ClaimTTL is how long a claimed batch is reserved for this sender; 0
	// means 10 minutes. Every send of the batch is given a deadline a
	// tenth of the TTL before the claim ends, so another sender never
	// takes a message being sent; messages the time did not reach are
	// claimed again after the TTL.
	ClaimTTL time.Duration
	// PollInterval is the pause of Run between passes that found nothing
	// due; 0 means 5 seconds.
	PollInterval time.Duration
	// MaxAttempts bounds delivery attempts; the last failed attempt makes
	// the message fail. 0 means 8.
	MaxAttempts int
	// BackoffMin and BackoffMax bound the delay before a retry, doubling
	// from BackoffMin at each failed attempt, with up to a tenth of
	// jitter; 0 means 1 minute and 1 hour.
	BackoffMin, BackoffMax time.Duration
	// Cases receives the note about a final failure or a refused
	// recipient on the message's case; nil means the outbox's own store
	// (a CRM store paired with a local SQL outbox sets it to the CRM).
	Cases *mailcase.Store
	// Logger receives one record per final failure at Warn, and per
	// attempt at Debug; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of backoff jitter seeds and logs; nil means
	// time.Now.
	Now func() time.Time
	// OnEvent, if set, is called with "reply.sent" once a message is
	// recorded as sent (payload in package events, whose
	// Recorder.OnEvent fits); nil means none.
	OnEvent func(ctx context.Context, kind string, caseID mailcase.CaseID, data map[string]any)
}

// Deliverer sends the messages of an outbox through a Transport: several
// Deliverers, in one process or on many machines, share one outbox without
// sending a message twice: a send ends before its claim does (see ClaimTTL).
//
// Each due message is claimed, sent, and its result recorded: sent;
// retried after a backoff (a temporary failure: a 4xx reply, a dropped
// connection, a server that is down); or failed (a permanent refusal, or
// the last of MaxAttempts). A failure, and a recipient the server refused,
// is noted on the message's case so an agent sees it; the message's status
// and last error stay in the outbox (mailcase outbox list).
//
// Delivery is at least once: a Deliverer that dies after the server
// accepted a message and before the result was recorded leaves the claim
// to expire, and the message is sent again, with the same Message-ID, so
// the recipient's mail client shows it once.
type Deliverer struct {
	store *mailcase.Store
	t     Transport
	o     DelivererOptions
	log   *slog.Logger
	mu    sync.Mutex
	rnd   *mrand.Rand
}

// NewDeliverer returns a Deliverer of the outbox kept by store.
func NewDeliverer(store *mailcase.Store, t Transport, opts *DelivererOptions) (*Deliverer, error) {
	if store == nil || t == nil {
		return nil, errors.New("outbox: a deliverer needs a store and a transport")
	}
	if !store.CanOutbox() {
		return nil, errors.New("outbox: the store keeps no outbox")
	}
	var o DelivererOptions
	if opts != nil {
		o = *opts
	}
	if o.Holder == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if o.Batch <= 0 {
		o.Batch = 10
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = 10 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Minute
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = time.Hour
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	if o.Cases == nil {
		o.Cases = store
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	seed := uint64(o.Now().UnixNano())
	return &Deliverer{store: store, t: t, o: o, log: log, rnd: mrand.New(mrand.NewPCG(seed, seed>>7))}, nil
}

// Stats counts the results of DeliverDue.
type Stats struct {
	Sent, Retried, Failed int
}

// DeliverDue sends every message due now, claiming a batch at a time,
// until none is due, and returns what happened. It stops at the first
// store error (a message claimed then is claimed again after ClaimTTL) or
// when ctx ends.
func (d *Deliverer) DeliverDue(ctx context.Context) (Stats, error) {
	var st Stats
	for {
		claimed := time.Now()
		msgs, err := d.store.ClaimOutbox(ctx, d.o.Holder, d.o.Batch, d.o.ClaimTTL)
		if err != nil {
			return st, fmt.Errorf("outbox: claim: %w", err)
		}
		if len(msgs) == 0 {
			return st, nil
		}
		// Every send of the batch ends before the claim does (a tenth of
		// the TTL to spare), so no other sender can take a message while
		// it is being sent; what is left when the time is up is claimed
		// again once the claim expires.
		deadline := claimed.Add(d.o.ClaimTTL - d.o.ClaimTTL/10)
		for i := range msgs {
			if time.Now().After(deadline) {
				break
			}
			sctx, cancel := context.WithDeadline(ctx, deadline)
			r, err := d.deliver(sctx, ctx, &msgs[i])
			cancel()
			switch r {
			case driver.OutboxSent:
				st.Sent++
			case driver.OutboxPending:
				st.Retried++
			case driver.OutboxFailed:
				st.Failed++
			}
			if err != nil {
				return st, err
			}
		}
	}
}

// Run delivers due messages until ctx ends, pausing PollInterval when
// nothing was due. A store error is logged and the pass is tried again
// after the pause; Run returns nil when ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	for {
		st, err := d.DeliverDue(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.log.WarnContext(ctx, "outbox delivery pass failed", "err", err)
		}
		if err == nil && st != (Stats{}) {
			continue // more may have become due meanwhile
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.o.PollInterval):
		}
	}
}

// backoff is the delay before attempt n+1 after n failed attempts.
func (d *Deliverer) backoff(n int) time.Duration {
	delay := d.o.BackoffMin
	for i := 1; i < n && delay < d.o.BackoffMax; i++ {
		delay *= 2
	}
	delay = min(delay, d.o.BackoffMax)
	d.mu.Lock()
	j := time.Duration(d.rnd.Int64N(int64(delay)/10 + 1))
	d.mu.Unlock()
	return delay + j
}

// deliver sends one claimed message and records the result.
func (d *Deliverer) deliver(sendCtx, ctx context.Context, m *driver.OutboxMessage) (driver.OutboxStatus, error) {
	err := d.t.Send(sendCtx, m.From, m.To, m.Raw)
	if ctx.Err() != nil {
		// Shutting down: leave the claim to expire; the message is due
		// again then (the server may have accepted it: at least once).
		return "", ctx.Err()
	}
	res := driver.OutboxResult{Status: driver.OutboxSent}
	var note string
	switch {
	case err == nil:
	case partlyDelivered(err):
		res.Error = err.Error()
		note = fmt.Sprintf("The mail %q was delivered, but the server refused some recipients: %s", m.MessageID, err)
	case IsPermanent(err) || m.Attempts >= d.o.MaxAttempts:
		res = driver.OutboxResult{Status: driver.OutboxFailed, Error: err.Error()}
		why := "the server refused it"
		if !IsPermanent(err) {
			why = fmt.Sprintf("%d attempts failed", m.Attempts)
		}
		// The note names the visible recipients only: a Bcc stays blind on
		// the case too.
		to := strings.Join(headerRecipients(readHeader(m.Raw)), ", ")
		if to == "" {
			to = "its recipients"
		}
		note = fmt.Sprintf("The mail %q to %s could not be delivered (%s): %s", m.MessageID, to, why, err)
	default:
		res = driver.OutboxResult{Status: driver.OutboxPending, RetryAfter: d.backoff(m.Attempts), Error: err.Error()}
	}
	d.log.DebugContext(ctx, "outbox attempt", "outbox_id", m.ID, "attempt", m.Attempts, "result", res.Status, "err", res.Error)
	if ferr := d.store.FinishOutbox(ctx, m.ID, d.o.Holder, &res); ferr != nil {
		if mailcase.Code(ferr) == driver.FailedPrecondition {
			// The claim expired and another sender took the message: its
			// result is the one that counts.
			d.log.WarnContext(ctx, "outbox claim lost before the result was recorded", "outbox_id", m.ID)
			return "", nil
		}
		return "", fmt.Errorf("outbox: record the result of %s: %w", m.ID, ferr)
	}
	if f := d.o.OnEvent; f != nil && res.Status == driver.OutboxSent {
		f(ctx, "reply.sent", m.CaseID, map[string]any{"outbox_id": m.ID, "kind": m.Kind, "mailbox": m.Mailbox, "attempts": m.Attempts})
	}
	if res.Status == driver.OutboxFailed {
		d.log.WarnContext(ctx, "outgoing mail failed", "outbox_id", m.ID, "case_id", m.CaseID, "attempts", m.Attempts, "err", res.Error)
	}
	if note != "" && m.CaseID != "" {
		// One note per attempt number and result, so a redelivered result
		// never notes the case twice.
		n := &driver.Note{IdempotencyKey: m.Key + "\x00delivery\x00" + strconv.Itoa(m.Attempts) + "\x00" + string(res.Status),
			Author: "emailcrm outbox", Body: note}
		if nerr := d.o.Cases.AddNote(ctx, m.CaseID, n); nerr != nil {
			d.log.WarnContext(ctx, "delivery note not added to the case", "outbox_id", m.ID, "case_id", m.CaseID, "err", nerr)
		}
	}
	return res.Status, nil
}
