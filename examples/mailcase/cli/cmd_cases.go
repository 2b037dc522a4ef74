package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// caseJSON is one element of cases --json. The field names are stable.
type caseJSON struct {
	ID        mailcase.CaseID     `json:"id"`
	Number    string              `json:"number"`
	Subject   string              `json:"subject"`
	Status    mailcase.CaseStatus `json:"status"`
	Priority  mailcase.Priority   `json:"priority"`
	Queue     string              `json:"queue"`
	ContactID string              `json:"contact_id"`
	AccountID string              `json:"account_id"`
	LinkedID  mailcase.CaseID     `json:"linked_id,omitempty"`
	CreatedAt time.Time           `json:"created_at"`
	// Mails lists the mails filed on the case, oldest first.
	Mails []mailJSON `json:"mails"`
	// Notes counts the notes on the case.
	Notes int `json:"notes"`
}

type mailJSON struct {
	MessageID string             `json:"message_id"`
	Direction mailcase.Direction `json:"direction"`
	From      string             `json:"from"`
	Subject   string             `json:"subject"`
	Date      string             `json:"date"`
	Auto      bool               `json:"auto"`
}

// recordedJSON is one mail filed on no case (on the sender's record:
// automatic mail, a sender the policy does not open cases for), in cases
// --recorded --json.
type recordedJSON struct {
	mailJSON
	ContactID string `json:"contact_id"`
	AccountID string `json:"account_id"`
}

// casesRecordedJSON is the output of cases --recorded --json.
type casesRecordedJSON struct {
	Cases    []caseJSON     `json:"cases"`
	Recorded []recordedJSON `json:"recorded"`
}

func runCases(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("cases", "[--json] [--recorded] [--store URL] [--status S] [--queue Q] [--limit N]", stderr)
	asJSON := fset.Bool("json", false, "print one JSON array of cases instead of text "+
		`(with --recorded an object {"cases": [...], "recorded": [...]})`)
	withRecorded := fset.Bool("recorded", false, "also list the mail recorded on no case (filed on the sender's record)")
	storeURL := fset.String("store", fileStoreURL(), "store URL (mem:// is the in-memory store)")
	status := fset.String("status", "", "only cases with this status (new, open, in_progress, closed, cancelled)")
	queue := fset.String("queue", "", "only cases in this queue")
	limit := fset.Int("limit", 0, "only the N newest cases, listed oldest first (0: all)")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("cases takes no arguments (got %q)", pos)
	}
	if *limit < 0 {
		return usageError("--limit must not be negative")
	}
	url := *storeURL
	if url == "" {
		url = fileStoreURL()
	}
	store, err := openExistingStore(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()
	list, err := listCases(ctx, store, &mailcase.ListOptions{
		Limit: *limit, Status: mailcase.CaseStatus(*status), Queue: *queue,
	})
	if errors.Is(err, mailcase.ErrUnimplemented) {
		return fmt.Errorf("store %s cannot list its cases", redactURL(url))
	}
	if err != nil {
		return err
	}
	recorded, err := listRecorded(ctx, store)
	if err != nil {
		return err
	}
	if *asJSON {
		if *withRecorded {
			return writeJSON(stdout, casesRecordedJSON{Cases: list, Recorded: recorded})
		}
		if len(recorded) > 0 {
			fmt.Fprintf(stderr, "note: %d mails recorded on no case are not in this list; --recorded includes them\n", len(recorded))
		}
		return writeJSON(stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "no cases in %s\n", redactURL(url))
		if isMemURL(url) {
			fmt.Fprintln(stdout, "(mem:// is an in-memory store: it is empty in every new command; use a persistent --store)")
		}
	} else {
		printCases(stdout, list, nil)
	}
	switch {
	case len(recorded) == 0:
	case *withRecorded:
		fmt.Fprintf(stdout, "  recorded on no case (%d mails, filed on the sender's record)\n", len(recorded))
		for _, r := range recorded {
			who := r.ContactID
			if who == "" {
				who = "no contact"
			} else {
				who = "contact " + who
			}
			fmt.Fprintf(stdout, "      <- %s  from %s, %s\n", clean(r.MessageID), clean(orDash(r.From)), clean(who))
		}
	default:
		fmt.Fprintf(stdout, "(%d mails recorded on no case: --recorded lists them)\n", len(recorded))
	}
	return nil
}

