package cli

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
	// runStdin, if set, replaces run for a command reading stdin (pipe).
	runStdin func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// call runs the command.
func (c command) call(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if c.runStdin != nil {
		return c.runStdin(ctx, args, stdin, stdout, stderr)
	}
	return c.run(ctx, args, stdout, stderr)
}

// commands returns the subcommands, alphabetically. Add one line per command.
func commands() []command {
	return []command{
		{name: "cases", summary: "list the cases in a store with the mails filed on them", run: runCases},
		{name: "config", summary: "check a configuration file (config check FILE): every key and value, with its line", run: runConfigCmd},
		{name: "demo", summary: "run the pipeline on built-in sample mails and show what happened", run: runDemo},
		{name: "events", summary: "print the lifecycle events of a store (tail [--follow]) and their webhook deliveries", run: runEvents},
		{name: "explain", summary: "parse one mail and print every decision (writes nothing)", run: runExplain},
		{name: "import", summary: "file a backlog (directory, mbox or Maildir) into a store, sending nothing", run: runImport},
		{name: "lmtp", summary: "serve LMTP: answer 250 per recipient once the mail is filed", run: runLMTP},
		{name: "outbox", summary: "list, show, retry or cancel the outgoing mail of a store", run: runOutbox},
		{name: "pipe", summary: "file one mail from stdin for an MTA (exit 0, 75 retry, 65 never)", run: runPipe, runStdin: pipe},
		{name: "quarantine", summary: "list, show, re-process (retry) or delete the mail a store quarantined", run: runQuarantine},
		{name: "reparse", summary: "parse the kept raw mail of filed mails again and update what changed", run: runReparse},
		{name: "reply", summary: "queue an agent's answer on a case (Log Email) from a file or stdin", run: runReplyStdin, runStdin: runReply},
		{name: "route", summary: "show the routing decisions of a rules file for a set of mails", run: runRoute},
		{name: "run", summary: "poll the mailboxes of a configuration file at their intervals", run: runRun},
		{name: "sla", summary: "show the service-level clocks of cases (status) or run the alert process (run)", run: runSLA},
		{name: "train", summary: "train the routing classifier from labelled mail and write its model", run: runTrain},
		{name: "worklist", summary: "list work items; open, accept, release, reassign, reply to or close one as an agent", run: runWorklistStdin, runStdin: runWorklist},
	}
}

// Options are the standard streams of [Run]. The zero value (or nil) means
// the process's os.Stdin, os.Stdout and os.Stderr.
type Options struct {
	// Stdin is read by pipe; nil means os.Stdin.
	Stdin io.Reader
	// Stdout receives the results of a command; nil means os.Stdout.
	Stdout io.Writer
	// Stderr receives diagnostics and logs; nil means os.Stderr.
	Stderr io.Writer
}

// Main runs the command line args (the arguments after the program name,
// os.Args[1:]) on the process's standard streams and returns the exit
// code. It stops the command gracefully (run and lmtp finish the mail in
// flight) on SIGINT and SIGTERM, or when ctx is done. A program's main is
//
//	func main() { os.Exit(cli.Main(context.Background(), os.Args[1:])) }
//
// with blank imports of the store drivers it offers to --store. mem:// (the
// in-memory store, used by explain and route) is always registered.
func Main(ctx context.Context, args []string) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, nil)
}

// Run is [Main] without the signal handling, on the streams of opts (nil
// means the process's): tests and programs embedding the commands capture
// the output with it.
func Run(ctx context.Context, args []string, opts *Options) int {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	return dispatch(ctx, args, o.Stdin, o.Stdout, o.Stderr)
}

// run dispatches args to a command on the process's stdin and returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, args, os.Stdin, stdout, stderr)
}

// dispatch dispatches args to a command and returns the process exit code.
func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			if c, ok := findCommand(rest[0]); ok {
				// Help asked for is the output: stdout, exit 0.
				return exitCode(c.call(ctx, []string{"-h"}, stdin, stdout, stdout))
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
	err := c.call(ctx, rest, stdin, stdout, stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		var ee *exitError
		if !errors.As(err, &ee) || !ee.reported {
			fmt.Fprintf(stderr, "mailcase %s: %s\n", name, clean(err.Error()))
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
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
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
	addLogFlags(fs)
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

// Log flags, registered on every command's FlagSet by newFlagSet.
const (
	flagLogLevel  = "log-level"
	flagLogFormat = "log-format"
)

// levelFlag is the value of --log-level.
type levelFlag struct {
	level slog.Level
	set   bool
}

func (f *levelFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strings.ToLower(f.level.String())
}

func (f *levelFlag) Set(s string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("%q is not a level (debug, info, warn or error)", s)
	}
	f.level, f.set = l, true
	return nil
}

// formatFlag is the value of --log-format.
type formatFlag string

func (f *formatFlag) String() string {
	if f == nil {
		return ""
	}
	return string(*f)
}

func (f *formatFlag) Set(s string) error {
	switch s {
	case "text", "json":
		*f = formatFlag(s)
		return nil
	}
	return fmt.Errorf("%q is not a log format (text or json)", s)
}

// addLogFlags registers --log-level and --log-format on fs.
func addLogFlags(fs *flag.FlagSet) {
	fs.Var(&levelFlag{}, flagLogLevel, "log level: debug, info, warn or error (default info, or $MAILCASE_LOG_LEVEL)")
	format := formatFlag("json")
	fs.Var(&format, flagLogFormat, "log format on stderr: text or json")
}

// newLogger returns a logger on stderr with the defaults of the log flags
// (JSON, level Info or $MAILCASE_LOG_LEVEL).
func newLogger(stderr io.Writer) *slog.Logger { return commandLogger(nil, stderr) }

// commandLogger returns the logger of a command whose flags fs were
// parsed: --log-format (text or json, default json) on stderr, at
// --log-level, else $MAILCASE_LOG_LEVEL (debug, info, warn, error), else
// Info. Durations are written as text ("1.5s"), and strings of the text
// format are quoted with their control characters escaped (slog quotes any
// string that is not printable), so mail content cannot drive a terminal.
func commandLogger(fs *flag.FlagSet, stderr io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if v := os.Getenv("MAILCASE_LOG_LEVEL"); v != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(v)); err == nil {
			level = l
		}
	}
	format := "json"
	if fs != nil {
		if f := fs.Lookup(flagLogLevel); f != nil {
			if lf, ok := f.Value.(*levelFlag); ok && lf.set {
				level = lf.level
			}
		}
		if f := fs.Lookup(flagLogFormat); f != nil {
			format = f.Value.String()
		}
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationAsText}
	if format == "text" {
		return slog.New(slog.NewTextHandler(stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(stderr, opts))
}

// durationAsText writes time.Duration values as text ("2m0s"), not as
// nanoseconds.
func durationAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
