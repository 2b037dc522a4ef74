package imapsource_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/adapters/imapsource/imaptest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// Read an IMAP folder into the pipeline: every filed mail is moved to the
// Filed folder once the store has committed it.
func Example() {
	ctx := context.Background()
	srv, err := imaptest.Start(&imaptest.Options{Folders: []string{"Filed"}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	for i := range 3 {
		raw := fmt.Sprintf("From: c%d@customer.example\r\nSubject: Help %d\r\nMessage-ID: <help-%d@customer.example>\r\n\r\nHi\r\n", i, i, i)
		if _, err := srv.Append("INBOX", []byte(raw)); err != nil {
			log.Fatal(err)
		}
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, _ := memstore.OpenStore(nil)
	defer store.Close()
	p, _ := mailcase.NewPipeline(store, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}, Logger: quiet})
	defer p.Close()

	src, err := imapsource.Dial(ctx, srv.Addr, imapsource.Login{Username: srv.Username, Password: srv.Password}, &imapsource.Options{
		TLSConfig: srv.Cert.Client, // trust the test CA
		Mailbox:   "support",
		State:     store, // UIDVALIDITY and UID watermark
		After:     imapsource.AfterCommit{Kind: imapsource.Move, Folder: "Filed"},
		Logger:    quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	if err := p.Run(ctx, src); err != nil { // one run: until the folder is read
		log.Fatal(err)
	}
	inbox, _ := srv.Count("INBOX")
	filed, _ := srv.Count("Filed")
	fmt.Printf("cases created: %d, left in INBOX: %d, moved to Filed: %d\n", p.Stats().Created, inbox, filed)
	// Output: cases created: 3, left in INBOX: 0, moved to Filed: 3
}
