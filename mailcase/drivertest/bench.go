package drivertest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// RunBenchmarks measures the hot paths of a store: creating a case,
// appending a mail, looking a thread up and finding contacts. s should be
// fresh; the benchmarks add records to it. Speed targets live here, never in
// timed unit tests.
func RunBenchmarks(b *testing.B, s *mailcase.Store) {
	b.Helper()
	ctx := context.Background()
	var seq atomic.Int64
	mail := func() *driver.Email {
		n := strconv.FormatInt(seq.Add(1), 10)
		return &driver.Email{
			IdempotencyKey: "bench-" + n, Mailbox: "support", MessageID: "bench" + n + "@bench.example",
			From:    driver.Address{Name: "Alice", Email: "alice@example.com"},
			To:      []driver.Address{{Email: "support@example.com"}},
			Subject: "Benchmark " + n, Text: "A short body of a support request.\n",
		}
	}
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "bench", First: mail()})
	if err != nil {
		b.Fatalf("CreateCase: %v", err)
	}
	if _, err := s.CreateContact(ctx, &mailcase.NewContact{Name: "Alice", Email: "alice@example.com"}); err != nil {
		b.Fatalf("CreateContact: %v", err)
	}
	first := mail()
	if err := s.AppendEmail(ctx, c.ID, first); err != nil {
		b.Fatalf("AppendEmail: %v", err)
	}

	b.Run("CreateCase", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "bench", First: mail()}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateCaseParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "bench", First: mail()}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("AppendEmail", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.AppendEmail(ctx, c.ID, mail()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendEmailDuplicate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.AppendEmail(ctx, c.ID, first); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LookupThread", func(b *testing.B) {
		b.ReportAllocs()
		ids := []string{"unknown1@bench.example", first.MessageID, "unknown2@bench.example"}
		for b.Loop() {
			if got, ok, err := s.LookupThread(ctx, ids...); err != nil || !ok || got.ID != c.ID {
				b.Fatalf("LookupThread = %q, %v, %v", got.ID, ok, err)
			}
		}
	})
	b.Run("FindContacts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got, err := s.FindContacts(ctx, "Alice@Example.com"); err != nil || len(got) != 1 {
				b.Fatalf("FindContacts = %v, %v", got, err)
			}
		}
	})
}
