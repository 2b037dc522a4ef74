package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
)

// deliveryJSON is one line of events deliveries --json. The field names
// are stable.
type deliveryJSON struct {
	Sink          string    `json:"sink"`
	EventID       string    `json:"event_id"`
	Seq           int64     `json:"seq"`
	Kind          string    `json:"kind"`
	CaseID        string    `json:"case_id,omitempty"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
}

// runEvents shows the event log of a store: tail prints events as JSON
// lines (the webhook envelope), deliveries their delivery to each sink.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "tail|deliveries [--store URL | --config FILE] [--follow] [--after SEQ] [--limit N] [--kind PATTERN] [--sink NAME] [--status S] [--json]"
	fset := newFlagSet("events", synopsis, stderr)
	storeURL := fset.String("store", fileStoreURL(), "store URL")
	cfgPath := fset.String("config", "", "configuration file: its store")
	follow := fset.Bool("follow", false, "tail: keep printing new events until interrupted")
	after := fset.Int64("after", -1, "tail: start after this sequence number (default: the last --limit events)")
	limit := fset.Int("limit", 20, "tail: print this many past events; deliveries: at most this many (0: all)")
	kind := fset.String("kind", "", "only events of this kind or pattern (case.*)")
	poll := fset.Duration("poll", time.Second, "tail --follow: how often to look for new events")
	sink := fset.String("sink", "", "deliveries: only deliveries to this sink (webhook:NAME, nats:NAME)")
	status := fset.String("status", "", "deliveries: only this status (pending, delivering, delivered, failed)")
	asJSON := fset.Bool("json", false, "deliveries: JSON instead of text")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "tail" && pos[0] != "deliveries") {
		fset.Usage()
		return usageError("events needs a subcommand: tail or deliveries")
	}
	switch driver.DeliveryStatus(*status) {
	case "", driver.DeliveryPending, driver.DeliveryDelivering, driver.DeliveryDelivered, driver.DeliveryFailed:
	default:
		return usageError("unknown delivery status %q", *status)
	}
	if *poll <= 0 {
		return usageError("--poll must be positive")
	}
	storeSet := false
	fset.Visit(func(f *flag.Flag) { storeSet = storeSet || f.Name == "store" })
	url := *storeURL
	if *cfgPath != "" && !storeSet {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		if url, err = cfg.storeURL(); err != nil {
			return err
		}
	}
	store, err := openExistingStore(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()
	if !store.CanEventLog() {
		return fmt.Errorf("store %s keeps no event log", redactURL(url))
	}
	var kinds []string
	if *kind != "" {
		kinds = []string{*kind}
	}
	if pos[0] == "deliveries" {
		return listDeliveries(ctx, store, stdout, &driver.DeliveryListOptions{Sink: *sink, Status: driver.DeliveryStatus(*status), Limit: max(*limit, 0)}, kinds, *asJSON)
	}
	return tailEvents(ctx, store, stdout, *after, *limit, kinds, *follow, *poll)
}

// tailEvents prints the events after the cursor (or the last limit ones)
// and, with follow, the new ones until ctx ends.
func tailEvents(ctx context.Context, store *mailcase.Store, w io.Writer, after int64, limit int, kinds []string, follow bool, poll time.Duration) error {
	if after < 0 {
		// The last limit events: find the end of the log.
		var last int64
		for {
			page, err := store.ReadEvents(ctx, last, 1000)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			last = page[len(page)-1].Seq
		}
		after = max(last-int64(max(limit, 0)), 0)
	}
	enc := json.NewEncoder(w)
	for {
		page, err := store.ReadEvents(ctx, after, 500)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for i := range page {
			after = page[i].Seq
			if !events.MatchKind(kinds, page[i].Kind) {
				continue
			}
			if err := enc.Encode(events.FromRecord(&page[i])); err != nil {
				return err
			}
		}
		if len(page) == 500 {
			continue
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

func listDeliveries(ctx context.Context, store *mailcase.Store, w io.Writer, o *driver.DeliveryListOptions, kinds []string, asJSON bool) error {
	ds, err := store.ListDeliveries(ctx, o)
	if err != nil {
		return fmt.Errorf("list the deliveries: %w", err)
	}
	out := []deliveryJSON{}
	for _, d := range ds {
		if !events.MatchKind(kinds, d.Event.Kind) {
			continue
		}
		out = append(out, deliveryJSON{Sink: d.Sink, EventID: d.Event.ID, Seq: d.Event.Seq, Kind: d.Event.Kind, CaseID: string(d.Event.CaseID),
			Status: string(d.Status), Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastError: d.LastError, DeliveredAt: d.DeliveredAt})
	}
	if asJSON {
		return writeJSON(w, out)
	}
	if len(out) == 0 {
		fmt.Fprintln(w, "no deliveries")
		return nil
	}
	for _, d := range out {
		line := fmt.Sprintf("%-8d %-22s %-20s %-10s attempts=%d", d.Seq, d.Kind, d.Sink, d.Status, d.Attempts)
		if d.CaseID != "" {
			line += " case=" + d.CaseID
		}
		if d.LastError != "" {
			line += " error=" + strings.ReplaceAll(d.LastError, "\n", " ")
		}
		fmt.Fprintln(w, line)
	}
	return nil
}
