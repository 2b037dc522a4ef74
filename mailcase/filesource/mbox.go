package filesource

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emailcrm/emailcrm/mailcase"
)

// StateSuffix is appended to an mbox path to name its state file.
const StateSuffix = ".emailcrm-state"

// OpenMbox returns a Source streaming the mbox file at path. Mails listed
// in the state file <path>.emailcrm-state (acknowledged by an earlier run)
// are skipped. A nil opts is equivalent to a zero Options.
//
// The state file keys each settled mail by the offset of its From_ line
// and a hash of its bytes ("done <offset> sha256:<hex>"): a mail is skipped
// only when the same bytes are found at the same offset. So when the spool
// is truncated (emptied by a mail client, rotated) or replaced by another
// file, new mail written at an offset an earlier mail had is read, never
// skipped. Lines of the older format without a hash are ignored: their
// mails are read again and the pipeline recognises them as duplicates.
func OpenMbox(path string, opts *Options) (*Source, error) {
	o := opts.withDefaults(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("filesource: %w", err)
	}
	b := &mboxBackend{f: f, r: bufio.NewReaderSize(f, 64<<10), statePath: path + StateSuffix,
		settled: map[mboxKey]bool{}, handed: map[string]mboxKey{}}
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
	settled   map[mboxKey]bool   // mails acknowledged Done or Quarantine
	handed    map[string]mboxKey // mails handed out and not yet acknowledged, by ID
	state     *os.File
	long      []byte // a line longer than r's buffer (see line)
	sizeHint  int    // the size of the last message read, to size the next one's buffer

	// Acknowledgements written to the state file (written, under the
	// Source's lock) and made durable (synced, under syncMu): one fsync of
	// the state file covers every line written before it, so concurrent
	// acknowledgements share it (see sync).
	written atomic.Int64
	syncMu  sync.Mutex
	synced  int64
}

// mboxKey identifies a mail of an mbox: the offset of its From_ line and
// the hash of its bytes (hashPrefix and hex, as in the state file).
type mboxKey struct {
	off  int64
	hash string
}

// hashPrefix marks the hash field of a state line.
const hashPrefix = "sha256:"

// mboxHash is the state file's hash of a mail: the first 128 bits of the
// SHA-256 of its bytes, in hex, with hashPrefix.
func mboxHash(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hashPrefix + hex.EncodeToString(sum[:16])
}

// loadState reads the mails an earlier run settled: lines "done <offset>
// sha256:<hex>" and "quarantine <offset> sha256:<hex> <reason>". Lines
// without a hash (older format) and torn lines are ignored.
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
		if len(f) < 3 || f[0] != "done" && f[0] != "quarantine" || !validHash(f[2]) {
			continue // a torn last line, or an older line without a hash
		}
		if off, err := strconv.ParseInt(f[1], 10, 64); err == nil && off >= 0 {
			b.settled[mboxKey{off: off, hash: f[2]}] = true
		}
	}
	return nil
}

// line reads one line including its newline; io.EOF only when nothing is
// left. The line is valid until the next call.
func (b *mboxBackend) line() ([]byte, error) {
	l, err := b.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		b.long = append(b.long[:0], l...)
		for errors.Is(err, bufio.ErrBufferFull) {
			l, err = b.r.ReadSlice('\n')
			b.long = append(b.long, l...)
		}
		l = b.long
	}
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

// blank returns a copy of the blank line l that outlives the next line.
func blank(l []byte) []byte {
	if len(l) == 2 {
		return []byte("\r\n")
	}
	return []byte("\n"[:len(l)])
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
			b.pending, b.pendOff = bytes.Clone(l), start
			break
		}
	}
	if b.pending == nil {
		return 0, nil, io.EOF
	}
	start := b.pendOff
	var msg bytes.Buffer
	msg.Grow(b.sizeHint) // mails of one mbox are of alike sizes: fewer regrowths
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
			b.pending, b.pendOff = bytes.Clone(l), at
			lastBlank = nil // the separator's blank line is not part of the message
			break
		}
		if lastBlank != nil {
			msg.Write(lastBlank)
			lastBlank = nil
		}
		if isBlank(l) {
			prevBlank = true
			lastBlank = blank(l)
			continue
		}
		prevBlank = false
		msg.Write(unescapeFrom(l))
	}
	// A trailing blank line is the writer's message terminator.
	b.sizeHint = min(msg.Len()+msg.Len()/8, 4<<20)
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
		k := mboxKey{off: off, hash: mboxHash(raw)}
		if b.settled[k] {
			continue
		}
		id := strconv.FormatInt(off, 10)
		b.handed[id] = k
		return &mailcase.Received{Raw: raw, ID: id, Size: int64(len(raw))}, nil
	}
}

func (b *mboxBackend) ack(r *mailcase.Received, d mailcase.Disposition, reason string) error {
	k, ok := b.handed[r.ID]
	if !ok {
		return errNotInFlight
	}
	var line string
	switch d {
	case mailcase.Done:
		line = "done " + r.ID + " " + k.hash + "\n"
	case mailcase.Quarantine:
		line = "quarantine " + r.ID + " " + k.hash + " " + strings.Join(strings.Fields(reason), " ") + "\n"
	default:
		delete(b.handed, r.ID)
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
	b.written.Add(1)
	b.settled[k] = true
	delete(b.handed, r.ID)
	return nil
}

// sync makes the state lines written so far durable, called after ack
// without the Source's lock, so Receive and other acknowledgements go on
// during the fsync. An fsync covers every line written before it began:
// concurrent callers whose lines a finished fsync covered return without
// one of their own, so a backlog pays one fsync for many mails.
func (b *mboxBackend) sync() error {
	upTo := b.written.Load()
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	if b.synced >= upTo {
		return nil
	}
	n := b.written.Load() // written before this fsync begins
	if err := b.state.Sync(); err != nil {
		return err
	}
	b.synced = n
	return nil
}

func (b *mboxBackend) close() error {
	err := b.f.Close()
	if b.state != nil {
		err = errors.Join(err, b.state.Close())
	}
	return err
}

// validHash reports whether f is a state file hash field.
func validHash(f string) bool {
	h, ok := strings.CutPrefix(f, hashPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}
