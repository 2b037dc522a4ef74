package events_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// blockingSink is a receiver that never answers: each Send stays in flight
// until its context ends. It counts the sends and the most in flight at
// once.
type blockingSink struct {
	mu       sync.Mutex
	sends    int
	inFlight int
	maxIn    int
}

func (b *blockingSink) SinkName() string    { return "webhook:slow" }
func (b *blockingSink) Accepts(string) bool { return true }

func (b *blockingSink) Send(ctx context.Context, _ *events.Event, _ int) error {
	b.mu.Lock()
	b.sends++
	b.inFlight++
	b.maxIn = max(b.maxIn, b.inFlight)
	b.mu.Unlock()
	<-ctx.Done()
	b.mu.Lock()
	b.inFlight--
	b.mu.Unlock()
	return ctx.Err()
}

func (b *blockingSink) stats() (sends, inFlight, maxIn int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sends, b.inFlight, b.maxIn
}

// The deadline of a send counts from before the claim call: when the store
// stamps the claim but its answer takes half the lease to arrive (a slow
// database), the first holder's send still ends before its lease does, so
// the second holder, which claims the event once the lease expired, never
// sends it while the first holder's send is in flight.
func TestDeliverer_SendEndsBeforeSlowClaimExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 10 * time.Second
		var slowClaim atomic.Bool
		store, err := memstore.OpenStore(&memstore.Options{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time {
			now := time.Now()
			if slowClaim.CompareAndSwap(true, false) {
				// The claim is stamped at now; the answer arrives 5s
				// later.
				time.Sleep(ttl / 2)
			}
			return now
		}})
		require.NoError(t, err)
		defer store.Close()
		ctx := t.Context()
		sink := &blockingSink{}
		require.NoError(t, store.AppendEvents(ctx, []*driver.EventRecord{{ID: "ev_slow", Kind: events.CaseCreated, Version: 1,
			Data: []byte(`{}`), Sinks: []string{sink.SinkName()}}}))
		newDeliverer := func(holder string) *events.Deliverer {
			d, err := events.NewDeliverer(store, []events.Sink{sink}, &events.DelivererOptions{Holder: holder, ClaimTTL: ttl,
				BackoffMin: time.Second, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			return d
		}
		first, second := newDeliverer("first"), newDeliverer("second")

		start := time.Now()
		slowClaim.Store(true)
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = first.RunOnce(ctx) })
		time.Sleep(ttl/2 + time.Second)
		synctest.Wait()
		sends, inFlight, _ := sink.stats()
		require.Equal(t, 1, sends, "the first holder's claim returned and its send is in flight")
		require.Equal(t, 1, inFlight)

		// The second holder polls every second for 30 seconds.
		for time.Since(start) < 30*time.Second {
			_, err := second.RunOnce(ctx)
			require.NoError(t, err)
			time.Sleep(time.Second)
		}
		wg.Wait()
		sends, _, maxIn := sink.stats()
		assert.GreaterOrEqual(t, sends, 2, "the second holder sent the event once the first lease ended")
		assert.Equal(t, 1, maxIn, "no second holder sent the event while the first holder's send was in flight")
	})
}
