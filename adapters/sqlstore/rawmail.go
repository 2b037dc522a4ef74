package sqlstore

import (
	"bytes"
	"compress/flate"
	"context"
	"database/sql"
	"errors"
	"io"

	kflate "github.com/klauspost/compress/flate"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Raw mail (driver.RawKeeper, schema v5): kept once per filed mail in
// raw_mail, in the filing's transaction (fileEmail). A raw mail is stored
// DEFLATE-compressed (encoding "deflate") when that saves at least an
// eighth of its size, else as it is (encoding ""). The stream is plain
// DEFLATE (RFC 1951), read back by compress/flate:
//   - most mails are compressed by compress/flate at BestSpeed (matches and
//     Huffman codes): their text repeats itself (quoted replies, the HTML
//     alternative of the plain text); the generated corpus keeps 57% of
//     its bytes, the tricky-mail corpus (59 text mails) 35%;
//   - a mail of hufThreshold bytes or more mostly made of base64 lines
//     (see mostlyBase64: attachments, which have no matches worth finding
//     but whose 64-letter alphabet Huffman codes shrink to about 76%) is
//     compressed with Huffman codes only, by the Huffman-only writer of
//     github.com/klauspost/compress/flate: 2.3 times faster than BestSpeed
//     on the import benchmark's mails with a 150 KB PDF, for 0.1% more
//     bytes (76.0% kept instead of 75.9%). Other large mails (text, where
//     Huffman codes alone would keep 74% instead of 42%) get BestSpeed.
//
// On the import benchmark's 2,000 mails (52 MB) this compresses in two
// thirds of the time BestSpeed alone took (161 ms instead of 241 ms),
// keeping 74.03% of the bytes instead of 73.97%.
//
// Compressing runs in the filing's goroutine, before the write joins the
// group commit.

// encDeflate names DEFLATE-compressed raw mail.
const encDeflate = "deflate"

// hufThreshold is the raw size from which a raw mail mostly of base64 is
// compressed with Huffman codes only (see above).
const hufThreshold = 64 << 10

// deflate returns raw compressed and its encoding, or raw and "" when
// compressing does not pay.
func (s *store) deflate(raw []byte) ([]byte, string) {
	var buf bytes.Buffer
	buf.Grow(len(raw) - len(raw)/8)
	var werr, cerr error
	if len(raw) >= hufThreshold && mostlyBase64(raw) {
		w, _ := s.hufFlaters.Get().(*kflate.Writer)
		if w == nil {
			w, _ = kflate.NewWriter(&buf, kflate.HuffmanOnly) // a valid level
		} else {
			w.Reset(&buf)
		}
		_, werr = w.Write(raw)
		cerr = w.Close()
		s.hufFlaters.Put(w)
	} else {
		w, _ := s.flaters.Get().(*flate.Writer)
		if w == nil {
			w, _ = flate.NewWriter(&buf, flate.BestSpeed) // a valid level
		} else {
			w.Reset(&buf)
		}
		_, werr = w.Write(raw)
		cerr = w.Close()
		s.flaters.Put(w)
	}
	if werr != nil || cerr != nil || buf.Len() > len(raw)-len(raw)/8 {
		return raw, ""
	}
	return buf.Bytes(), encDeflate
}

// mostlyBase64 reports whether at least three quarters of raw's bytes are
// in lines that look like base64: 60 to 78 bytes without a space, not
// ending in "=" (a quoted-printable soft break). Text lines that long have
// spaces. Its two vectorized scans (newlines, spaces) cost a small
// fraction of compressing.
func mostlyBase64(raw []byte) bool {
	n := 0
	for rest := raw; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) >= 60 && len(line) <= 78 && line[len(line)-1] != '=' && bytes.IndexByte(line, ' ') < 0 {
			n += len(line) + 2
		}
	}
	return n >= len(raw)-len(raw)/4
}

// rawBlob is a raw mail as stored.
type rawBlob struct {
	data []byte
	enc  string
	size int64
}

// prepareRaw encodes raw for storage, or returns nil when raw is empty. It
// runs in the caller's goroutine, before the write joins a shared
// transaction, so compressing never holds up the committer.
func (s *store) prepareRaw(raw []byte) *rawBlob {
	if len(raw) == 0 {
		return nil
	}
	data, enc := s.deflate(raw)
	return &rawBlob{data: data, enc: enc, size: int64(len(raw))}
}

// putRaw keeps rb under key in tx unless a raw mail is kept for it.
func (s *store) putRaw(ctx context.Context, tx *sql.Tx, key string, iid sql.NullInt64, rb *rawBlob, now int64) error {
	_, err := s.on(tx).ExecContext(ctx, s.q.insertRaw, hashOf(key), []byte(key), iid, rb.enc, rb.size, rb.data, now)
	return err
}

