package pop3source_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/emailcrm/emailcrm/adapters/pop3source"
	"github.com/emailcrm/emailcrm/adapters/pop3source/pop3test"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// Read a POP3 maildrop: DELE is sent only after the store committed a mail,
// and committed by QUIT at the end of the session.
func Example() {
	ctx := context.Background()
	srv, err := pop3test.Start(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.Add([]byte("From: ann@customer.example\r\nSubject: Refund\r\nMessage-ID: <r1@customer.example>\r\n\r\nPlease.\r\n"))
	srv.Add([]byte("From: bob@customer.example\r\nSubject: Invoice\r\nMessage-ID: <i1@customer.example>\r\n\r\nWhere?\r\n"))

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, _ := memstore.OpenStore(nil)
	defer store.Close()
	p, _ := mailcase.NewPipeline(store, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "billing"}, Logger: quiet})
	defer p.Close()
	src, err := pop3source.Dial(ctx, srv.Addr, pop3source.Login{Username: "user", Password: "pass"}, &pop3source.Options{
		Security: pop3source.Insecure, // loopback test server
		Mailbox:  "billing", State: store, Logger: quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	if err := p.Run(ctx, src); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("created %d cases, %d mails left on the server\n", p.Stats().Created, len(srv.Messages()))
	// Output: created 2 cases, 0 mails left on the server
}

// The client alone.
func ExampleClient() {
	ctx := context.Background()
	srv, _ := pop3test.Start(nil)
	defer srv.Close()
	srv.Add([]byte("Subject: dots\r\n\r\n.starts with a dot\r\n"))

	c, err := pop3source.DialClient(ctx, srv.Addr, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(ctx, "user", "pass"); err != nil {
		log.Fatal(err)
	}
	uidl, _ := c.UIDL(ctx)
	raw, _ := c.Retr(ctx, uidl[0].Num, 1<<20)
	fmt.Printf("%s %q\n", uidl[0].UID, raw)
	_ = c.Quit(ctx)
	// Output: uid-1 "Subject: dots\r\n\r\n.starts with a dot\r\n"
}
