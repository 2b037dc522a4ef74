package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"sync"

	"github.com/emersion/go-smtp"

	"github.com/emailcrm/emailcrm"
	"github.com/emailcrm/emailcrm/adapters/smtpsender"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
)

// demoReceiver is the demo's outgoing server: a go-smtp server on loopback
// that keeps what it receives (the customer's inbox).
type demoReceiver struct {
	srv *smtp.Server
	ln  net.Listener
	mu  sync.Mutex
	got [][]byte
}

func startDemoReceiver() (*demoReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo SMTP receiver: %w", err)
	}
	r := &demoReceiver{ln: ln}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &demoSession{r: r}, nil }))
	r.srv.Domain = "localhost"
	r.srv.AllowInsecureAuth = true
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *demoReceiver) Addr() string { return r.ln.Addr().String() }
func (r *demoReceiver) Close() error { return r.srv.Close() }

// last returns the last message received.
func (r *demoReceiver) last() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return nil, errors.New("demo SMTP receiver got nothing")
	}
	return r.got[len(r.got)-1], nil
}

type demoSession struct{ r *demoReceiver }

func (s *demoSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *demoSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *demoSession) Data(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, 10<<20))
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.got = append(s.r.got, b)
	s.r.mu.Unlock()
	return nil
}
func (s *demoSession) Reset()        {}
func (s *demoSession) Logout() error { return nil }

// demoThreadKey signs the demo's Message-IDs. It is not secret: the demo's
// store is thrown away. A real installation takes its key from
// threading.key_env or key_file.
var demoThreadKey = []byte("emailcrm demo key, not a secret!")

// runDemoOutgoing shows the outgoing side: the acknowledgement a customer
// gets, an agent's Log Email, and the customer's reply threading back to
// the case through the signed Message-ID, all through a real SMTP
// exchange with an in-process server. The cases are in store, the
// outgoing mail in outboxStore's outbox (store itself, or the local store
// a CRM store is paired with). With sf, each step prints the REST calls it
// cost.
func runDemoOutgoing(ctx context.Context, store, outboxStore *mailcase.Store, stdout io.Writer, log *slog.Logger, sf *demoSalesforce) error {
	if !outboxStore.CanOutbox() {
		fmt.Fprintln(stdout, "(this store keeps no outbox: no outgoing mail)")
		return nil
	}
	mb := demoMailbox()
	recv, err := startDemoReceiver()
	if err != nil {
		return err
	}
	defer recv.Close()
	tr, err := smtpsender.New(recv.Addr(), smtpsender.Login{}, &smtpsender.Options{Security: smtpsender.Insecure})
	if err != nil {
		return err
	}
	defer tr.Close()
	domain := mailcase.DomainOf(mb.Address)
	codec, err := threading.NewCodec(demoThreadKey, domain)
	if err != nil {
		return err
	}
	from := mail.Address{Name: "Our Company Support", Address: mb.Address}
	ack, err := outbox.NewAcknowledger(outboxStore, &outbox.AckOptions{From: from, LoopID: "emailcrm demo", Codec: codec, Cases: store})
	if err != nil {
		return err
	}
	p, err := emailcrm.NewPipeline(store, &emailcrm.Options{
		Pipeline:  mailcase.Options{Mailbox: mb, Responders: []mailcase.Responder{ack}, Logger: log},
		Threading: &threading.Options{Key: demoThreadKey, Domain: domain, OwnAddresses: []string{mb.Address}}})
	if err != nil {
		return err
	}
	defer p.Close()
	d, err := outbox.NewDeliverer(outboxStore, tr, &outbox.DelivererOptions{Cases: store})
	if err != nil {
		return err
	}
	mailer, err := outbox.NewMailer(outboxStore, &outbox.MailerOptions{From: from, Codec: codec, Cases: store})
	if err != nil {
		return err
	}
	deliver := func() (*mail.Message, error) {
		if _, err := d.DeliverDue(ctx); err != nil {
			return nil, err
		}
		raw, err := recv.last()
		if err != nil {
			return nil, err
		}
		return mail.ReadMessage(bytes.NewReader(raw))
	}
	show := func(title string, m *mail.Message) {
		fmt.Fprintln(stdout, title)
		for _, k := range []string{"From", "To", "Subject", "Message-Id", "In-Reply-To", "Auto-Submitted", mailcase.LoopHeader} {
			if v := m.Header.Get(k); v != "" {
				field(stdout, k, v)
			}
		}
		if sf != nil {
			printRESTCalls(stdout, sf.take())
		}
		fmt.Fprintln(stdout)
	}

	fmt.Fprintf(stdout, "Outgoing mail (through an SMTP server on %s, in this process)\n\n", recv.Addr())
	first := "From: Dana Customer <dana@newcustomer.example>\r\nTo: " + mb.Address + "\r\nSubject: Cannot log in\r\n" +
		"Message-ID: <demo-out-1@newcustomer.example>\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n\r\nMy password reset mail never arrives.\r\n"
	res, err := p.Process(ctx, []byte(first), nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "1. dana@newcustomer.example writes: case %s %s\n", clean(res.Outcome.CaseNumber), clean(string(res.Outcome.Action)))
	m, err := deliver()
	if err != nil {
		return err
	}
	show("   the acknowledgement she gets", m)

	_, err = mailer.LogEmail(ctx, &outbox.LogEmail{Key: "demo-log-1", Case: res.Outcome.CaseID,
		Agent: mailcase.Employee{Name: "Support Agent", Email: "agent@ourcompany.example"},
		Body:  "Hello Dana,\n\nthe reset mail was held by your spam filter; I sent a new one.\n"})
	if err != nil {
		return err
	}
	m, err = deliver()
	if err != nil {
		return err
	}
	show("2. an agent answers on the case (Log Email)", m)
	if sf != nil {
		fmt.Fprintf(stdout, "   on the case in Salesforce: %s\n\n", sf.emailMessage(m.Header.Get("Message-Id")))
	}

	reply := "From: Dana Customer <dana@newcustomer.example>\r\nTo: " + mb.Address + "\r\nSubject: " + m.Header.Get("Subject") +
		"\r\nMessage-ID: <demo-out-2@newcustomer.example>\r\nIn-Reply-To: " + m.Header.Get("Message-Id") +
		"\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\nThanks, it works!\r\n\r\n> Hello Dana,\r\n> the reset mail was held by your spam filter\r\n"
	res, err = p.Process(ctx, []byte(reply), nil)
	if err != nil {
		return err
	}
	signal := ""
	if res.Outcome.Thread != nil {
		signal = res.Outcome.Thread.Signal
	}
	fmt.Fprintf(stdout, "3. her reply: case %s %s (signal %s), new text %q; not acknowledged again\n",
		clean(res.Outcome.CaseNumber), clean(string(res.Outcome.Action)), clean(signal), clean(res.Message.ReplyText))
	if sf != nil {
		printRESTCalls(stdout, sf.take())
	}
	return nil
}