// PutRaw keeps raw under key unless one is kept (first write wins).
func (s *store) PutRaw(ctx context.Context, key string, raw []byte) error {
	if key == "" || len(raw) == 0 {
		return errorf(driver.InvalidArgument, "empty key or raw mail")
	}
	rb := s.prepareRaw(raw)
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.putRaw(ctx, tx, key, sql.NullInt64{}, rb, nanos(s.now()))
	})
}

// GetRaw returns the raw mail kept under key, decompressed, or NotFound.
func (s *store) GetRaw(ctx context.Context, key string) ([]byte, error) {
	var enc string
	var size int64
	var data []byte
	err := s.on(nil).QueryRowContext(ctx, s.q.getRaw, hashOf(key)).Scan(&enc, &size, &data)
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(driver.NotFound, "no raw mail kept for %q", key)
	}
	if err != nil {
		return nil, err
	}
	switch enc {
	case "":
		return data, nil
	case encDeflate:
		out := bytes.NewBuffer(make([]byte, 0, size))
		r := flate.NewReader(bytes.NewReader(data))
		if _, err := io.Copy(out, io.LimitReader(r, size+1)); err != nil {
			return nil, errorf(driver.Internal, "raw mail of %q: %v", key, err)
		}
		if int64(out.Len()) != size {
			return nil, errorf(driver.Internal, "raw mail of %q: %d bytes, want %d", key, out.Len(), size)
		}
		return out.Bytes(), nil
	}
	return nil, errorf(driver.Internal, "raw mail of %q: unknown encoding %q", key, enc)
}

// RawKeys lists the keys with a raw mail in the order kept.
func (s *store) RawKeys(ctx context.Context, after string, limit int) ([]string, error) {
	var seq int64
	if after != "" {
		err := s.on(nil).QueryRowContext(ctx, s.q.rawSeq, hashOf(after)).Scan(&seq)
		s.noteErr(err)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errorf(driver.NotFound, "no raw mail kept for %q", after)
		}
		if err != nil {
			return nil, err
		}
	}
	n := int64(limit)
	if limit <= 0 {
		n = 1 << 62
	}
	rows, err := s.scan().QueryContext(ctx, s.q.rawKeysAfter, seq, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out = append(out, string(k))
	}
	return out, rows.Err()
}

// emailID returns the interaction ID of the mail filed under key, or
// NotFound: through its raw mail's row, else by a scan of the key.
func (s *store) emailRow(ctx context.Context, q queryer, key string) (driver.Interaction, int64, error) {
	var iid sql.NullInt64
	err := q.QueryRowContext(ctx, s.q.rawInteraction, hashOf(key)).Scan(&iid)
	var row *sql.Row
	switch {
	case err == nil && iid.Valid:
		row = q.QueryRowContext(ctx, s.q.emailByID, iid.Int64)
	case err == nil || errors.Is(err, sql.ErrNoRows):
		row = q.QueryRowContext(ctx, s.q.emailByKey, []byte(key))
	default:
		return driver.Interaction{}, 0, err
	}
	in, id, err := scanInteraction(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = errorf(driver.NotFound, "no mail filed under %q", key)
	}
	return in, id, err
}

// GetEmail returns the mail filed under key, with its attachments.
func (s *store) GetEmail(ctx context.Context, key string) (driver.Email, error) {
	in, id, err := s.emailRow(ctx, s.on(nil), key)
	s.noteErr(err)
	if err != nil {
		return driver.Email{}, err
	}
	atts, err := s.attachments(ctx, id)
	if err != nil {
		return driver.Email{}, err
	}
	in.Email.Attachments = atts
	return *in.Email, nil
}

// UpdateParsed replaces the parsed content of the mail filed under key, in
// one transaction.
func (s *store) UpdateParsed(ctx context.Context, key string, c *driver.ParsedContent) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, id, err := s.emailRow(ctx, s.on(tx), key)
		if err != nil {
			return err
		}
		var reply any
		if c.ReplyText != c.Text {
			reply = s.text(c.ReplyText)
		}
		if _, err := s.on(tx).ExecContext(ctx, s.q.updateParsed, s.text(c.Subject), s.text(c.Text), reply, s.text(c.HTML),
			problemsArg(s, c.Problems), id); err != nil {
			return err
		}
		if _, err := s.on(tx).ExecContext(ctx, s.q.deleteAttachments, id); err != nil {
			return err
		}
		if len(c.Attachments) > 0 {
			return s.insertAttachments(ctx, tx, id, c.Attachments)
		}
		return nil
	})
}

// problemsArg returns the problems column of a mail: NULL when none.
func problemsArg(s *store, ps []string) any {
	if len(ps) == 0 {
		return nil
	}
	return s.text(encodeJSON(ps))
}
