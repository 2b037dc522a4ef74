package threading_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/threading"
)

// Extract the new text of a reply.
func ExampleExtractor() {
	ex := threading.NewExtractor(nil)
	fmt.Println(ex.ExtractText("Re: Printer", `Still broken, sorry.

Sent from my iPhone

> On 5 Mar 2024, at 10:15, Support <support@company.example> wrote:
> Is the printer working again?
`))
	// Output: Still broken, sorry.
}

// Resolve the case of a reply to a mail built with the outgoing helpers.
func ExampleResolver() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	store, err := memstore.OpenStore(&memstore.Options{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	c, err := store.CreateCase(ctx, &mailcase.NewCase{Subject: "Printer broken", First: &mailcase.Email{
		IdempotencyKey: "k1", MessageID: "c1@customer.example", From: mailcase.Address{Email: "alice@customer.example"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	key := []byte("a per-installation secret key")
	codec, err := threading.NewCodec(key, "company.example")
	if err != nil {
		log.Fatal(err)
	}
	out, err := codec.Outgoing(&threading.OutgoingRequest{Case: c})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Subject)

	r, err := threading.NewResolver(store, &threading.Options{Key: key, Domain: "company.example", Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	reply := &mailcase.Message{
		From:      mailcase.Address{Email: "alice@customer.example"},
		Subject:   "Re: " + out.Subject,
		InReplyTo: []string{mailcase.NormalizeMessageID(out.MessageID)},
	}
	dec, err := r.ResolveThread(ctx, &mailcase.Delivery{Message: reply})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dec.Action, dec.CaseNumber, dec.Signal)
	// Output:
	// About Case 1000 :: Printer broken
	// append 1000 message-id-signed
}

// Find case numbers in a subject.
func ExampleFindSubjectNumbers() {
	subject := "AW: RE: [Ticket #1234] Printer CRM:0005678"
	rest, _ := threading.StripSubjectPrefixes(subject)
	fmt.Println(rest)
	for _, n := range threading.FindSubjectNumbers(subject, threading.DefaultSubjectFormats()) {
		fmt.Println(n.Format, n.Number)
	}
	// Output:
	// [Ticket #1234] Printer CRM:0005678
	// commit 1234
	// tracking-token 0005678
}
