package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/emailcrm/emailcrm/mailcase"
)

// sendmail exit codes (sysexits.h) understood by MTAs.
const (
	exDataErr  = 65 // EX_DATAERR: the mail can never be filed (bounced)
	exTempFail = 75 // EX_TEMPFAIL: try again later (the MTA keeps the mail)
)

// pipeMaxBytes bounds the mail read from stdin; a larger mail is refused
// with EX_DATAERR (an MTA's own size limit is normally far lower).
const pipeMaxBytes = 256 << 20

// runPipe files one mail read from stdin (procmail, .forward, Postfix
// pipe) and exits with a sendmail code: 0 filed, 75 temporary failure (the
// MTA retries; also for mail the store can neither file nor quarantine),
// 65 only for mail that can never be filed and is kept in the store's
// quarantine, or that the mailbox policy refuses (see pipeResult).
func runPipe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return pipe(ctx, args, os.Stdin, stdout, stderr)
}

func pipe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("pipe", "--config FILE [--mailbox NAME] [-f SENDER] < mail", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	name := fs.String("mailbox", "", "mailbox to file into (default: the only one of the configuration)")
	verbose := fs.Bool("v", false, "print the outcome on stdout")
	sender := fs.String("f", "", "envelope sender, added as Return-Path when the mail has none (default: $SENDER); <>, MAILER-DAEMON or #@[] is the null sender of bounces")
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		// A broken command line in an MTA's configuration: keep the mail.
		return &exitError{code: exTempFail, err: err, reported: true}
	}
	if *path == "" || len(pos) > 0 {
		fs.Usage()
		return withExitCode(exTempFail, errors.New("pipe needs --config FILE and no argument"))
	}
	// Every failure before the outcome is known is temporary: the MTA
	// keeps the mail until the configuration or the store is fixed.
	tempfail := func(err error) error { return withExitCode(exTempFail, err) }
	cfg, err := loadConfig(*path)
	if err != nil {
		return tempfail(err)
	}
	mb, err := cfg.mailbox(*name)
	if err != nil {
		return tempfail(err)
	}
	raw, err := io.ReadAll(io.LimitReader(stdin, pipeMaxBytes+1))
	if err != nil {
		return tempfail(fmt.Errorf("read stdin: %w", err))
	}
	if len(raw) > pipeMaxBytes {
		return withExitCode(exDataErr, fmt.Errorf("mail over %d bytes refused", pipeMaxBytes))
	}
	if len(raw) == 0 {
		return withExitCode(exDataErr, errors.New("empty input: no mail to file"))
	}
	senderSet := false
	fs.Visit(func(f *flag.Flag) { senderSet = senderSet || f.Name == "f" })
	if from, ok := envelopeSender(*sender, senderSet); ok {
		raw = withEnvelopeSender(raw, from)
	}
	log := commandLogger(fs, stderr)
	store, err := openConfigStore(ctx, cfg)
	if err != nil {
		return tempfail(err)
	}
	defer store.Close()
	// The mail's lifecycle events go to the event log (run delivers them)
	// and its service-level clocks start, as under run.
	filing, err := wireFiling(ctx, cfg, store, log, false)
	if err != nil {
		return tempfail(err)
	}
	defer filing.Close()
	p, err := mb.pipeline(store, log, filing)
	if err != nil {
		return tempfail(err)
	}
	defer p.Close()
	res, err := p.Process(ctx, raw, &mailcase.ProcessOptions{Attempt: 1})
	if res == nil {
		return tempfail(fmt.Errorf("not filed: %w", err))
	}
	if res.Outcome.Disposition == mailcase.Done && *verbose {
		o := res.Outcome
		fmt.Fprintf(stdout, "%s %s %s\n", o.Action, o.CaseNumber, o.CaseID)
	}
	return pipeResult(ctx, log, res, err)
}

// pipeResult maps the outcome of Process to the pipe's exit: nil (0) for
// Done; EX_TEMPFAIL for Retry, whatever the cause (a transient failure
// still failing after the pipeline's attempts, a store outage, or a
// permanent failure the store cannot quarantine: the MTA keeps the mail and
// delivers it again later); EX_DATAERR only for Quarantine, which the
// pipeline gives only when the store kept the mail in its quarantine or
// the mailbox policy refused it (ActionRejected). The message, which an
// MTA may copy into a bounce, carries no internal error text: the details
// are logged.
func pipeResult(ctx context.Context, log *slog.Logger, res *mailcase.Result, err error) error {
	o := &res.Outcome
	switch o.Disposition {
	case mailcase.Done:
		return nil
	case mailcase.Quarantine:
		if o.Action == mailcase.ActionRejected {
			log.WarnContext(ctx, "mail refused by the mailbox policy", "mailbox", o.Mailbox, "reason", o.Error)
			return withExitCode(exDataErr, errors.New("mail refused by the mailbox policy"))
		}
		log.WarnContext(ctx, "mail cannot be filed; kept in the quarantine", "mailbox", o.Mailbox, "reason", o.Error)
		return withExitCode(exDataErr, errors.New("mail cannot be filed; quarantined (kept in the store)"))
	}
	log.WarnContext(ctx, "mail not filed; left to the MTA for a later delivery", "mailbox", o.Mailbox,
		"code", mailcase.Code(err).String(), "reason", o.Error)
	return withExitCode(exTempFail, errors.New("temporary failure, the MTA will retry"))
}
