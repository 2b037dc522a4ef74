package filesource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
)

// StateSuffix is appended to an mbox path to name its state file.
const StateSuffix = ".emailcrm-state"

// OpenMbox returns a Source streaming the mbox file at path. Mails listed
// in the state file <path>.emailcrm-state (acknowledged by an earlier run)
// are skipped. A nil opts is equivalent to a zero Options.
func OpenMbox(path string, opts *Options) (*Source, error) {
	o := opts.withDefaults(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("filesource: %w", err)
	}
	b := &mboxBackend{f: f, r: bufio.NewReaderSize(f, 64<<10), statePath: path + StateSuffix, settled: map[int64]bool{}}
	if err := b.loadState(); err != nil {
		f.Close()
		return nil, err
	}
	return newSource(o, b), nil
}

type mboxBackend struct {
	f         *os.File
	r         *bufio.Reader
	off       int64 // offset of the next unread byte
	pending   []byte
	pendOff   int64 // offset of pending, the next message's From_ line
	started   bool
	eof       bool
	statePath string
	settled   map[int64]bool // offsets acknowledged Done or Quarantine
	state     *os.File
}

// loadState reads the offsets an earlier run settled.
func (b *mboxBackend) loadState() error {
	data, err := os.ReadFile(b.statePath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filesource: reading state: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "done" && f[0] != "quarantine" {
			continue // tolerate a torn last line
		}
		if off, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			b.settled[off] = true
		}
	}
	return nil
}

// line reads one line including its newline; io.EOF only when nothing is
// left.
func (b *mboxBackend) line() ([]byte, error) {
	l, err := b.r.ReadBytes('\n')
	b.off += int64(len(l))
	if err == io.EOF && len(l) > 0 {
		return l, nil
	}
	return l, err
}

func isFromLine(l []byte) bool { return bytes.HasPrefix(l, []byte("From ")) }

func isBlank(l []byte) bool {
	return len(l) == 0 || len(l) == 1 && l[0] == '\n' || len(l) == 2 && l[0] == '\r' && l[1] == '\n'
}

// readMessage returns the next message and the offset of its From_ line.
func (b *mboxBackend) readMessage() (int64, []byte, error) {
	if !b.started {
		b.started = true
		for { // skip leading blank lines
			start := b.off
			l, err := b.line()
			if err != nil {
				b.eof = true
				return 0, nil, io.EOF
			}
			if isBlank(l) {
				continue
			}
			b.pending, b.pendOff = l, start
			break
		}
	}
	if b.pending == nil {
		return 0, nil, io.EOF
	}
	start := b.pendOff
	var msg bytes.Buffer
	first := b.pending
	b.pending = nil
	if !isFromLine(first) {
		// QUIRK: a file without a From_ line is taken as one message.
		msg.Write(first)
	}
	prevBlank := false
	var lastBlank []byte
	for {
		if b.eof {
			break
		}
		at := b.off
		l, err := b.line()
		if err == io.EOF {
			b.eof = true
			break
		}
		if err != nil {
			return 0, nil, err
		}
		if prevBlank && isFromLine(l) {
			b.pending, b.pendOff = l, at
			lastBlank = nil // the separator's blank line is not part of the message
			break
		}
		if lastBlank != nil {
			msg.Write(lastBlank)
			lastBlank = nil
		}
		if isBlank(l) {
			prevBlank = true
			lastBlank = l
			continue
		}
		prevBlank = false
		msg.Write(unescapeFrom(l))
	}
	// A trailing blank line is the writer's message terminator.
	return start, msg.Bytes(), nil
}

// unescapeFrom removes one '>' from a line ">...>From " (mboxrd; for mboxo
// this restores the common case).
func unescapeFrom(l []byte) []byte {
	if len(l) == 0 || l[0] != '>' {
		return l
	}
	i := 0
	for i < len(l) && l[i] == '>' {
		i++
	}
	if bytes.HasPrefix(l[i:], []byte("From ")) {
		return l[1:]
	}
	return l
}

func (b *mboxBackend) next() (*mailcase.Received, error) {
	for {
		off, raw, err := b.readMessage()
		if err != nil {
			return nil, err
		}
		if b.settled[off] {
			continue
		}
		return &mailcase.Received{Raw: raw, ID: strconv.FormatInt(off, 10), Size: int64(len(raw))}, nil
	}
}

func (b *mboxBackend) ack(r *mailcase.Received, d mailcase.Disposition, reason string) error {
	var line string
	switch d {
	case mailcase.Done:
		line = "done " + r.ID + "\n"
	case mailcase.Quarantine:
		line = "quarantine " + r.ID + " " + strings.Join(strings.Fields(reason), " ") + "\n"
	default:
		return nil // Retry: a later run reads the mail again
	}
	if b.state == nil {
		f, err := os.OpenFile(b.statePath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return err
		}
		b.state = f
	}
	if _, err := b.state.WriteString(line); err != nil {
		return err
	}
	if err := b.state.Sync(); err != nil {
		return err
	}
	off, _ := strconv.ParseInt(r.ID, 10, 64)
	b.settled[off] = true
	return nil
}

func (b *mboxBackend) close() error {
	err := b.f.Close()
	if b.state != nil {
		err = errors.Join(err, b.state.Close())
	}
	return err
}