// listRecorded returns the mails filed on no case, oldest first; none when
// the store cannot list them.
func listRecorded(ctx context.Context, store *mailcase.Store) ([]recordedJSON, error) {
	ins, err := store.ListInteractions(ctx, "")
	if errors.Is(err, mailcase.ErrUnimplemented) || errors.Is(err, mailcase.ErrNotFound) {
		return []recordedJSON{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the mails recorded on no case: %w", err)
	}
	out := []recordedJSON{}
	for _, in := range ins {
		if in.Email == nil {
			continue
		}
		// The summary a mail filed on a case leaves on its sender's
		// record (the sender is not the case's contact) is under a key
		// filed on that case: the mail is on the case, not recorded.
		if p, ok, err := store.LookupProcessed(ctx, in.Email.IdempotencyKey); err != nil {
			return nil, fmt.Errorf("list the mails recorded on no case: %w", err)
		} else if ok && p.CaseID != "" {
			continue
		}
		out = append(out, recordedJSON{mailJSON: newMailJSON(in.Email), ContactID: in.ContactID, AccountID: in.AccountID})
	}
	return out, nil
}

// newMailJSON returns the listing of mail e.
func newMailJSON(e *mailcase.Email) mailJSON {
	mj := mailJSON{MessageID: e.MessageID, Direction: e.Direction, From: e.From.Email, Subject: e.Subject, Auto: e.Auto}
	if !e.Date.IsZero() {
		mj.Date = e.Date.Format(time.RFC3339)
	}
	return mj
}

// listCases returns the cases of store matching opts, oldest first, each
// with the mails filed on it.
func listCases(ctx context.Context, store *mailcase.Store, opts *mailcase.ListOptions) ([]caseJSON, error) {
	cases, err := store.ListCases(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	slices.Reverse(cases) // ListCases is newest first
	out := make([]caseJSON, 0, len(cases))
	for _, c := range cases {
		ins, err := store.ListInteractions(ctx, c.ID)
		if err != nil {
			return nil, fmt.Errorf("list the mails of case %s: %w", c.Number, err)
		}
		cj := caseJSON{
			ID: c.ID, Number: c.Number, Subject: c.Subject, Status: c.Status, Priority: c.Priority,
			Queue: c.Queue, ContactID: c.ContactID, AccountID: c.AccountID, LinkedID: c.LinkedID,
			CreatedAt: c.CreatedAt, Mails: []mailJSON{},
		}
		for _, in := range ins {
			switch {
			case in.Email != nil:
				cj.Mails = append(cj.Mails, newMailJSON(in.Email))
			case in.Note != nil || in.Kind == mailcase.KindNote:
				cj.Notes++
			}
		}
		out = append(out, cj)
	}
	return out, nil
}

// printCases prints cases readably, one block per case; nm names the
// contacts and accounts it knows.
func printCases(w io.Writer, list []caseJSON, nm names) {
	for _, c := range list {
		fmt.Fprintf(w, "  case %s  %-11s queue %-10s %s\n", clean(orDash(c.Number)), clean(string(c.Status)), clean(orDash(c.Queue)), clean(c.Subject))
		var who []string
		if c.ContactID != "" {
			who = append(who, "contact "+nm.of(c.ContactID))
		}
		if c.AccountID != "" {
			who = append(who, "account "+nm.of(c.AccountID))
		}
		if c.LinkedID != "" {
			who = append(who, "linked to "+string(c.LinkedID))
		}
		if c.Priority != "" {
			who = append(who, "priority "+string(c.Priority))
		}
		if c.Notes > 0 {
			who = append(who, fmt.Sprintf("%d notes", c.Notes))
		}
		if len(who) > 0 {
			fmt.Fprintf(w, "      %s\n", clean(strings.Join(who, ", ")))
		}
		for _, m := range c.Mails {
			dir := "<-"
			if m.Direction == mailcase.Outbound {
				dir = "->"
			}
			fmt.Fprintf(w, "      %s %s  from %s\n", dir, clean(m.MessageID), clean(orDash(m.From)))
		}
	}
}
