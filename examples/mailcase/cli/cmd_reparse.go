package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/emailcrm/emailcrm/mailcase"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// reparseJSON is one element of reparse --json. The field names are stable.
type reparseJSON struct {
	Key       string   `json:"key"`
	MessageID string   `json:"message_id"`
	CaseID    string   `json:"case_id,omitempty"`
	Changed   []string `json:"changed"`
	Written   bool     `json:"written"`
	Skipped   string   `json:"skipped,omitempty"`
	TextLen   [2]int   `json:"text_len"` // before, after
}

func runReparse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("reparse", "[--store URL] [--dry-run] [--json] [--case N]... [--message-id ID]... [--key KEY]...", stderr)
	storeURL := fset.String("store", fileStoreURL(), "store URL (a store that keeps raw mail: sqlstore by default)")
	dryRun := fset.Bool("dry-run", false, "show what would change without writing")
	asJSON := fset.Bool("json", false, "print one JSON array instead of text")
	var cases, msgIDs, keys listFlag
	fset.Var(&cases, "case", "only the mails filed on case number `N` (repeatable)")
	fset.Var(&msgIDs, "message-id", "only the mails with Message-ID `ID` (repeatable)")
	fset.Var(&keys, "key", "only the mail with idempotency key `KEY`, mailbox and Message-ID joined by \"\\x00\" (repeatable)")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("reparse takes no arguments (got %q); select mails with --case, --message-id or --key", pos)
	}
	store, err := openStore(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.RawKeys(ctx, "", 1); errors.Is(err, mailcase.ErrUnimplemented) {
		return fmt.Errorf("store %s keeps no raw mail: nothing can be re-parsed", redactURL(*storeURL))
	}
	selected, err := reparseKeys(ctx, store, cases, msgIDs, keys)
	if err != nil {
		return err
	}
	var out []reparseJSON
	var changed, unchanged, skipped int
	for _, key := range selected {
		r, err := store.Reparse(ctx, key, &mailcase.ReparseOptions{DryRun: *dryRun})
		if err != nil {
			return fmt.Errorf("reparse %s: %w", printableKey(key), err)
		}
		j := reparseJSON{Key: key, MessageID: r.MessageID, Changed: r.Changed, Written: r.Written, Skipped: r.Skipped,
			TextLen: [2]int{len(r.Old.Text), len(r.New.Text)}}
		if j.Changed == nil {
			j.Changed = []string{}
		}
		if p, ok, err := store.LookupProcessed(ctx, key); err == nil && ok {
			j.CaseID = string(p.CaseID)
		}
		out = append(out, j)
		switch {
		case r.Skipped != "":
			skipped++
		case len(r.Changed) == 0:
			unchanged++
		default:
			changed++
		}
		if !*asJSON {
			printReparse(stdout, j, r)
		}
	}
	if *asJSON {
		if out == nil {
			out = []reparseJSON{}
		}
		return writeJSON(stdout, out)
	}
	verb := "updated"
	if *dryRun {
		verb = "would update (dry run, nothing written)"
	}
	fmt.Fprintf(stdout, "re-parsed %d mails: %d %s, %d unchanged, %d skipped\n", len(selected), changed, verb, unchanged, skipped)
	return nil
}

// reparseKeys returns the idempotency keys selected: every key with a raw
// mail when nothing is selected, else the mails of the cases, the mails
// with the Message-IDs and the keys given, each once.
func reparseKeys(ctx context.Context, store *mailcase.Store, cases, msgIDs, keys []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if len(cases)+len(msgIDs)+len(keys) == 0 {
		for after := ""; ; {
			page, err := store.RawKeys(ctx, after, 500)
			if err != nil {
				return nil, fmt.Errorf("list the kept raw mails: %w", err)
			}
			for _, k := range page {
				add(k)
			}
			if len(page) < 500 {
				return out, nil
			}
			after = page[len(page)-1]
		}
	}
	for _, n := range cases {
		c, ok, err := store.FindCaseByNumber(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("find case %s: %w", reparseSafe(n), err)
		}
		if !ok {
			return nil, usageError("no case number %s", reparseSafe(n))
		}
		ins, err := store.ListInteractions(ctx, c.ID)
		if err != nil {
			return nil, fmt.Errorf("list the mails of case %s: %w", c.Number, err)
		}
		for _, in := range ins {
			if in.Email != nil {
				add(in.Email.IdempotencyKey)
			}
		}
	}
	for _, id := range msgIDs {
		want := mailcase.NormalizeMessageID(id)
		if want == "" {
			return nil, usageError("invalid Message-ID %s", reparseSafe(id))
		}
		// The mails with that Message-ID: on the case that holds it and
		// on no case.
		var found bool
		lists := []mailcase.CaseID{""}
		if c, ok, err := store.LookupThread(ctx, want); err != nil {
			return nil, fmt.Errorf("look up Message-ID %s: %w", reparseSafe(want), err)
		} else if ok {
			lists = append(lists, c.ID)
		}
		for _, cid := range lists {
			ins, err := store.ListInteractions(ctx, cid)
			if err != nil {
				return nil, fmt.Errorf("list the mails with Message-ID %s: %w", reparseSafe(want), err)
			}
			for _, in := range ins {
				if in.Email != nil && in.Email.MessageID == want {
					add(in.Email.IdempotencyKey)
					found = true
				}
			}
		}
		if !found {
			return nil, usageError("no mail with Message-ID %s is filed", reparseSafe(want))
		}
	}
	for _, k := range keys {
		add(strings.ReplaceAll(k, `\x00`, "\x00"))
	}
	return out, nil
}

func printReparse(w io.Writer, j reparseJSON, r mailcase.ReparseResult) {
	where := "no case"
	if j.CaseID != "" {
		where = "case " + reparseSafe(j.CaseID)
	}
	head := fmt.Sprintf("<%s> (%s)", reparseSafe(r.MessageID), where)
	switch {
	case r.Skipped != "":
		fmt.Fprintf(w, "%s: skipped, %s\n", head, reparseSafe(r.Skipped))
	case len(r.Changed) == 0:
		fmt.Fprintf(w, "%s: unchanged\n", head)
	default:
		state := "would change"
		if r.Written {
			state = "updated"
		}
		fmt.Fprintf(w, "%s: %s %s\n", head, state, strings.Join(r.Changed, ", "))
		for _, f := range r.Changed {
			switch f {
			case "subject":
				fmt.Fprintf(w, "  subject: %q -> %q\n", reparseSafe(r.Old.Subject), reparseSafe(r.New.Subject))
			case "text":
				fmt.Fprintf(w, "  text: %d -> %d bytes\n", len(r.Old.Text), len(r.New.Text))
			case "reply_text":
				fmt.Fprintf(w, "  reply text: %d -> %d bytes\n", len(r.Old.ReplyText), len(r.New.ReplyText))
			case "html":
				fmt.Fprintf(w, "  html: %d -> %d bytes\n", len(r.Old.HTML), len(r.New.HTML))
			case "attachments":
				fmt.Fprintf(w, "  attachments: %d -> %d\n", len(r.Old.Attachments), len(r.New.Attachments))
			case "problems":
				fmt.Fprintf(w, "  problems: %d -> %d\n", len(r.Old.Problems), len(r.New.Problems))
				for _, p := range r.New.Problems {
					fmt.Fprintf(w, "    %s\n", reparseSafe(p))
				}
			}
		}
	}
}

// reparseSafe escapes control characters (terminal escapes in hostile mail)
// in a value printed for a person.
func reparseSafe(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// printableKey shows an idempotency key (mailbox NUL Message-ID).
func printableKey(k string) string { return reparseSafe(k) }
