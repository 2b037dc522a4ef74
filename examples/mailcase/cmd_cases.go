package main

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

func runCases(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("cases", "[--json] [--store URL] [--status S] [--queue Q] [--limit N]", stderr)
	asJSON := fset.Bool("json", false, "print one JSON array instead of text")
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
	if *asJSON {
		return writeJSON(stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "no cases in %s\n", redactURL(url))
		if isMemURL(url) {
			fmt.Fprintln(stdout, "(mem:// is an in-memory store: it is empty in every new command; use a persistent --store)")
		}
		return nil
	}
	printCases(stdout, list, nil)
	return nil
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
				e := in.Email
				mj := mailJSON{MessageID: e.MessageID, Direction: e.Direction, From: e.From.Email,
					Subject: e.Subject, Auto: e.Auto}
				if !e.Date.IsZero() {
					mj.Date = e.Date.Format(time.RFC3339)
				}
				cj.Mails = append(cj.Mails, mj)
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
