package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"
)

// routeResultJSON is one mail of route --json.
type routeResultJSON struct {
	File  string          `json:"file"`
	From  string          `json:"from,omitempty"`
	Route *mailcase.Route `json:"route,omitempty"`
	Error string          `json:"error,omitempty"`
}

// runRoute shows the decisions of a rules file for a set of mails, each
// routed as if it opened a new case: senders are matched in the store (for
// customer rules), threading is not evaluated, nothing is written.
func runRoute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("route", "--rules FILE [--json] [--store URL] MAIL|DIR...", stderr)
	rules := fset.String("rules", "", "routing rules file, YAML or JSON")
	asJSON := fset.Bool("json", false, "print a JSON array instead of text")
	storeURL := fset.String("store", "", "store to match senders in, for customer rules; nothing is written "+
		"(default "+defaultStoreURL()+"; an in-memory store is seeded with the demo directory)")
	mbAddr := fset.String("mailbox-address", demoMailbox().Address, "routing address of the mailbox")
	defQueue := fset.String("default-queue", demoMailbox().DefaultQueue, "default queue of the mailbox")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if *rules == "" {
		fset.Usage()
		return usageError("route needs --rules FILE")
	}
	if len(pos) == 0 {
		fset.Usage()
		return usageError("route needs at least one mail file or directory")
	}
	files, err := mailFiles(pos)
	if err != nil {
		return err
	}

	url := *storeURL
	if url == "" {
		url = defaultStoreURL()
	}
	store, err := openStore(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()
	if isMemURL(url) {
		if _, err := seedDemoDirectory(ctx, store); err != nil {
			return err
		}
	}
	logger := commandLogger(fset, stderr)
	router, err := routing.LoadFile(*rules, &routing.Options{Cases: store, Logger: logger})
	if err != nil {
		return err
	}
	senders := mailcase.NewStoreSenderMatcher(store, nil)
	mb := demoMailbox()
	mb.Address, mb.DefaultQueue = mailcase.NormalizeAddress(*mbAddr), *defQueue

	var results []routeResultJSON
	failed := 0
	for _, f := range files {
		res := routeResultJSON{File: f}
		r, from, err := routeFile(ctx, router, senders, &mb, f)
		res.From = from
		if err != nil {
			res.Error = err.Error()
			failed++
		} else {
			res.Route = &r
		}
		results = append(results, res)
	}
	if *asJSON {
		if results == nil {
			results = []routeResultJSON{}
		}
		if err := writeJSON(stdout, results); err != nil {
			return err
		}
	} else {
		printRoutes(stdout, results)
	}
	if failed > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d of %d mails could not be routed", failed, len(files))}
	}
	return nil
}

// routeFile routes one mail file as a mail opening a new case.
func routeFile(ctx context.Context, router *routing.Router, senders mailcase.SenderMatcher, mb *mailcase.Mailbox, file string) (mailcase.Route, string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return mailcase.Route{}, "", fmt.Errorf("read mail: %w", err)
	}
	m, err := mailcase.ParseMessage(raw, nil)
	if err != nil {
		return mailcase.Route{}, "", fmt.Errorf("parse: %w", err)
	}
	d := &mailcase.Delivery{Mailbox: mb, Message: m, Thread: mailcase.ThreadDecision{Action: mailcase.ThreadNew}}
	if m.From.Email != "" {
		if d.Sender, err = senders.MatchSender(ctx, m.From); err != nil {
			return mailcase.Route{}, m.From.Email, fmt.Errorf("match sender: %w", err)
		}
	}
	r, err := router.Route(ctx, d)
	return r, m.From.Email, err
}

// mailFiles expands the arguments: files as given, directories to their
// .eml files in name order.
func mailFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(a, "*.eml"))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("%s: no .eml files", a)
		}
		sort.Strings(matches)
		out = append(out, matches...)
	}
	return out, nil
}

func printRoutes(w io.Writer, results []routeResultJSON) {
	counts := map[string]int{}
	for i, res := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, res.File)
		if res.From != "" {
			field(w, "from", res.From)
		}
		if res.Error != "" {
			field(w, "error", res.Error)
			continue
		}
		r := res.Route
		counts[r.Queue]++
		field(w, "queue", r.Queue+suffix(" by ", r.Rule))
		if r.Priority != "" {
			field(w, "priority", string(r.Priority))
		}
		if r.Origin != "" {
			field(w, "origin", r.Origin)
		}
		if r.Category != "" {
			field(w, "category", r.Category)
		}
		printScoresFired(w, r)
		if r.Reason != "" {
			field(w, "reason", r.Reason)
		}
	}
	queues := make([]string, 0, len(counts))
	for q := range counts {
		queues = append(queues, q)
	}
	sort.Strings(queues)
	parts := make([]string, len(queues))
	for i, q := range queues {
		parts[i] = fmt.Sprintf("%s %d", q, counts[q])
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "\nqueues: %s\n", strings.Join(parts, ", "))
	}
}
