package filesource

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
)

// OpenDir returns a Source over the *.eml files of dir, in name order. A
// nil opts is equivalent to a zero Options.
func OpenDir(dir string, opts *Options) (*Source, error) {
	o := opts.withDefaults(dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("filesource: %w", err)
	}
	b := &dirBackend{dir: dir, o: o}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.EqualFold(filepath.Ext(e.Name()), ".eml") {
			b.files = append(b.files, e.Name())
		}
	}
	sort.Strings(b.files)
	if b.o.DoneDir == "" {
		b.o.DoneDir = filepath.Join(dir, "done")
	}
	if b.o.QuarantineDir == "" {
		b.o.QuarantineDir = filepath.Join(dir, "quarantine")
	}
	return newSource(o, b), nil
}

type dirBackend struct {
	dir   string
	o     Options
	files []string
	i     int
}

func (b *dirBackend) next() (*mailcase.Received, error) {
	for b.i < len(b.files) {
		name := b.files[b.i]
		b.i++
		raw, size, trunc, err := readLimited(filepath.Join(b.dir, name), b.o.MaxSize)
		if os.IsNotExist(err) {
			continue // removed since the listing
		}
		if err != nil {
			// One unreadable file never stops the others: it stays in
			// place for the next run.
			b.o.Logger.Warn("filesource: skipping unreadable mail", "file", name, "err", err)
			continue
		}
		return &mailcase.Received{Raw: raw, ID: name, Size: size, Truncated: trunc}, nil
	}
	return nil, io.EOF
}

func (b *dirBackend) ack(r *mailcase.Received, d mailcase.Disposition, reason string) error {
	path := filepath.Join(b.dir, r.ID)
	switch d {
	case mailcase.Quarantine:
		return setAside(path, b.o.QuarantineDir, reason)
	case mailcase.Done:
		switch b.o.OnDone {
		case Delete:
			return os.Remove(path)
		case Move:
			if err := os.MkdirAll(b.o.DoneDir, 0o750); err != nil {
				return err
			}
			return os.Rename(path, filepath.Join(b.o.DoneDir, r.ID))
		}
	}
	return nil // Retry, Keep
}

func (b *dirBackend) close() error { return nil }
