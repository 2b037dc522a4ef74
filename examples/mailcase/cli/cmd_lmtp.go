package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/emailcrm/emailcrm/adapters/lmtpsource"
)

// runLMTP serves LMTP: each recipient gets 250 only once the mail is filed
// in its mailbox, 451 on a transient failure, 554 when the mail can never
// be filed.
func runLMTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("lmtp", "--config FILE [--listen ADDR]", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	listen := fs.String("listen", "", "address to listen on (default: lmtp.listen of the configuration)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *path == "" || len(pos) > 0 {
		fs.Usage()
		return usageError("lmtp needs --config FILE and no argument")
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	addr := *listen
	if addr == "" {
		addr = cfg.LMTP.Listen
	}
	if addr == "" {
		return usageError("no listen address: pass --listen or set lmtp.listen")
	}
	log := commandLogger(fs, stderr)
	store, err := openConfigStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	// The mails' lifecycle events go to the event log (run delivers them)
	// and their service-level clocks start, as under run.
	filing, err := wireFiling(ctx, cfg, store, log, false)
	if err != nil {
		return err
	}
	defer filing.Close()

	mailboxes := map[string]lmtpsource.Processor{}
	opts := &lmtpsource.Options{
		MaxConnections:     cfg.LMTP.MaxConnections,
		MaxMessageBytes:    cfg.LMTP.MaxMessageBytes,
		ReadTimeout:        cfg.LMTP.ReadTimeout,
		IdleTimeout:        cfg.LMTP.IdleTimeout,
		MaxIdleCommands:    cfg.LMTP.MaxIdleCommands,
		MaxSessionDuration: cfg.LMTP.MaxSession,
		Logger:             log,
	}
	for i := range cfg.Mailboxes {
		mb := &cfg.Mailboxes[i]
		rcpts := mb.Recipients
		if len(rcpts) == 0 && mb.Address != "" {
			rcpts = []string{mb.Address}
		}
		if len(rcpts) == 0 && cfg.LMTP.CatchAll != mb.Name {
			continue
		}
		p, err := mb.pipeline(store, log, filing)
		if err != nil {
			return err
		}
		defer p.Close()
		for _, r := range rcpts {
			mailboxes[r] = p
		}
		if cfg.LMTP.CatchAll == mb.Name {
			opts.CatchAll = p
		}
	}
	srv, err := lmtpsource.New(mailboxes, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "lmtp listening on %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Finish the deliveries in progress: their senders get their answers.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return <-errc
}
