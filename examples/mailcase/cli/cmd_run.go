package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/mailcase/scheduler"
)

// runRun polls every mailbox of the configuration at its interval until
// SIGTERM/SIGINT, then finishes the mail in flight and prints the
// statistics as JSON on stdout.
func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "--config FILE [--once]", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	once := fs.Bool("once", false, "read every mailbox once, then exit")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *path == "" || len(pos) > 0 {
		fs.Usage()
		return usageError("run needs --config FILE and no argument")
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	log := commandLogger(fs, stderr)
	store, err := openConfigStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	filing, err := wireFiling(ctx, cfg, store, log, true)
	if err != nil {
		return err
	}
	defer filing.Close()
	ev := filing.eventWiring()
	alerter, err := cfg.slaAlerter(store, log, ev.onEvent())
	if err != nil {
		return err
	}

	sched := scheduler.New(&scheduler.Options{Logger: log})
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			if err := c.Close(); err != nil {
				log.Warn("close source", "err", err)
			}
		}
	}()
	type job struct {
		p   *mailcase.Pipeline
		src *lazySource
	}
	var jobs []job
	for i := range cfg.Mailboxes {
		mb := &cfg.Mailboxes[i]
		if *once {
			// One pass: an IMAP source reads what is there and ends its
			// run instead of waiting for new mail with IDLE.
			m := *mb
			m.Source.Watch = false
			mb = &m
		}
		src, err := mb.source(store, log)
		if err != nil {
			return err
		}
		if src == nil {
			continue // pipe/LMTP only
		}
		closers = append(closers, src)
		p, err := mb.pipeline(store, log, filing)
		if err != nil {
			return err
		}
		defer p.Close()
		if err := sched.Add(scheduler.Job{Name: mb.Name, Source: src, Pipeline: p.Pipeline, Interval: mb.Interval, Timeout: mb.Timeout}); err != nil {
			return err
		}
		jobs = append(jobs, job{p: p.Pipeline, src: src})
	}
	if len(jobs) == 0 {
		return errors.New("no mailbox has a source to read")
	}
	deliverers, senders, err := newDeliverers(store, &cfg.Outgoing, log, ev.onEvent())
	closers = append(closers, senders...)
	if err != nil {
		return err
	}
	if *once {
		err := sched.RunOnce(ctx)
		if alerter != nil { // one pass of the service-level alerts
			if _, aerr := alerter.RunOnce(ctx); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
		// One pass of the outbox too: what this pass queued is sent.
		for _, d := range deliverers {
			if _, derr := d.DeliverDue(ctx); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		if ev != nil { // and one pass of the event deliveries
			if _, derr := ev.deliverers[0].RunOnce(ctx); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		printStats(stdout, sched, log)
		return err
	}
	var wg sync.WaitGroup
	for _, d := range deliverers {
		wg.Go(func() { _ = d.Run(ctx) })
	}
	if alerter != nil {
		wg.Go(func() { _ = alerter.Run(ctx) })
	}
	if ev != nil {
		for _, d := range ev.deliverers {
			wg.Go(func() { _ = d.Run(ctx) })
		}
	}
	log.Info("mailcase run started", "mailboxes", len(jobs), "senders", len(deliverers), "pid", os.Getpid())
	err = sched.Run(ctx)
	wg.Wait() // the deliverers stop with ctx
	if err != nil {
		return err
	}
	printStats(stdout, sched, log)
	return nil
}

// newDeliverers returns the outbox deliverers of the outgoing section:
// none without an outgoing server (queued mail then waits), else
// outgoing.senders of them, each with its own SMTP connection.
func newDeliverers(store *mailcase.Store, o *outgoingConfig, log *slog.Logger, onEvent func(context.Context, string, mailcase.CaseID, map[string]any)) ([]*outbox.Deliverer, []io.Closer, error) {
	if o.Addr == "" || !store.CanOutbox() {
		return nil, nil, nil
	}
	n := max(o.Senders, 1)
	host, _ := os.Hostname()
	var out []*outbox.Deliverer
	var closers []io.Closer
	for i := range n {
		tr, err := o.sender()
		if err != nil {
			return nil, closers, err
		}
		closers = append(closers, tr)
		d, err := outbox.NewDeliverer(store, tr, &outbox.DelivererOptions{Logger: log, OnEvent: onEvent,
			Holder: host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(i)})
		if err != nil {
			return nil, closers, err
		}
		out = append(out, d)
	}
	return out, closers, nil
}

func printStats(w io.Writer, s *scheduler.Scheduler, log *slog.Logger) {
	st := s.Stats()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		log.Error("statistics", "err", err)
		return
	}
	fmt.Fprintf(w, "%s\n", b)
}
