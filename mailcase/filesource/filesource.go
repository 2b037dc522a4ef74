// Package filesource provides mailcase.Source implementations over local
// files: a directory of .eml files (OpenDir), a Maildir (OpenMaildir) and
// an mbox file (OpenMbox). They serve backlog imports, examples,
// tests and replays.
//
// All three are finite: Receive returns io.EOF when every mail was handed
// out. They honour acknowledge-after-commit: nothing is moved, flagged or
// deleted before Ack, and Ack(Done) applies the configured after-store
// action; Ack(Quarantine) sets the mail aside with its reason; Ack(Retry)
// leaves it where it is for the next run. Receive and Ack are safe for
// concurrent use. Received.Quiet is set from Options.Quiet, so a backlog
// import sends nothing about the mails.
//
// # Directory
//
// OpenDir lists the *.eml files of a directory (not its subdirectories) in
// name order when it is opened. Done moves a file to the done/ subfolder
// (OnDone Move, the default), deletes it (Delete) or leaves it (Keep: a
// second run finds it again and the pipeline recognises the duplicate).
// Quarantine moves it to the quarantine/ subfolder and writes the reason
// next to it in <name>.reason.
//
// # Maildir
//
// OpenMaildir reads new/ then cur/, each in name order. Done moves a mail of
// new/ to cur/ with the Seen flag (":2,S") and adds the flag to a mail of
// cur/ (Move, the default), deletes it (Delete) or leaves it (Keep). Mails
// of cur/ already flagged Seen are still read (a backlog import of a read
// mailbox); the pipeline's idempotency makes a re-run harmless.
// Quarantine moves the mail to the quarantine/ folder beside new/ and cur/
// (a plain directory, invisible to mail clients) with a .reason file.
//
// # Mbox
//
// OpenMbox streams an mbox file (mboxrd or mboxo: a message starts at a
// "From " line at the start of the file or after an empty line; lines
// ">From ", ">>From ", ... are unescaped by one '>'; Content-Length is
// ignored). An mbox is never rewritten: acknowledgements are appended to
// the sidecar state file <path>.emailcrm-state ("done <offset> <hash>" or
// "quarantine <offset> <hash> <reason>", hash being "sha256:" and the first
// 128 bits of the SHA-256 of the mail in hex), and a later run skips the
// mails it lists: the same bytes at the same offset. A truncated or
// replaced spool is therefore read afresh where its mail differs. Retry
// writes nothing.
package filesource

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// DoneAction is what a source does with a mail acknowledged Done.
type DoneAction int

// Done actions.
const (
	// Move moves the mail out of the way: to the done/ subfolder of a
	// directory (or Options.DoneDir), or to cur/ with the Seen flag in a
	// Maildir. It is the default.
	Move DoneAction = iota
	// Keep leaves the mail untouched.
	Keep
	// Delete removes the mail.
	Delete
)

func (a DoneAction) String() string {
	switch a {
	case Move:
		return "move"
	case Keep:
		return "keep"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("DoneAction(%d)", int(a))
}

// Options configures a file source. A nil *Options is equivalent to a zero
// value.
type Options struct {
	// Mailbox names the mailbox in Received.Mailbox; "" means the base name
	// of the path.
	Mailbox string
	// OnDone is the action on Done for directories and Maildirs (mbox
	// files are never modified).
	OnDone DoneAction
	// DoneDir is where Move puts done files of a directory; "" means
	// <dir>/done.
	DoneDir string
	// QuarantineDir is where quarantined mail goes; "" means
	// <dir>/quarantine (mbox: quarantined mail stays in the file and is
	// listed in the state file).
	QuarantineDir string
	// Quiet marks every mail as a backlog import (Received.Quiet).
	Quiet bool
	// MaxSize, when positive, bounds the bytes read of one file: a larger
	// file is handed out with only its header and Received.Truncated set
	// (directories and Maildirs).
	MaxSize int64
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults(path string) Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Mailbox == "" {
		r.Mailbox = filepath.Base(path)
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r
}

// errNotInFlight is returned by Ack for a mail the source did not hand out
// or that was already acknowledged.
var errNotInFlight = errors.New("filesource: mail is not in flight (unknown or already acknowledged)")

// readLimited reads the mail at path. When limit is positive and the file
// is larger, it returns only the header (up to and including the empty
// line, at most min(limit, 256 KiB) bytes) with truncated set; size is the
// file's size.
func readLimited(path string, limit int64) (raw []byte, size int64, truncated bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, false, err
	}
	size = st.Size()
	if limit <= 0 || size <= limit {
		// From the open file (not opened again by name): one byte more
		// than its size, so a file that grew since is read to its end.
		raw = make([]byte, size+1)
		n, err := io.ReadFull(f, raw)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return raw[:n], int64(n), false, nil
		case err != nil:
			return nil, 0, false, err
		}
		rest, err := io.ReadAll(f)
		raw = append(raw, rest...)
		return raw, int64(len(raw)), false, err
	}
	buf := make([]byte, min(limit, 256<<10))
	n, _ := f.Read(buf)
	buf = buf[:n]
	s := string(buf)
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
		buf = buf[:i+4]
	} else if i := strings.Index(s, "\n\n"); i >= 0 {
		buf = buf[:i+2]
	}
	return buf, size, true, nil
}

// setAside moves file to dir (created as needed) and writes the reason to
// <name>.reason next to it.
func setAside(file, dir, reason string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	dst := filepath.Join(dir, filepath.Base(file))
	if err := os.Rename(file, dst); err != nil {
		return err
	}
	if reason == "" {
		reason = "quarantined"
	}
	return os.WriteFile(dst+".reason", []byte(strings.TrimSpace(reason)+"\n"), 0o640)
}
