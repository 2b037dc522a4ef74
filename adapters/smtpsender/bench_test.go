package smtpsender_test

import (
	"strings"
	"testing"

	"github.com/emailcrm/emailcrm/adapters/smtpsender"
	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
)

// BenchmarkSend sends over one reused TLS connection with AUTH.
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1KiB", 1 << 10}, {"100KiB", 100 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := smtptest.Start(b, &smtptest.Options{Username: "u", Password: "p", NoData: true})
			s, err := smtpsender.New(srv.Addr, smtpsender.Login{Username: "u", Password: "p"},
				&smtpsender.Options{TLSConfig: srv.Cert, MaxPerConnection: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			line := strings.Repeat("x", 76) + "\r\n"
			raw := []byte("Subject: bench\r\n\r\n" + strings.Repeat(line, bc.size/len(line)))
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := s.Send(b.Context(), "a@example.com", []string{"b@example.com"}, raw); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
