package events_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/events"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

var testSecret = []byte("s3cret-0123456789-abcdef")

// serviceUnavailable skips t, or fails it when EMAILCRM_REQUIRE_SERVICES=1
// (the rule of the sqlstore tests' helper of the same name).
func serviceUnavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("EMAILCRM_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (EMAILCRM_REQUIRE_SERVICES=1) but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable, skipping (set EMAILCRM_REQUIRE_SERVICES=1 to fail instead): %v", what, err)
}

func memStore(t testing.TB) *mailcase.Store {
	t.Helper()
	s, err := memstore.OpenStore(&memstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// logBuffer is a concurrency-safe log sink for tests that inspect logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// request is one request a receiver got.
type request struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an in-test webhook endpoint: answer decides each reply (nil:
// 200), and every request is kept.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []request
	answer func(n int, w http.ResponseWriter, r *http.Request) // n counts from 1
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{header: r.Header.Clone(), body: body, at: time.Now()})
		n := len(rc.reqs)
		answer := rc.answer
		rc.mu.Unlock()
		if answer != nil {
			answer(n, w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// setAnswer replaces the answer function.
func (rc *receiver) setAnswer(f func(n int, w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = f
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func (rc *receiver) webhook(name string) *events.Webhook {
	return &events.Webhook{Name: name, URL: rc.srv.URL + "/hook?token=url-token-xyz", Secret: testSecret, Timeout: 2 * time.Second}
}

// drain runs d until nothing is due, bounded.
func drain(t *testing.T, ctx context.Context, d *events.Deliverer, s *mailcase.Store, sink string) {
	t.Helper()
	for range 500 {
		if _, err := d.RunOnce(ctx); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		ds, err := s.ListDeliveries(ctx, nil)
		require.NoError(t, err)
		open := 0
		for _, x := range ds {
			if x.Sink == sink && !(x.Status == "delivered" || x.Status == "failed") {
				open++
			}
		}
		if open == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("deliveries still open after 500 passes")
}
