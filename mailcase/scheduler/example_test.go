package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/scheduler"
)

// Two mailboxes polled at their own intervals by one scheduler.
func Example() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, _ := memstore.OpenStore(nil)
	defer store.Close()
	s := scheduler.New(&scheduler.Options{Logger: quiet})
	for i, name := range []string{"support", "billing"} {
		srv, err := imaptest.Start(nil)
		if err != nil {
			log.Fatal(err)
		}
		defer srv.Close()
		for j := 0; j <= i; j++ {
			raw := fmt.Sprintf("From: c@customer.example\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@x>\r\n\r\nHi\r\n", name, j, name, j)
			_, _ = srv.Append("INBOX", []byte(raw))
		}
		p, _ := mailcase.NewPipeline(store, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: name}, Logger: quiet})
		defer p.Close()
		src, err := imapsource.Dial(context.Background(), srv.Addr, imapsource.Login{Username: srv.Username, Password: srv.Password}, &imapsource.Options{TLSConfig: srv.Cert.Client,
			Mailbox: name, State: store, Logger: quiet,
		})
		if err != nil {
			log.Fatal(err)
		}
		defer src.Close()
		_ = s.Add(scheduler.Job{Name: name, Source: src, Pipeline: p, Interval: time.Duration(i+1) * time.Minute})
	}

	// Every mailbox is polled at start; stop after the first polls.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.Run(ctx)
	for _, mb := range s.Stats().Mailboxes {
		fmt.Printf("%s: runs=%d fetched=%d created=%d\n", mb.Name, mb.Runs, mb.Fetched, mb.Created)
	}
	// Output:
	// support: runs=1 fetched=1 created=1
	// billing: runs=1 fetched=2 created=2
}
