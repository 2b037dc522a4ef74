package xmlapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Replay defence of the shared-secret path. A request authorised by the
// secret must carry <timestamp> (RFC 3339) and <nonce>: it is refused when
// the timestamp is farther than the replay window from now (either way, so
// a clock skew within the window is tolerated) and when its nonce was
// accepted before for another mail. The nonce is remembered until the
// window after its timestamp has passed: after that the timestamp alone
// refuses the document.
//
// Nonces are remembered in the store when it keeps state (StateStore;
// *mailcase.Store with a driver.StateStore driver), so every worker and
// every restart sees them: the key is "xmlapi/nonce/" and the SHA-256 of
// the nonce, the value the expiry and the idempotency key of the mail that
// used it. A store without state gets a bounded in-memory set instead
// (HandlerOptions.MaxNonces), which a restart forgets and other processes
// do not share; when it is full of unexpired nonces new documents are
// refused rather than old nonces forgotten. Check and record are
// serialised within one Handler; across processes sharing a store, two
// copies of one document arriving at the same instant can both pass.
//
// The same mail retried (a transient store failure after its nonce was
// recorded, a redelivery) carries the same idempotency key and is not a
// replay.

// StateStore is the optional part of Store the replay defence uses;
// *mailcase.Store satisfies it (GetState and PutState return Unimplemented
// when its driver keeps no state).
type StateStore interface {
	GetState(ctx context.Context, key string) (v []byte, ok bool, err error)
	PutState(ctx context.Context, key string, v []byte) error
}

const (
	defaultReplayWindow = 15 * time.Minute
	defaultMaxNonces    = 10000
	maxNonceLen         = 200
	nonceStatePrefix    = "xmlapi/nonce/"
)

// replayGuard remembers nonces.
type replayGuard struct {
	window time.Duration
	now    func() time.Time
	state  StateStore // nil: memory only
	noKV   atomic.Bool

	mu  sync.Mutex // serialises check-and-record
	mem map[string]nonceEntry
	max int
}

type nonceEntry struct {
	expires time.Time
	key     string
}

func newReplayGuard(store Store, window time.Duration, maxNonces int, now func() time.Time) *replayGuard {
	g := &replayGuard{window: window, now: now, mem: map[string]nonceEntry{}, max: maxNonces}
	if g.window == 0 {
		g.window = defaultReplayWindow
	}
	if g.max <= 0 {
		g.max = defaultMaxNonces
	}
	if g.now == nil {
		g.now = time.Now
	}
	if ss, ok := store.(StateStore); ok {
		g.state = ss
	}
	return g
}

// errReplay marks a refused document (not a store failure).
var errReplay = errors.New("replay")

// check accepts req's timestamp and nonce for the mail with idempotency key
// key, and records the nonce when record is set (explain only checks). A refused document gives an error wrapping
// errReplay with the reason; a store failure is returned as it is.
func (g *replayGuard) check(ctx context.Context, req *Request, key string, record bool) error {
	ts := strings.TrimSpace(req.Timestamp)
	nonce := strings.TrimSpace(req.Nonce)
	if ts == "" || nonce == "" {
		return fmt.Errorf("%w: a request with the shared secret needs <timestamp> and <nonce>", errReplay)
	}
	if len(nonce) > maxNonceLen {
		return fmt.Errorf("%w: nonce longer than %d bytes", errReplay, maxNonceLen)
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return fmt.Errorf("%w: timestamp is not RFC 3339", errReplay)
	}
	now := g.now()
	if d := now.Sub(t); d > g.window || d < -g.window {
		return fmt.Errorf("%w: timestamp %s is outside the replay window of %s", errReplay, t.UTC().Format(time.RFC3339), g.window)
	}
	sum := sha256.Sum256([]byte(nonce))
	id := hex.EncodeToString(sum[:])
	expires := t.Add(g.window)

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != nil && !g.noKV.Load() {
		err := g.checkStore(ctx, id, key, now, expires, record)
		if mailcase.Code(err) != mailcase.Unimplemented {
			return err
		}
		g.noKV.Store(true) // the driver keeps no state: memory from now on
	}
	return g.checkMemory(id, key, now, expires, record)
}

func (g *replayGuard) checkStore(ctx context.Context, id, key string, now, expires time.Time, record bool) error {
	v, ok, err := g.state.GetState(ctx, nonceStatePrefix+id)
	if err != nil {
		return err
	}
	if ok {
		exp, k, _ := strings.Cut(string(v), "|")
		if n, err := strconv.ParseInt(exp, 10, 64); err == nil && now.Before(time.Unix(n, 0)) && k != key {
			return fmt.Errorf("%w: nonce already used by another mail", errReplay)
		}
		if k == key {
			return nil
		}
	}
	if !record {
		return nil
	}
	return g.state.PutState(ctx, nonceStatePrefix+id, []byte(strconv.FormatInt(expires.Unix(), 10)+"|"+key))
}

func (g *replayGuard) checkMemory(id, key string, now, expires time.Time, record bool) error {
	if e, ok := g.mem[id]; ok && now.Before(e.expires) {
		if e.key == key {
			return nil
		}
		return fmt.Errorf("%w: nonce already used by another mail", errReplay)
	}
	if !record {
		return nil
	}
	if len(g.mem) >= g.max {
		for k, e := range g.mem {
			if !now.Before(e.expires) {
				delete(g.mem, k)
			}
		}
		if len(g.mem) >= g.max {
			return fmt.Errorf("%w: %d nonces inside the replay window are remembered already; refused until some expire", errReplay, g.max)
		}
	}
	g.mem[id] = nonceEntry{expires: expires, key: key}
	return nil
}
