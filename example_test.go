package emailcrm_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/emailcrm/emailcrm"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// A pipeline built by NewPipeline threads a reply onto its case and files
// only its new text: the quoted history is stripped.
func ExampleNewPipeline() {
	ctx := context.Background()
	store, err := memstore.OpenStore(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	p, err := emailcrm.NewPipeline(store, &emailcrm.Options{Pipeline: mailcase.Options{
		Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "support"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	first := "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\n" +
		"Subject: Printer broken\r\nMessage-ID: <1@customer.example>\r\n" +
		"Date: Mon, 16 Nov 2026 10:00:00 +0000\r\n\r\nThe printer shows E42.\r\n"
	reply := "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\n" +
		"Subject: Re: Printer broken\r\nMessage-ID: <2@customer.example>\r\n" +
		"In-Reply-To: <1@customer.example>\r\nReferences: <1@customer.example>\r\n" +
		"Date: Mon, 16 Nov 2026 11:00:00 +0000\r\n\r\nStill broken after the update.\r\n\r\n" +
		"On Mon, 16 Nov 2026 at 10:00, Ann <ann@customer.example> wrote:\r\n> The printer shows E42.\r\n"
	for _, raw := range []string{first, reply} {
		res, err := p.Process(ctx, []byte(raw), nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %q\n", res.Outcome.Action, strings.TrimSpace(res.Message.ReplyText))
	}
	for _, pl := range p.Plugins {
		fmt.Println(pl.Role+":", pl.Name)
	}
	// Output:
	// created: "The printer shows E42."
	// appended: "Still broken after the update."
	// sender matcher: mailcase.StoreSenderMatcher
	// structured mail: none
	// bounce handler: outbox.Bounces
	// reply extractor: threading.Extractor
	// thread resolver: threading.Resolver
	// router: none
}
