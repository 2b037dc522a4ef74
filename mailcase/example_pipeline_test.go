package mailcase_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

func ExamplePipeline() {
	ctx := context.Background()
	store, err := memstore.OpenStore(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	p, err := mailcase.NewPipeline(store, &mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "first-line"},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	first := "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\n" +
		"Subject: Printer on fire\r\nMessage-ID: <1@customer.example>\r\n\r\nIt burns.\r\n"
	reply := "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\n" +
		"Subject: Re: Printer on fire\r\nMessage-ID: <2@customer.example>\r\n" +
		"In-Reply-To: <1@customer.example>\r\n\r\nStill burning.\r\n"

	src := mailcasetest.NewSource([]byte(first), []byte(reply), []byte(first))
	if err := p.Run(ctx, src); err != nil {
		log.Fatal(err)
	}
	for _, a := range src.Acks() {
		fmt.Println("ack", a.ID, a.Disposition)
	}
	st := p.Stats()
	fmt.Printf("created=%d appended=%d duplicates=%d\n", st.Created, st.Appended, st.Duplicates)

	// Explain a mail without filing it.
	res, err := p.Process(ctx, []byte(reply), &mailcase.ProcessOptions{DryRun: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range res.Outcome.Steps[2:4] {
		fmt.Printf("%s: %s\n", s.Stage, s.Decision)
	}
	// Output:
	// ack 1 done
	// ack 2 done
	// ack 3 done
	// created=1 appended=1 duplicates=1
	// parse: ok
	// idempotency: duplicate
}
