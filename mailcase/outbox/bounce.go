package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// BounceOptions configures Bounces; the zero value gives defaults.
type BounceOptions struct {
	// Suppress is how long automatic mail to a recipient whose mail
	// bounced permanently is suppressed; 0 means 60 days.
	Suppress time.Duration
	// Cases receives the bounce note on the message's case; nil means the
	// outbox's store.
	Cases *mailcase.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnEvent, if set, is called with "reply.bounced" when a message is
	// marked bounced (payload in package events, whose Recorder.OnEvent
	// fits); nil means none.
	OnEvent func(ctx context.Context, kind string, caseID mailcase.CaseID, data map[string]any)
}

// Bounces is the pipeline's mailcase.BounceHandler over an outbox: a
// permanent delivery status notification (a 5.x.x status) whose original
// Message-ID is a message of the outbox marks that message bounced (its
// reason: status and recipient), notes the bounce on its case, and
// suppresses automatic mail to the recipient for Suppress (Suppressed).
// A delayed-delivery notice (4.x.x) and a notification about mail the
// outbox never sent change nothing. Handling one notification twice (a
// redelivery) changes nothing more.
type Bounces struct {
	store *mailcase.Store
	o     BounceOptions
}

var _ mailcase.BounceHandler = (*Bounces)(nil)

// NewBounces returns the bounce handler of store's outbox. Suppression is
// kept in the store's source state (driver.StateStore), shared by every
// worker and kept across restarts; a store without it suppresses nothing.
func NewBounces(store *mailcase.Store, opts *BounceOptions) *Bounces {
	var o BounceOptions
	if opts != nil {
		o = *opts
	}
	if o.Suppress <= 0 {
		o.Suppress = 60 * 24 * time.Hour
	}
	if o.Cases == nil {
		o.Cases = store
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Bounces{store: store, o: o}
}

// suppression is the state kept for a suppressed recipient.
type suppression struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

func suppressKey(addr string) string { return "outbox/suppressed/" + mailcase.NormalizeAddress(addr) }

// HandleBounce implements mailcase.BounceHandler.
func (b *Bounces) HandleBounce(ctx context.Context, d *mailcase.Delivery) error {
	bi := d.Bounce
	if !bi.IsBounce || !bi.Permanent || bi.OriginalMessageID == "" {
		return nil
	}
	m, ok, err := b.store.FindOutbox(ctx, bi.OriginalMessageID)
	if err != nil || !ok {
		return err
	}
	rcpt := bi.Recipient
	reason := "bounced " + bi.Status
	if rcpt != "" {
		reason += " for " + rcpt
	}
	// The report's recipient comes from the bounce's body, which its
	// sender wrote: only an address the message was sent to is
	// suppressed, so a forged report cannot silence anyone else.
	rcpts := m.To
	if rcpt != "" {
		rcpts = nil
		for _, t := range m.To {
			if strings.EqualFold(t, rcpt) {
				rcpts = []string{t}
			}
		}
		if rcpts == nil {
			return nil
		}
	}
	if m.Status == driver.OutboxSent || m.Status == driver.OutboxBounced {
		if err := b.store.SetOutboxStatus(ctx, m.ID, driver.OutboxBounced, reason); err != nil {
			return err
		}
		if f := b.o.OnEvent; f != nil {
			f(ctx, "reply.bounced", m.CaseID, map[string]any{"outbox_id": m.ID, "message_id": m.MessageID,
				"mailbox": m.Mailbox, "kind": m.Kind, "status": bi.Status})
		}
	}
	v, _ := json.Marshal(suppression{Until: b.o.Now().Add(b.o.Suppress).UTC(), Reason: reason})
	for _, r := range rcpts {
		if err := b.store.PutState(ctx, suppressKey(r), v); err != nil && mailcase.Code(err) != driver.Unimplemented {
			return err
		}
	}
	if m.CaseID == "" {
		return nil
	}
	return b.o.Cases.AddNote(ctx, m.CaseID, &driver.Note{
		IdempotencyKey: m.Key + "\x00bounce",
		Author:         "emailcrm outbox",
		Body:           fmt.Sprintf("The mail %q %s; automatic mail to that address is suppressed until %s.", m.MessageID, reason, b.o.Now().Add(b.o.Suppress).UTC().Format("2006-01-02")),
	})
}

// Suppressed reports whether automatic mail to addr is suppressed after a
// bounce, and until when.
func (b *Bounces) Suppressed(ctx context.Context, addr string) (time.Time, bool, error) {
	v, ok, err := b.store.GetState(ctx, suppressKey(addr))
	if mailcase.Code(err) == driver.Unimplemented {
		return time.Time{}, false, nil
	}
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	var s suppression
	if json.Unmarshal(v, &s) != nil {
		return time.Time{}, false, nil
	}
	return s.Until, b.o.Now().Before(s.Until), nil
}
