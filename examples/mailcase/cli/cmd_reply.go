package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
)

// runReply queues a Log Email: an agent's answer on a case, filed on the
// case and put in the outbox (run delivers it).
func runReply(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset := newFlagSet("reply", "--config FILE [--mailbox NAME] [--to ADDR,...] [--cc ADDR,...] [--bcc ADDR,...] [--agent ADDR] [--file F] CASE", stderr)
	cfgPath := fset.String("config", "", "configuration file: its store, the mailbox's address and the thread key")
	mbName := fset.String("mailbox", "", "mailbox the mail is sent for (default: the first of the file)")
	to := fset.String("to", "", "recipients, comma-separated (default: the sender of the case's last mail)")
	cc := fset.String("cc", "", "copy recipients, comma-separated")
	bcc := fset.String("bcc", "", "blind copy recipients, comma-separated (in the envelope only)")
	agent := fset.String("agent", "", "the agent's address (an employee of the store); the mail is From them when the mailbox's replies say from_agent")
	file := fset.String("file", "-", "file holding the text (- for standard input)")
	key := fset.String("key", "", "idempotency key: the same key queues the mail once (default: a hash of case, recipients, agent and text)")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if *cfgPath == "" || len(pos) != 1 {
		fset.Usage()
		return usageError("reply needs --config FILE and one case (number or ID)")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if len(cfg.Mailboxes) == 0 {
		return errors.New("the configuration has no mailbox")
	}
	mb := &cfg.Mailboxes[0]
	if *mbName != "" {
		if mb, err = cfg.mailbox(*mbName); err != nil {
			return err
		}
	}
	var body []byte
	if *file == "-" {
		body, err = io.ReadAll(io.LimitReader(stdin, maxReplyText+1))
		if err == nil && len(body) > maxReplyText {
			return usageError("the reply's text is over %d bytes", maxReplyText)
		}
	} else {
		body, err = os.ReadFile(*file)
	}
	if err != nil {
		return fmt.Errorf("read the text: %w", err)
	}
	if strings.TrimSpace(string(body)) == "" {
		return usageError("the reply's text is empty")
	}
	th := mb.plugins.Threading
	secret, err := secretValue(th.KeyEnv, th.KeyFile)
	if err != nil {
		return fmt.Errorf("threading key: %w", err)
	}
	tkey := decodeThreadKey(secret)
	if len(tkey) == 0 {
		return errors.New("reply needs the thread key (threading.key_env or key_file), so that the answer threads back")
	}
	domain := th.Domain
	if domain == "" {
		domain = mailcase.DomainOf(mb.Address)
	}
	codec, err := threading.NewCodec(tkey, domain)
	if err != nil {
		return err
	}
	store, err := openConfigStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	c, ok, err := store.FindCaseByNumber(ctx, pos[0])
	if !ok {
		// Not a number this store knows (or one it refuses): a case ID.
		c, ok, err = store.GetCase(ctx, mailcase.CaseID(pos[0]))
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no case %s", clean(pos[0]))
	}
	tpls, err := mb.plugins.Replies.templates()
	if err != nil {
		return err
	}
	m, err := outbox.NewMailer(store, &outbox.MailerOptions{From: mail.Address{Name: mb.plugins.Replies.FromName, Address: mb.Address},
		FromAgent: on(mb.plugins.Replies.FromAgent), Codec: codec, LogEmail: tpls[outbox.KindLogEmail], Mailbox: mb.Name})
	if err != nil {
		return err
	}
	e := &outbox.LogEmail{Key: *key, Case: c.ID, Body: string(body)}
	if e.Key == "" {
		// The same text to other recipients is another mail, not a retry.
		h := sha256.Sum256([]byte(strings.Join([]string{string(c.ID), *to, *cc, *bcc, *agent, string(body)}, "\x00")))
		e.Key = hex.EncodeToString(h[:])
	}
	if *agent != "" {
		emp, ok, err := store.FindEmployee(ctx, *agent)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no employee %s in the store", clean(*agent))
		}
		e.Agent = emp
	}
	for _, l := range []struct {
		s   string
		dst *[]mail.Address
	}{{*to, &e.To}, {*cc, &e.Cc}, {*bcc, &e.Bcc}} {
		if l.s == "" {
			continue
		}
		as, err := mail.ParseAddressList(l.s)
		if err != nil {
			return usageError("recipients %q: %v", l.s, err)
		}
		for _, a := range as {
			*l.dst = append(*l.dst, *a)
		}
	}
	changes, err := wireChanges(cfg, store, commandLogger(fset, stderr))
	if err != nil {
		return err
	}
	defer changes.Close()
	id, err := m.LogEmail(ctx, e)
	if err != nil {
		return err
	}
	// Recorded once the mail is queued (the outbox names no event of its
	// own), as the worklist's reply is; the outbox ID makes a repeated
	// command one event.
	changes.replyQueued(ctx, c.ID, id, outbox.KindLogEmail, mb.Name)
	fmt.Fprintf(stdout, "queued %s on case %s (outbox %s)\n", clean(outbox.KindLogEmail), clean(c.Number), clean(id))
	return nil
}

func runReplyStdin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runReply(ctx, args, os.Stdin, stdout, stderr)
}

// maxReplyText bounds the text of a reply read from standard input.
const maxReplyText = 10 << 20
