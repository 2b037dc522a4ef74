package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand. run receives the arguments after the command
// name; it writes its results to stdout and diagnostics to stderr, and
// returns an error for a non-zero exit (see exitCode).
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands returns the subcommands, alphabetically. Add one line per command.
func commands() []command {
	return []command{
		{name: "cases", summary: "list the cases in a store with the mails filed on them", run: runCases},
		{name: "demo", summary: "run the pipeline on built-in sample mails and show what happened", run: runDemo},
		{name: "explain", summary: "parse one mail and print every decision (writes nothing)", run: runExplain},
		{name: "import", summary: "file a backlog (directory, mbox or Maildir) into a store, sending nothing", run: runImport},
		{name: "lmtp", summary: "serve LMTP: answer 250 per recipient once the mail is filed", run: runLMTP},
		{name: "pipe", summary: "file one mail from stdin for an MTA (exit 0, 75 retry, 65 never)", run: runPipe},
		{name: "reparse", summary: "parse the kept raw mail of filed mails again and update what changed", run: runReparse},
		{name: "route", summary: "show the routing decisions of a rules file for a set of mails", run: runRoute},
		{name: "run", summary: "poll the mailboxes of a configuration file at their intervals", run: runRun},
		{name: "train", summary: "train the routing classifier from labelled mail and write its model", run: runTrain},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			if c, ok := findCommand(rest[0]); ok {
				return exitCode(c.run(ctx, []string{"-h"}, stdout, stderr))
			}
		}
		usage(stdout)
		return exitOK
	}
	c, ok := findCommand(name)
	if !ok {
		fmt.Fprintf(stderr, "mailcase: unknown command %q\n\n", name)
		usage(stderr)
		return exitUsage
	}
	err := c.run(ctx, rest, stdout, stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		var ee *exitError
		if !errors.As(err, &ee) || !ee.reported {
			fmt.Fprintf(stderr, "mailcase %s: %v\n", name, err)
		}
	}
	return exitCode(err)
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "mailcase is the example command line of the emailcrm SDK.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: mailcase <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "mailcase help <command>" for the flags of a command.`)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// exitError carries a specific exit code. reported means the command already
// told the user (run prints nothing more).
type exitError struct {
	code     int
	err      error
	reported bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withExitCode returns err with the exit code code.
func withExitCode(code int, err error) error { return &exitError{code: code, err: err} }

// usageError returns an error for a usage mistake (exit code 2).
func usageError(format string, args ...any) error {
	return withExitCode(exitUsage, fmt.Errorf(format, args...))
}

// exitCode maps a command's error to the process exit code.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// newFlagSet returns a FlagSet for command name whose usage text shows
// synopsis (the arguments after the flags) and the flags.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mailcase "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mailcase %s %s\n", name, synopsis)
		summary := ""
		if c, ok := findCommand(name); ok {
			summary = c.summary
		}
		if summary != "" {
			fmt.Fprintf(stderr, "\n%s.\n", strings.ToUpper(summary[:1])+summary[1:])
		}
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args with fs, allowing flags after positional arguments
// ("explain mail.eml --json"), and returns the positional arguments. Errors
// are usage errors (already reported by fs) or flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: exitUsage, err: err, reported: true}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
		if len(args) == 0 {
			return pos, nil
		}
	}
}

// newLogger returns the command's logger: JSON on stderr, Warn and above
// unless MAILCASE_LOG_LEVEL says otherwise (debug, info, warn, error).
func newLogger(stderr io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if v := os.Getenv("MAILCASE_LOG_LEVEL"); v != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(v)); err == nil {
			level = l
		}
	}
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
}
