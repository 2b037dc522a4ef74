package imapsource_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

const (
	benchMails = 500
	benchBatch = 100
)

func benchServer(b *testing.B) (*imaptest.Server, [][]byte) {
	b.Helper()
	srv, err := imaptest.Start(nil)
	require.NoError(b, err)
	b.Cleanup(func() { srv.Close() })
	return srv, mailcasetest.GenerateCorpus(benchMails, 7)
}

func fill(b *testing.B, srv *imaptest.Server, corpus [][]byte) {
	b.Helper()
	for _, m := range corpus {
		_, err := srv.Append("INBOX", m)
		require.NoError(b, err)
	}
}

// BenchmarkIngest files benchMails corpus mails from the in-memory server
// into memstore through the pipeline (delete after commit), per op.
func BenchmarkIngest(b *testing.B) {
	srv, corpus := benchServer(b)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		fill(b, srv, corpus)
		st, err := memstore.OpenStore(nil)
		require.NoError(b, err)
		p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}, MaxConcurrency: 4, Logger: quiet})
		require.NoError(b, err)
		src, err := imapsource.Dial(b.Context(), srv.Addr, imapsource.Login{Username: srv.Username, Password: srv.Password}, &imapsource.Options{TLSConfig: srv.Cert.Client,
			Mailbox: "support", State: st, BatchSize: benchBatch, Logger: quiet,
		})
		require.NoError(b, err)
		start := time.Now()
		b.StartTimer()
		require.NoError(b, p.Run(b.Context(), src))
		require.NoError(b, src.Flush(b.Context()))
		b.StopTimer()
		total += time.Since(start)
		require.EqualValues(b, benchMails, p.Stats().Received)
		src.Close()
		p.Close()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchMails*b.N)/total.Seconds(), "mails/s")
}

// BenchmarkRawFetch is the baseline: one UID FETCH 1:* BODY.PEEK[] of the
// same mails with go-imap, bodies read into memory.
func BenchmarkRawFetch(b *testing.B) {
	srv, corpus := benchServer(b)
	fill(b, srv, corpus)
	c, err := srv.Dial()
	require.NoError(b, err)
	defer c.Close()
	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(b, err)
	sec := &imap.FetchItemBodySection{Peek: true}
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
		total += time.Since(start)
		require.NoError(b, err)
		require.Len(b, msgs, benchMails)
	}
	b.ReportMetric(float64(benchMails*b.N)/total.Seconds(), "mails/s")
}

// BenchmarkSourceOnly measures the source alone (scan, batched fetch,
// batched delete) without the pipeline: the IMAP cost of ingestion.
func BenchmarkSourceOnly(b *testing.B) {
	srv, corpus := benchServer(b)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		fill(b, srv, corpus)
		src, err := imapsource.Dial(b.Context(), srv.Addr, imapsource.Login{Username: srv.Username, Password: srv.Password}, &imapsource.Options{TLSConfig: srv.Cert.Client,
			BatchSize: benchBatch, Logger: quiet,
		})
		require.NoError(b, err)
		start := time.Now()
		b.StartTimer()
		n := 0
		for {
			r, err := src.Receive(b.Context())
			if err == io.EOF {
				break
			}
			require.NoError(b, err)
			require.NoError(b, src.Ack(b.Context(), r, mailcase.Done, ""))
			n++
		}
		require.NoError(b, src.Flush(b.Context()))
		b.StopTimer()
		total += time.Since(start)
		require.Equal(b, benchMails, n)
		src.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchMails*b.N)/total.Seconds(), "mails/s")
}

// sliceSource hands out mails from memory: the pipeline's own cost,
// without IMAP.
type sliceSource struct {
	mu    sync.Mutex
	mails [][]byte
	i     int
}

func (s *sliceSource) Receive(context.Context) (*mailcase.Received, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.i == len(s.mails) {
		return nil, io.EOF
	}
	s.i++
	return &mailcase.Received{Raw: s.mails[s.i-1], Mailbox: "support", ID: strconv.Itoa(s.i), Attempt: 1}, nil
}

func (s *sliceSource) Ack(context.Context, *mailcase.Received, mailcase.Disposition, string) error {
	return nil
}

// BenchmarkPipelineOnly files the same corpus from memory into memstore
// with the same pipeline options as BenchmarkIngest: the ceiling of any
// source.
func BenchmarkPipelineOnly(b *testing.B) {
	corpus := mailcasetest.GenerateCorpus(benchMails, 7)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		st, err := memstore.OpenStore(nil)
		require.NoError(b, err)
		p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}, MaxConcurrency: 4, Logger: quiet})
		require.NoError(b, err)
		start := time.Now()
		b.StartTimer()
		require.NoError(b, p.Run(b.Context(), &sliceSource{mails: corpus}))
		b.StopTimer()
		total += time.Since(start)
		p.Close()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchMails*b.N)/total.Seconds(), "mails/s")
}
