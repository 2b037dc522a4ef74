package lmtpsource_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/emailcrm/emailcrm/adapters/lmtpsource"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// An MTA delivers over LMTP; each recipient is answered only once the mail
// is filed in its mailbox.
func Example() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, _ := memstore.OpenStore(nil)
	defer store.Close()
	support, _ := mailcase.NewPipeline(store, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}, Logger: quiet})
	defer support.Close()

	srv, err := lmtpsource.New(map[string]lmtpsource.Processor{"support@example.com": support}, &lmtpsource.Options{
		Logger: quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	conn, _ := net.Dial("tcp", ln.Addr().String())
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	_ = c.Hello("mta.example")
	_ = c.Mail("ann@customer.example", nil)
	_ = c.Rcpt("support@example.com", nil)
	err = c.Rcpt("nobody@example.com", nil)
	fmt.Println("unknown recipient:", err.(*smtp.SMTPError).Code)
	w, _ := c.Data()
	_, _ = io.Copy(w, strings.NewReader("From: ann@customer.example\r\nSubject: Hi\r\nMessage-ID: <hi@customer.example>\r\n\r\nHello\r\n"))
	resp, err := w.CloseWithLMTPResponse()
	fmt.Println("support@example.com accepted (250):", resp["support@example.com"] != nil, err)
	fmt.Println("cases:", support.Stats().Created)
	// Output:
	// unknown recipient: 550
	// support@example.com accepted (250): true <nil>
	// cases: 1
}
