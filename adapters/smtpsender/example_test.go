package smtpsender_test

import (
	"context"
	"fmt"
	"log"

	"github.com/emailcrm/emailcrm/adapters/smtpsender"
	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
)

func Example() {
	// A test server with implicit TLS and AUTH; in production, addr is
	// the provider's host:465 and TLSConfig is nil (system roots).
	srv, err := smtptest.NewServer(&smtptest.Options{Username: "desk@example.com", Password: "app-password"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	s, err := smtpsender.New(srv.Addr,
		smtpsender.Login{Username: "desk@example.com", Password: "app-password"},
		&smtpsender.Options{TLSConfig: srv.Cert})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	raw := []byte("From: desk@example.com\r\nTo: alice@example.org\r\nSubject: [Case 42] Re: printer\r\n\r\nFixed.\r\n")
	if err := s.Send(context.Background(), "desk@example.com", []string{"alice@example.org"}, raw); err != nil {
		if smtpsender.IsPermanent(err) {
			log.Fatalf("bounced: %v", err)
		}
		log.Fatalf("retry later: %v", err)
	}
	m := srv.Messages()[0]
	fmt.Println(m.From, m.To, m.User, m.Mechanism, m.TLS)
	// Output: desk@example.com [alice@example.org] desk@example.com PLAIN true
}
