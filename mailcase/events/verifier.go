package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors of Verifier.Verify, besides those of Verify.
var (
	// ErrReplayed: this very delivery (the same signature, so the same
	// timestamp and body) was verified before, within the tolerance. It
	// is a replay, or a retry the sender made within the same second.
	ErrReplayed = errors.New("events: webhook delivery replayed")
	// ErrDuplicate: another delivery of the same event (the same event ID,
	// a new timestamp: a retry of the sender) was accepted before.
	ErrDuplicate = errors.New("events: webhook delivery of an event already accepted")
	// ErrVerifierFull: the Verifier remembers MaxEntries deliveries within
	// the tolerance and cannot take one more without forgetting one that
	// could still be replayed; the delivery is refused unseen (answer
	// 503: the sender retries later).
	ErrVerifierFull = errors.New("events: webhook verifier full")
)

// VerifierOptions configures a Verifier. A nil options pointer is
// equivalent to a zero options value.
type VerifierOptions struct {
	// Tolerance is how far a signature's timestamp may be from the
	// receiver's clock, and how long deliveries are remembered; 0 means
	// DefaultTolerance (5 minutes).
	Tolerance time.Duration
	// MaxEntries bounds the deliveries remembered at once (about 200 bytes
	// each); 0 means 100000, enough for 300 deliveries a second with the
	// default tolerance. Once it is reached, new deliveries are refused
	// with ErrVerifierFull until remembered ones leave the tolerance.
	MaxEntries int
	// Now is the receiver's clock; nil means time.Now.
	Now func() time.Time
}

// Verifier is a webhook receiver's check of deliveries: the signature as
// Verify checks it, plus a bounded memory that rejects a replay within the
// tolerance (which Verify alone lets through) and recognises the retries
// of an event already accepted. It is safe for concurrent use; create one
// per secret and keep it for the life of the receiver.
//
// Each accepted delivery is remembered twice, for as long as its
// signature is inside the tolerance: by its signature (the HMAC over its
// timestamp and body), so the same request sent again is ErrReplayed, and
// by its event ID, so a retry (a new delivery of the same event, with a new
// timestamp and signature) is ErrDuplicate. The event ID comes from the
// signed body ("id" of the envelope), not from a header: it equals the
// Emailcrm-Idempotency-Key header of a genuine delivery, but headers are
// not signed. A delivery older than the tolerance is ErrSignatureExpired,
// so within the memory's bound every replay is rejected.
//
// What a receiver must do with each request:
//
//  1. Read the body as received (http.MaxBytesReader), before decoding it,
//     and pass it with the Emailcrm-Signature header value to Verify.
//  2. On nil, act on the returned event. If acting fails and the answer is
//     not 2xx, call Forget(e.ID) so the sender's retry is accepted;
//     answer within the webhook's timeout (10 seconds by default), or
//     hand the event to a durable queue of your own first, since the
//     sender retries a delivery it got no answer to.
//  3. On ErrDuplicate or ErrReplayed, do not act again; answer 2xx, so the
//     sender stops retrying (a replay learns nothing from it).
//  4. On ErrVerifierFull, answer 503: the sender retries later.
//  5. On any other error (ErrSignatureMalformed, ErrSignatureMismatch,
//     ErrSignatureExpired), answer 401 and do not act.
//
// The memory is per process and lost on restart, and the sender retries
// for longer than the tolerance (MaxAttempts attempts, backing off up to
// BackoffMax): a receiver that must never act twice on one event, or that
// runs several replicas, also keeps the event IDs it acted on durably (a
// unique key in its database) and treats a known one like ErrDuplicate.
// Keep the receiver's clock synchronised (NTP): the tolerance is measured
// against it.
type Verifier struct {
	secret []byte
	o      VerifierOptions

	mu        sync.Mutex
	sigs      map[[32]byte]sigEntry // accepted signatures
	ids       map[string]time.Time  // event ID -> forgotten after
	lastSweep time.Time
	nextSweep time.Time
}

// sigEntry is a remembered signature: the end of its tolerance and its
// event.
type sigEntry struct {
	until time.Time
	id    string
}

// NewVerifier returns a Verifier of deliveries signed with secret.
func NewVerifier(secret []byte, opts *VerifierOptions) *Verifier {
	var o VerifierOptions
	if opts != nil {
		o = *opts
	}
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Verifier{secret: append([]byte(nil), secret...), o: o, sigs: map[[32]byte]sigEntry{}, ids: map[string]time.Time{}}
}

// Verify checks a delivery: signature is its Emailcrm-Signature header
// value, body the body as received. It returns the event and nil for a
// delivery to act on; the event and ErrReplayed or ErrDuplicate for one
// seen before (see Verifier); ErrVerifierFull; or the errors of Verify
// (ErrSignatureMalformed also for a signed body that is not an event
// envelope with an id).
func (v *Verifier) Verify(signature string, body []byte) (Event, error) {
	now := v.o.Now()
	ts, m, err := verify(v.secret, signature, body, now, v.o.Tolerance)
	if err != nil {
		return Event{}, err
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" {
		return Event{}, fmt.Errorf("%w: the signed body is not an event envelope with an id", ErrSignatureMalformed)
	}
	var key [32]byte
	copy(key[:], m)
	v.mu.Lock()
	defer v.mu.Unlock()
	if !now.Before(v.nextSweep) || v.full() && now.Sub(v.lastSweep) >= time.Second {
		v.sweep(now)
	}
	if se, ok := v.sigs[key]; ok && !now.After(se.until) {
		return e, ErrReplayed
	}
	if v.full() {
		return Event{}, ErrVerifierFull
	}
	// Verify refuses the signature once its timestamp is more than the
	// tolerance away: it is remembered until then.
	v.sigs[key] = sigEntry{until: time.Unix(ts, 0).Add(v.o.Tolerance), id: e.ID}
	until, seen := v.ids[e.ID]
	v.ids[e.ID] = now.Add(v.o.Tolerance)
	if seen && !now.After(until) {
		return e, ErrDuplicate
	}
	return e, nil
}

// Forget drops what the Verifier remembers of event id (its ID and its
// signatures), so that its next delivery is accepted: call it when acting
// on an accepted delivery failed and the sender is told to retry.
func (v *Verifier) Forget(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.ids, id)
	for k, se := range v.sigs {
		if se.id == id {
			delete(v.sigs, k)
		}
	}
}

func (v *Verifier) full() bool { return len(v.sigs) >= v.o.MaxEntries || len(v.ids) >= v.o.MaxEntries }

// sweep drops the entries past their time. It runs every tenth of the
// tolerance, and when the memory is full (at most once a second, so
// replays hammering a full Verifier do not each cost a sweep).
func (v *Verifier) sweep(now time.Time) {
	for k, se := range v.sigs {
		if now.After(se.until) {
			delete(v.sigs, k)
		}
	}
	for id, until := range v.ids {
		if now.After(until) {
			delete(v.ids, id)
		}
	}
	v.lastSweep, v.nextSweep = now, now.Add(v.o.Tolerance/10)
}
