package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// quarantineJSON is one element of quarantine list --json. The field names
// are stable.
type quarantineJSON struct {
	ID        string    `json:"id"`
	Mailbox   string    `json:"mailbox"`
	Key       string    `json:"key"`
	Reason    string    `json:"reason"`
	Attempts  int       `json:"attempts"`
	Size      int       `json:"size"`
	MessageID string    `json:"message_id"`
	Subject   string    `json:"subject"`
	From      string    `json:"from"`
	CreatedAt time.Time `json:"created_at"`
}

// runQuarantine lists, shows, re-processes and deletes the mail a store
// keeps in its quarantine.
func runQuarantine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "list|show|retry|delete [--store URL | --config FILE] [--mailbox NAME] [--json] [--raw] [ID]"
	fset := newFlagSet("quarantine", synopsis, stderr)
	storeURL := fset.String("store", fileStoreURL(), "store URL")
	cfgPath := fset.String("config", "", "configuration file: its store, and for retry the mailbox's policies")
	mailbox := fset.String("mailbox", "", "list: only this mailbox's mail")
	asJSON := fset.Bool("json", false, "list and show: JSON instead of text")
	raw := fset.Bool("raw", false, "show: write the mail's raw bytes unchanged (for a file or a pipe, never a terminal)")
	storeSet := false
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	fset.Visit(func(f *flag.Flag) { storeSet = storeSet || f.Name == "store" })
	if len(pos) == 0 {
		fset.Usage()
		return usageError("quarantine needs a subcommand: list, show ID, retry ID or delete ID")
	}
	sub, rest := pos[0], pos[1:]
	switch sub {
	case "list":
		if len(rest) > 0 {
			return usageError("quarantine list takes no ID")
		}
	case "show", "retry", "delete":
		if len(rest) != 1 {
			return usageError("quarantine %s needs exactly one ID (see quarantine list)", sub)
		}
	default:
		return usageError("unknown quarantine subcommand %q (list, show, retry or delete)", sub)
	}
	var cfg *runConfig
	url := *storeURL
	if *cfgPath != "" {
		if cfg, err = loadConfig(*cfgPath); err != nil {
			return err
		}
		if !storeSet {
			if url, err = cfg.storeURL(); err != nil {
				return err
			}
		}
	}
	store, err := openExistingPairedStore(ctx, url, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if !store.CanQuarantine() {
		return fmt.Errorf("store %s keeps no quarantine", redactURL(url))
	}
	if sub == "list" {
		items, err := store.ListQuarantine(ctx, *mailbox)
		if err != nil {
			return fmt.Errorf("list the quarantine: %w", err)
		}
		out := make([]quarantineJSON, 0, len(items))
		for i := range items {
			out = append(out, newQuarantineJSON(&items[i]))
		}
		if *asJSON {
			return writeJSON(stdout, out)
		}
		if len(out) == 0 {
			fmt.Fprintf(stdout, "no quarantined mail in %s\n", redactURL(url))
			return nil
		}
		for _, q := range out {
			fmt.Fprintf(stdout, "%s  %s  mailbox %s  %d bytes  %d attempts\n", clean(q.ID),
				q.CreatedAt.Format(time.RFC3339), clean(orDash(q.Mailbox)), q.Size, q.Attempts)
			field(stdout, "message-id", orDash(q.MessageID))
			field(stdout, "from", orDash(q.From))
			field(stdout, "subject", q.Subject)
			field(stdout, "reason", q.Reason)
		}
		return nil
	}
	id := rest[0]
	item, err := findQuarantined(ctx, store, id)
	if err != nil {
		return err
	}
	switch sub {
	case "show":
		if *raw {
			if isTerminal(stdout) {
				return usageError("--raw writes the mail unchanged: redirect it to a file or a pipe, not a terminal")
			}
			_, err := stdout.Write(item.Raw)
			return err
		}
		q := newQuarantineJSON(item)
		if *asJSON {
			return writeJSON(stdout, struct {
				quarantineJSON
				Raw string `json:"raw"`
			}{q, string(item.Raw)})
		}
		field(stdout, "id", q.ID)
		field(stdout, "mailbox", orDash(q.Mailbox))
		field(stdout, "key", orDash(q.Key))
		field(stdout, "created", q.CreatedAt.Format(time.RFC3339))
		field(stdout, "attempts", fmt.Sprint(q.Attempts))
		field(stdout, "size", fmt.Sprintf("%d bytes", q.Size))
		field(stdout, "reason", q.Reason)
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, "Raw mail (control characters escaped; --raw for the exact bytes)")
		printIndented(stdout, string(item.Raw), 200)
		return nil
	case "delete":
		if err := store.DeleteQuarantine(ctx, id); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "deleted %s from the quarantine\n", clean(id))
		return nil
	}
	// retry: run the raw mail through the pipeline of its mailbox, wired
	// as run wires it: the mailbox's plugins, the events recorder and the
	// service-level hook of the configuration (none without --config).
	log := commandLogger(fset, stderr)
	mb := &mailboxConfig{Mailbox: mailcase.Mailbox{Name: item.Mailbox}}
	if cfg != nil {
		if m, err := cfg.mailbox(item.Mailbox); err == nil {
			mb = m
		} else if item.Mailbox != "" {
			return fmt.Errorf("retry %s: %w", id, err)
		}
	}
	filing, err := wireFiling(ctx, cfg, store, log, false)
	if err != nil {
		return err
	}
	defer filing.Close()
	p, err := mb.pipeline(store, log, filing)
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := p.Reprocess(ctx, id)
	if res != nil {
		fmt.Fprintf(stdout, "%s: %s\n", clean(id), clean(describeAction(&res.Outcome)))
	}
	if err != nil {
		return fmt.Errorf("retry %s: %w", id, err)
	}
	return nil
}

// findQuarantined returns the quarantined mail id.
func findQuarantined(ctx context.Context, store *mailcase.Store, id string) (*mailcase.QuarantineItem, error) {
	q, ok, err := store.GetQuarantine(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read the quarantine: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("no quarantined mail %q (see quarantine list)", id)
	}
	return &q, nil
}

// newQuarantineJSON describes q, with the Message-ID, From and Subject
// read leniently from its header (the mail may be broken).
func newQuarantineJSON(q *mailcase.QuarantineItem) quarantineJSON {
	out := quarantineJSON{ID: q.ID, Mailbox: q.Mailbox, Key: q.Key, Reason: q.Reason, Attempts: q.Attempts,
		Size: len(q.Raw), CreatedAt: q.CreatedAt}
	m, err := mail.ReadMessage(bytes.NewReader(q.Raw))
	if err != nil {
		return out // a header that cannot be read: the reason says why
	}
	dec := new(mime.WordDecoder)
	get := func(k string) string {
		v := m.Header.Get(k)
		if d, err := dec.DecodeHeader(v); err == nil {
			return d
		}
		return v
	}
	out.MessageID, out.Subject, out.From = get("Message-Id"), get("Subject"), get("From")
	return out
}
