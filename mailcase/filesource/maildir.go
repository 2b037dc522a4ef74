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

// OpenMaildir returns a Source over the Maildir dir (its new/ and cur/
// folders). A nil opts is equivalent to a zero Options.
func OpenMaildir(dir string, opts *Options) (*Source, error) {
	o := opts.withDefaults(dir)
	b := &maildirBackend{dir: dir, o: o}
	if b.o.QuarantineDir == "" {
		b.o.QuarantineDir = filepath.Join(dir, "quarantine")
	}
	found := false
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("filesource: %w", err)
		}
		found = true
		var names []string
		for _, e := range ents {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			b.files = append(b.files, sub+"/"+n)
		}
	}
	if !found {
		return nil, fmt.Errorf("filesource: %s is not a Maildir (no new/ or cur/)", dir)
	}
	return newSource(o, b), nil
}

type maildirBackend struct {
	dir   string
	o     Options
	files []string // "new/name" or "cur/name"
	i     int
}

func (b *maildirBackend) next() (*mailcase.Received, error) {
	for b.i < len(b.files) {
		id := b.files[b.i]
		b.i++
		raw, size, trunc, err := readLimited(filepath.Join(b.dir, filepath.FromSlash(id)), b.o.MaxSize)
		if os.IsNotExist(err) {
			continue // moved by a mail client since the listing
		}
		if err != nil {
			// One unreadable file never stops the others: it stays in
			// place for the next run.
			b.o.Logger.Warn("filesource: skipping unreadable mail", "file", id, "err", err)
			continue
		}
		return &mailcase.Received{Raw: raw, ID: id, Size: size, Truncated: trunc}, nil
	}
	return nil, io.EOF
}

func (b *maildirBackend) ack(r *mailcase.Received, d mailcase.Disposition, reason string) error {
	path := filepath.Join(b.dir, filepath.FromSlash(r.ID))
	switch d {
	case mailcase.Quarantine:
		return setAside(path, b.o.QuarantineDir, reason)
	case mailcase.Done:
		switch b.o.OnDone {
		case Delete:
			return os.Remove(path)
		case Move:
			dst := filepath.Join(b.dir, "cur", withSeen(filepath.Base(path)))
			if dst == path {
				return nil
			}
			if err := os.MkdirAll(filepath.Join(b.dir, "cur"), 0o750); err != nil {
				return err
			}
			return os.Rename(path, dst)
		}
	}
	return nil
}

// withSeen returns a Maildir file name with the Seen flag: "unique:2,S"
// for a name without info, the flags kept sorted otherwise.
func withSeen(name string) string {
	base, info, ok := strings.Cut(name, ":2,")
	if !ok {
		return name + ":2,S"
	}
	if strings.Contains(info, "S") {
		return name
	}
	flags := []byte(info + "S")
	sort.Slice(flags, func(i, j int) bool { return flags[i] < flags[j] })
	return base + ":2," + string(flags)
}

func (b *maildirBackend) close() error { return nil }
