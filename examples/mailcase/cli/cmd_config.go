package cli

import (
	"context"
	"fmt"
	"io"
)

// runConfigCmd is "config check FILE": it loads FILE as run, pipe, lmtp,
// import and explain do and reports the first mistake as
// "config FILE:LINE: ..." (exit 1), or that the file is valid. Nothing
// connects and no secret is read.
func runConfigCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config", "check FILE", stderr)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "check" {
		fs.Usage()
		return usageError("config needs the subcommand check and one FILE")
	}
	cfg, err := loadConfig(pos[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d mailboxes)\n", clean(pos[1]), len(cfg.Mailboxes))
	// Where each role of the store comes from: the store's URL as written
	// (its ${VAR} references unresolved: no secret is read).
	local, err := cfg.localStoreURL()
	if err != nil {
		return usageError("config %s: %w", clean(pos[1]), err)
	}
	main := cfg.Store
	if main == "" {
		main = defaultStoreURL()
	}
	if main, err = normalizeStoreURL(main); err != nil {
		return usageError("config %s: store: %w", clean(pos[1]), err)
	}
	for _, line := range storeRoles(main, local) {
		fmt.Fprintf(stdout, "  %s\n", clean(line))
	}
	if cfg.Worklists.AutoAccept {
		fmt.Fprintln(stdout, "  worklists: auto-accept (an agent who opens an unowned item of their queue becomes its owner)")
	}
	return nil
}
