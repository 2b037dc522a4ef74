package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/emailcrm/emailcrm/mailcase"
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
		p, err := mb.pipeline(store, log)
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
	if *once {
		err := sched.RunOnce(ctx)
		printStats(stdout, sched, log)
		return err
	}
	log.Info("mailcase run started", "mailboxes", len(jobs), "pid", os.Getpid())
	if err := sched.Run(ctx); err != nil {
		return err
	}
	printStats(stdout, sched, log)
	return nil
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
