// Command benchimport is the by-hand import benchmark's helper (see
// .ci/bench-import.sh): "gen DIR N" writes N generated realistic mails
// (quoted replies, multipart/alternative, attachments, windows-1252) to
// DIR, one .eml file each; "genmbox FILE N" writes N such mails to one
// mboxrd file, 2,000 at a time with a seed each (for the 1,000,000-mail
// import by hand, which would not fit in memory at once); "parse DIR"
// reads every file and walks every part with go-message, the yardstick the
// import is measured against.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"

	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchimport:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 3 && args[0] == "gen":
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		if err := os.MkdirAll(args[1], 0o755); err != nil {
			return err
		}
		// Three in five mails with attachments carry a 150 KB PDF: about
		// the corpus of 52 MB for 2,000 mails.
		for i, raw := range mailcasetest.GenerateCorpusWith(n, 1, &mailcasetest.CorpusOptions{LargePDF: 150 * 1024}) {
			if err := os.WriteFile(filepath.Join(args[1], fmt.Sprintf("%07d.eml", i)), raw, 0o644); err != nil {
				return err
			}
		}
		return nil
	case len(args) == 3 && args[0] == "genmbox":
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		return genMbox(args[1], n)
	case len(args) == 2 && args[0] == "parse":
		files, err := filepath.Glob(filepath.Join(args[1], "*.eml"))
		if err != nil {
			return err
		}
		parts := 0
		for _, f := range files {
			n, err := parse(f)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			parts += n
		}
		fmt.Printf("%d mails, %d parts\n", len(files), parts)
		return nil
	case len(args) == 4 && args[0] == "fetch":
		return fetch(args[1], args[2], args[3])
	case len(args) > 0 && args[0] == "compare":
		return compare(args[1:])
	}
	return fmt.Errorf("usage: benchimport gen DIR N | genmbox FILE N | parse DIR | fetch ADDR CAFILE USER | compare [-n N] [-before CMD] -a CMD -b CMD")
}

// genMbox writes n generated mails to the mboxrd file path, in chunks of
// 2,000 mails of one seed each (the mails of one chunk form its threads).
func genMbox(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	const chunk = 2000
	for seed := int64(1); n > 0; seed++ {
		for _, raw := range mailcasetest.GenerateCorpusWith(min(n, chunk), seed, &mailcasetest.CorpusOptions{LargePDF: 150 * 1024}) {
			fmt.Fprintf(w, "From import-bench@example.com Mon Dec  7 10:00:00 2026\n")
			for line := range bytes.Lines(raw) {
				if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
					w.WriteByte('>')
				}
				w.Write(line)
			}
			if !bytes.HasSuffix(raw, []byte("\n")) {
				w.WriteByte('\n')
			}
			w.WriteByte('\n')
		}
		n -= chunk
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parse reads a mail and every part's decoded body.
func parse(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	e, err := message.Read(f)
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return 0, err
	}
	n := 0
	err = e.Walk(func(_ []int, p *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return err
		}
		n++
		if mr := p.MultipartReader(); mr == nil {
			_, err = io.Copy(io.Discard, p.Body)
		}
		return err
	})
	return n, err
}
