package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// outboxJSON is one element of outbox list --json. The field names are
// stable.
type outboxJSON struct {
	ID            string    `json:"id"`
	CaseID        string    `json:"case_id,omitempty"`
	Mailbox       string    `json:"mailbox"`
	Kind          string    `json:"kind"`
	From          string    `json:"from"`
	To            []string  `json:"to"`
	MessageID     string    `json:"message_id"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	SentAt        time.Time `json:"sent_at,omitzero"`
}

func newOutboxJSON(m *driver.OutboxMessage) outboxJSON {
	return outboxJSON{ID: m.ID, CaseID: string(m.CaseID), Mailbox: m.Mailbox, Kind: m.Kind, From: m.From, To: m.To,
		MessageID: m.MessageID, Status: string(m.Status), Attempts: m.Attempts, NextAttemptAt: m.NextAttemptAt,
		LastError: m.LastError, CreatedAt: m.CreatedAt, SentAt: m.SentAt}
}

// runOutbox lists, shows, retries and cancels the outgoing mail of a
// store's outbox.
func runOutbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "list|show|retry|cancel [--store URL | --config FILE] [--status S] [--case ID] [--limit N] [--json] [--raw] [ID]"
	fset := newFlagSet("outbox", synopsis, stderr)
	storeURL := fset.String("store", fileStoreURL(), "store URL")
	cfgPath := fset.String("config", "", "configuration file: its store")
	status := fset.String("status", "", "list: only messages with this status (pending, sending, sent, failed, cancelled, bounced)")
	caseID := fset.String("case", "", "list: only messages about this case")
	limit := fset.Int("limit", 50, "list: at most this many messages, newest first (0: all)")
	asJSON := fset.Bool("json", false, "list and show: JSON instead of text")
	raw := fset.Bool("raw", false, "show: write the message's raw bytes unchanged (for a file or a pipe, never a terminal)")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	storeSet := false
	fset.Visit(func(f *flag.Flag) { storeSet = storeSet || f.Name == "store" })
	if len(pos) == 0 {
		fset.Usage()
		return usageError("outbox needs a subcommand: list, show ID, retry ID or cancel ID")
	}
	sub, rest := pos[0], pos[1:]
	switch sub {
	case "list":
		if len(rest) > 0 {
			return usageError("outbox list takes no ID")
		}
		switch driver.OutboxStatus(*status) {
		case "", driver.OutboxPending, driver.OutboxSending, driver.OutboxSent, driver.OutboxFailed, driver.OutboxCancelled, driver.OutboxBounced:
		default:
			return usageError("unknown outbox status %q", *status)
		}
	case "show", "retry", "cancel":
		if len(rest) != 1 {
			return usageError("outbox %s needs exactly one ID (see outbox list)", sub)
		}
	default:
		return usageError("unknown outbox subcommand %q (list, show, retry or cancel)", sub)
	}
	url := *storeURL
	var cfg *runConfig
	if *cfgPath != "" && !storeSet {
		var err error
		if cfg, err = loadConfig(*cfgPath); err != nil {
			return err
		}
		if url, err = cfg.storeURL(); err != nil {
			return err
		}
	}
	store, err := openExistingPairedStore(ctx, url, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if !store.CanOutbox() {
		return fmt.Errorf("store %s keeps no outbox", redactURL(url))
	}
	if sub == "list" {
		msgs, err := store.ListOutbox(ctx, &driver.OutboxListOptions{Status: driver.OutboxStatus(*status), CaseID: mailcase.CaseID(*caseID), Limit: max(*limit, 0)})
		if err != nil {
			return fmt.Errorf("list the outbox: %w", err)
		}
		out := make([]outboxJSON, 0, len(msgs))
		for i := range msgs {
			out = append(out, newOutboxJSON(&msgs[i]))
		}
		if *asJSON {
			return writeJSON(stdout, out)
		}
		if len(out) == 0 {
			fmt.Fprintf(stdout, "no outgoing mail in %s\n", redactURL(url))
			return nil
		}
		for _, m := range out {
			printOutbox(stdout, &m)
		}
		return nil
	}
	id := rest[0]
	m, ok, err := store.GetOutbox(ctx, id)
	if err != nil {
		return fmt.Errorf("read outgoing message %s: %w", clean(id), err)
	}
	if !ok {
		return fmt.Errorf("no outgoing message %s (see outbox list)", clean(id))
	}
	switch sub {
	case "show":
		if *raw {
			if isTerminal(stdout) {
				return usageError("--raw writes the message unchanged: redirect it to a file or a pipe, not a terminal")
			}
			_, err := stdout.Write(m.Raw)
			return err
		}
		j := newOutboxJSON(&m)
		if *asJSON {
			return writeJSON(stdout, struct {
				outboxJSON
				Raw string `json:"raw"`
			}{j, string(m.Raw)})
		}
		printOutbox(stdout, &j)
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, "Raw message (control characters escaped; --raw for the exact bytes)")
		printIndented(stdout, string(m.Raw), 200)
		return nil
	case "retry":
		if err := store.SetOutboxStatus(ctx, id, driver.OutboxPending, ""); err != nil {
			if mailcase.Code(err) == driver.FailedPrecondition {
				return fmt.Errorf("outgoing message %s is %s: only pending, failed, cancelled or bounced mail is retried", clean(id), m.Status)
			}
			return fmt.Errorf("retry %s: %w", clean(id), err)
		}
		fmt.Fprintf(stdout, "outgoing message %s is due now\n", clean(id))
		return nil
	}
	if err := store.SetOutboxStatus(ctx, id, driver.OutboxCancelled, ""); err != nil {
		if mailcase.Code(err) == driver.FailedPrecondition {
			if now, ok, gerr := store.GetOutbox(ctx, id); gerr == nil && ok {
				m = now // the status it has now, not the one read before
			}
			return fmt.Errorf("outgoing message %s is %s: only pending mail is cancelled", clean(id), m.Status)
		}
		return fmt.Errorf("cancel %s: %w", clean(id), err)
	}
	fmt.Fprintf(stdout, "outgoing message %s cancelled\n", clean(id))
	return nil
}

func printOutbox(w io.Writer, m *outboxJSON) {
	fmt.Fprintf(w, "%s  %s  %s  mailbox %s  %d attempts\n", clean(m.ID), m.CreatedAt.Format(time.RFC3339), clean(m.Status), clean(orDash(m.Mailbox)), m.Attempts)
	field(w, "kind", orDash(m.Kind))
	field(w, "case", orDash(m.CaseID))
	field(w, "message-id", orDash(m.MessageID))
	field(w, "from", m.From)
	field(w, "to", strings.Join(m.To, ", "))
	if !m.SentAt.IsZero() {
		field(w, "sent", m.SentAt.Format(time.RFC3339))
	}
	if m.Status == string(driver.OutboxPending) && !m.NextAttemptAt.IsZero() {
		field(w, "retry at", m.NextAttemptAt.Format(time.RFC3339))
	}
	if m.LastError != "" {
		field(w, "last error", m.LastError)
	}
}
