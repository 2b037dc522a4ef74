package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/sla/tracker"
)

// slaCaseJSON is one case in sla status --json. The field names are stable.
type slaCaseJSON struct {
	ID     mailcase.CaseID       `json:"id"`
	Number string                `json:"number"`
	Status mailcase.CaseStatus   `json:"status"`
	Queue  string                `json:"queue"`
	Timers []tracker.TimerStatus `json:"timers"`
}

// runSLA is `mailcase sla status [CASE]` and `mailcase sla run [--once]`.
func runSLA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sla", "status --config FILE [--json] [CASE] | run --config FILE [--once]", stderr)
	path := fs.String("config", "", "configuration file (YAML) with an sla section")
	asJSON := fs.Bool("json", false, "status: print JSON instead of text")
	once := fs.Bool("once", false, "run: claim and mail the due alerts once, then exit")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *path == "" || len(pos) == 0 || (pos[0] != "status" && pos[0] != "run") {
		fs.Usage()
		return usageError("sla needs status or run, and --config FILE")
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if !cfg.SLA.enabled() {
		return fmt.Errorf("config %s: no sla policies configured", *path)
	}
	log := commandLogger(fs, stderr)
	store, err := openConfigStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	switch pos[0] {
	case "run":
		if len(pos) > 1 {
			return usageError("sla run takes no argument")
		}
		// Alerts are recorded as lifecycle events (delivered by mailcase run).
		ev, err := cfg.Events.wire(ctx, store, log)
		if err != nil {
			return err
		}
		if ev != nil {
			defer ev.Close()
		}
		al, err := cfg.slaAlerter(store, log, ev.onEvent())
		if err != nil {
			return err
		}
		if !*once {
			log.Info("mailcase sla run started")
			return al.Run(ctx)
		}
		r, err := al.RunOnce(ctx)
		if err != nil {
			return err
		}
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	if len(pos) > 2 {
		return usageError("sla status takes at most one case")
	}
	tr, err := cfg.slaTracker(store, log)
	if err != nil {
		return err
	}
	var cases []mailcase.Case
	if len(pos) == 2 {
		c, ok, err := findCase(ctx, store, pos[1])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no case %q", pos[1])
		}
		cases = []mailcase.Case{c}
	} else {
		all, err := store.ListCases(ctx, &mailcase.ListOptions{})
		if err != nil {
			return err
		}
		for _, c := range all {
			if !c.Status.IsClosed() {
				cases = append(cases, c)
			}
		}
	}
	var out []slaCaseJSON
	for _, c := range cases {
		ts, err := tr.Status(ctx, c.ID)
		if err != nil {
			return err
		}
		if len(ts) == 0 && len(pos) < 2 {
			continue
		}
		out = append(out, slaCaseJSON{ID: c.ID, Number: c.Number, Status: c.Status, Queue: c.Queue, Timers: ts})
	}
	if *asJSON {
		if out == nil {
			out = []slaCaseJSON{}
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	for _, c := range out {
		fmt.Fprintf(stdout, "case %s (%s, queue %s)\n", c.Number, c.Status, orDash(c.Queue))
		for _, t := range c.Timers {
			fmt.Fprintf(stdout, "  %-7s %-14s %-10s %-10s elapsed %-9s due %s (%s)\n", t.Level, t.Kind, orDash(t.Scope), t.State,
				t.ElapsedNow.Round(time.Second), when(t.DueAt), t.Policy)
		}
	}
	return nil
}

// findCase finds a case by ID, then by number.
func findCase(ctx context.Context, store *mailcase.Store, ref string) (mailcase.Case, bool, error) {
	c, ok, err := store.GetCase(ctx, mailcase.CaseID(ref))
	if err != nil && mailcase.Code(err) != mailcase.InvalidArgument {
		return c, false, err
	}
	if ok {
		return c, true, nil
	}
	c, ok, err = store.FindCaseByNumber(ctx, ref)
	if err != nil && !errors.Is(err, mailcase.ErrNotFound) {
		return c, false, err
	}
	return c, ok, nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
