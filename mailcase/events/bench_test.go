package events_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// Run by hand, e.g.:
//
//	go test -run '^$' -bench . -benchtime 2000x ./mailcase/events
//
// events/s is the delivery rate from the log to the sink; mails/s the
// pipeline's filing rate with and without recording events.

func benchStore(b *testing.B, kind string) *mailcase.Store {
	b.Helper()
	if kind == "mem" {
		return memStore(b)
	}
	s, err := sqlstore.OpenURL(b.Context(), "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), &sqlstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// benchDeliver records b.N events for sink, then measures their delivery.
func benchDeliver(b *testing.B, s *mailcase.Store, sink events.Sink) {
	ctx := b.Context()
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{sink}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	for i := range b.N {
		_, err := rec.Record(ctx, events.CaseCreated, driver.CaseID(strconv.Itoa(i)), map[string]any{"mailbox": "support", "message_id": strconv.Itoa(i) + "@bench", "queue": "tier1"})
		require.NoError(b, err)
	}
	d, err := events.NewDeliverer(s, []events.Sink{sink}, &events.DelivererOptions{Batch: 100, Parallel: 16, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	b.ResetTimer()
	delivered := 0
	for delivered < b.N {
		n, err := d.RunOnce(ctx)
		require.NoError(b, err)
		if n == 0 {
			b.Fatalf("nothing due with %d of %d delivered", delivered, b.N)
		}
		delivered += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDeliverWebhook(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = r.Body.Read(make([]byte, 4096))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, kind := range []string{"mem", "sqlite"} {
		b.Run(kind, func(b *testing.B) {
			benchDeliver(b, benchStore(b, kind), &events.Webhook{Name: "bench", URL: srv.URL, Secret: testSecret})
		})
	}
}

func BenchmarkDeliverNATS(b *testing.B) {
	nc := natsConn(b)
	sink, _ := natsSink(b, nc)
	for _, kind := range []string{"mem", "sqlite"} {
		b.Run(kind, func(b *testing.B) { benchDeliver(b, benchStore(b, kind), sink) })
	}
}

// BenchmarkPipelineEvents files b.N new mails on SQLite, without events and
// with events recorded (one webhook sink: each event and its delivery
// kept in the log with the filing, nothing sent), in the same run.
func BenchmarkPipelineEvents(b *testing.B) {
	for _, tc := range []struct {
		withEvents  bool
		concurrency int
	}{{false, 1}, {true, 1}, {false, 8}, {true, 8}} {
		withEvents := tc.withEvents
		name := "without"
		if withEvents {
			name = "with"
		}
		name += "/concurrency=" + strconv.Itoa(tc.concurrency)
		b.Run(name, func(b *testing.B) {
			ctx := b.Context()
			s := benchStore(b, "sqlite")
			opts := &mailcase.Options{
				Mailbox:        mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "tier1"},
				Logger:         slog.New(slog.DiscardHandler),
				MaxConcurrency: tc.concurrency,
			}
			if withEvents {
				rec, err := events.NewRecorder(s, &events.RecorderOptions{Logger: slog.New(slog.DiscardHandler),
					Sinks: []events.Sink{&events.Webhook{Name: "bench", URL: "http://127.0.0.1:1/", Secret: testSecret}}})
				require.NoError(b, err)
				opts.Events = rec
			}
			p, err := mailcase.NewPipeline(s, opts)
			require.NoError(b, err)
			defer p.Close()
			mails := make([][]byte, b.N)
			for i := range mails {
				mails[i] = fmt.Appendf(nil, "From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\n"+
					"Subject: Bench %d\r\nMessage-ID: <bench-%d@customer.example>\r\n\r\nBody %d.\r\n", i, i, i, i, i)
			}
			src := mailcasetest.NewSource(mails...)
			b.ResetTimer()
			if err := p.Run(ctx, src); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if st := p.Stats(); st.Created != int64(b.N) {
				b.Fatalf("created %d cases of %d mails", st.Created, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
		})
	}
}
