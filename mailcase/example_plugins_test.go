package mailcase_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// exampleMail is a new mail from ann@customer.example.
func exampleMail(id, subject string) []byte {
	return []byte("From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + id + ">\r\n\r\nHello.\r\n")
}

// examplePipeline returns a pipeline over a new memstore with opts.
func examplePipeline(opts mailcase.Options) (*mailcase.Store, *mailcase.Pipeline) {
	store, err := memstore.OpenStore(nil)
	if err != nil {
		log.Fatal(err)
	}
	opts.Mailbox = mailcase.Mailbox{Name: "support", Address: "support@example.com", DefaultQueue: "first-line"}
	opts.Logger = slog.New(slog.DiscardHandler)
	p, err := mailcase.NewPipeline(store, &opts)
	if err != nil {
		log.Fatal(err)
	}
	return store, p
}

// A RouterFunc routes with an ordinary function: here, invoices go to
// billing at high priority, everything else to first-line support.
func ExampleRouterFunc() {
	router := mailcase.RouterFunc(func(_ context.Context, d *mailcase.Delivery) (mailcase.Route, error) {
		if strings.Contains(strings.ToLower(d.Message.Subject), "invoice") {
			return mailcase.Route{Queue: "billing", Priority: mailcase.PriorityHigh, Rule: "subject-invoice",
				Reason: "the subject mentions an invoice"}, nil
		}
		return mailcase.Route{Queue: "first-line", Rule: "default"}, nil
	})
	store, p := examplePipeline(mailcase.Options{Router: router})
	defer store.Close()
	defer p.Close()

	ctx := context.Background()
	for i, subject := range []string{"Invoice 42 is wrong", "Printer on fire"} {
		res, err := p.Process(ctx, exampleMail(fmt.Sprintf("r%d@customer.example", i), subject), nil)
		if err != nil {
			log.Fatal(err)
		}
		c, _, _ := store.GetCase(ctx, res.Outcome.CaseID)
		fmt.Printf("%s: queue %s, priority %s (rule %s)\n", subject, c.Queue, c.Priority, res.Outcome.Route.Rule)
	}
	// Output:
	// Invoice 42 is wrong: queue billing, priority high (rule subject-invoice)
	// Printer on fire: queue first-line, priority normal (rule default)
}

// A SenderMatcherFunc identifies senders from a source of its own, here a
// map standing for a company directory; a sender it does not know is
// SenderUnknown, not an error.
func ExampleSenderMatcherFunc() {
	vip := map[string]mailcase.Account{"customer.example": {ID: "acct-7", Name: "Customer Ltd", SupportLevel: "gold"}}
	matcher := mailcase.SenderMatcherFunc(func(_ context.Context, from mailcase.Address) (mailcase.SenderMatch, error) {
		addr := mailcase.NormalizeAddress(from.Email)
		domain := addr[strings.LastIndexByte(addr, '@')+1:]
		if a, ok := vip[domain]; ok {
			return mailcase.SenderMatch{Kind: mailcase.SenderAccount, Address: addr, Account: &a,
				Reason: "domain " + domain + " in the directory"}, nil
		}
		return mailcase.SenderMatch{Kind: mailcase.SenderUnknown, Address: addr, Reason: "not in the directory"}, nil
	})
	m, err := matcher.MatchSender(context.Background(), mailcase.Address{Email: "Ann@Customer.Example"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Kind, m.Address, m.Account.ID, m.Account.SupportLevel)

	store, p := examplePipeline(mailcase.Options{Senders: matcher})
	defer store.Close()
	defer p.Close()
	res, err := p.Process(context.Background(), exampleMail("s1@customer.example", "Help"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("case account:", res.Outcome.Sender.Kind, res.Outcome.Sender.Account.ID)
	// Output:
	// account ann@customer.example acct-7 gold
	// case account: account acct-7
}

// OnResult sees the Result of every mail Run processed, synchronously,
// after the mail was acknowledged: a hook for metrics, audit logs or
// notifications.
func ExampleOptions_onResult() {
	counts := map[mailcase.Action]int{}
	store, p := examplePipeline(mailcase.Options{OnResult: func(_ context.Context, r *mailcase.Result) {
		counts[r.Outcome.Action]++
		fmt.Printf("%s %s %s\n", r.Outcome.Action, r.Outcome.Disposition, r.Outcome.CaseID)
	}})
	defer store.Close()
	defer p.Close()

	first := exampleMail("o1@customer.example", "Printer on fire")
	src := mailcasetest.NewSource(first, first) // the second is a redelivery
	if err := p.Run(context.Background(), src); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(counts), "kinds of action")
	// Output:
	// created done case-2
	// duplicate done case-2
	// 2 kinds of action
}
