package sqlstore

import (
	"bytes"
	"compress/flate"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Raw mail (driver.RawKeeper, schema v5): kept once per filed mail in
// raw_mail, in the filing's transaction (fileEmail). A raw mail is stored
// DEFLATE-compressed (encoding "deflate") when that saves at least an
// eighth of its size, else as it is (encoding ""): measured on the
// generated corpus (1,000 mails with attachments, 4.2 MB) DEFLATE at
// BestSpeed keeps 57% of the bytes, on the tricky-mail corpus (59 text
// mails) 35%, at about 50 MB/s with a reused writer (under 80 µs a mail,
// well below the commit of the filing); mails made of already compressed
// attachments keep their bytes.
//
// A filed mail's attachments are stored decoded in attachments, in the
// same transaction; their base64 bodies make most of the bytes of a mail
// with attachments, and DEFLATE shrinks base64 by a quarter only. So a
// base64 body whose bytes are exactly the standard encoding of a stored
// attachment, wrapped at a fixed line length with one line ending, is left
// out of the kept raw mail and rebuilt from the attachment when the raw
// mail is read (encoding "attachments", see elide and rebuild); any other
// body stays in the raw mail as it is. On the generated import corpus
// (2,000 mails, 52 MB, 150 KB PDFs) that keeps 5% of the raw bytes instead
// of 74%, and compresses 12% of them instead of all. Before the
// attachments of such a mail are replaced (UpdateParsed), its raw mail is
// rebuilt and stored whole again, so the original mail is never lost.

// encDeflate names DEFLATE-compressed raw mail.
const encDeflate = "deflate"

// deflate returns raw compressed and its encoding, or raw and "" when
// compressing does not pay.
func (s *store) deflate(raw []byte) ([]byte, string) {
	w, _ := s.flaters.Get().(*flate.Writer)
	var buf bytes.Buffer
	buf.Grow(len(raw) / 2)
	if w == nil {
		w, _ = flate.NewWriter(&buf, flate.BestSpeed) // BestSpeed is a valid level
	} else {
		w.Reset(&buf)
	}
	_, werr := w.Write(raw)
	cerr := w.Close()
	s.flaters.Put(w)
	if werr != nil || cerr != nil || buf.Len() > len(raw)-len(raw)/8 {
		return raw, ""
	}
	return buf.Bytes(), encDeflate
}

// encAttachments names a raw mail kept without the base64 bodies of its
// stored attachments: a header (see attRef) and the rest of the mail,
// DEFLATE-compressed or not (a flag byte).
const encAttachments = "attachments"

// rawBlob is a raw mail as stored.
type rawBlob struct {
	data []byte
	enc  string
	size int64
}

// prepareRaw encodes raw for storage, or returns nil when raw is empty.
// atts are the attachments stored with it (positions as in atts), whose
// base64 bodies may be left out (nil when none are stored with it). It
// runs in the caller's goroutine, before the write joins a shared
// transaction, so compressing never holds up the committer.
func (s *store) prepareRaw(raw []byte, atts []driver.Attachment) *rawBlob {
	if len(raw) == 0 {
		return nil
	}
	if rest, refs := elide(raw, atts); len(refs) > 0 {
		data, enc := s.deflate(rest)
		hdr := appendRefs(nil, refs)
		if enc == encDeflate {
			hdr = append(hdr, 1)
		} else {
			hdr = append(hdr, 0)
		}
		return &rawBlob{data: append(hdr, data...), enc: encAttachments, size: int64(len(raw))}
	}
	data, enc := s.deflate(raw)
	return &rawBlob{data: data, enc: enc, size: int64(len(raw))}
}

// attRef is one base64 body left out of a kept raw mail: it starts gap
// bytes after the end of the previous one (or the start of the mail), is
// the standard base64 encoding of the data of attachment pos wrapped in
// lines of lineLen characters ended by "\r\n" (crlf) or "\n", without a
// line ending after its last line, and is n bytes long.
type attRef struct {
	gap, pos, lineLen, n int
	crlf                 bool
}

// minElided is the smallest attachment whose base64 body is left out:
// smaller ones are not worth a reference.
const minElided = 512

// elide returns raw without the base64 bodies of atts that it holds
// exactly (see attRef), and where they were; no refs when none was found.
// Attachments are looked for in their order, each after the previous one.
func elide(raw []byte, atts []driver.Attachment) (rest []byte, refs []attRef) {
	var enc []byte
	from, prev := 0, 0
	for i, a := range atts {
		if len(a.Data) < minElided || int64(len(a.Data)) != a.Size {
			continue
		}
		enc = slices.Grow(enc[:0], base64.StdEncoding.EncodedLen(len(a.Data)))[:base64.StdEncoding.EncodedLen(len(a.Data))]
		base64.StdEncoding.Encode(enc, a.Data)
		at := bytes.Index(raw[from:], enc[:64])
		if at < 0 {
			continue
		}
		start := from + at
		r, ok := matchWrapped(raw[start:], enc)
		if !ok {
			continue
		}
		if rest == nil {
			rest = make([]byte, 0, len(raw)/4)
		}
		rest = append(rest, raw[prev:start]...)
		r.gap, r.pos = start-prev, i
		refs = append(refs, r)
		prev = start + r.n
		from = prev
	}
	if len(refs) == 0 {
		return raw, nil
	}
	return append(rest, raw[prev:]...), refs
}

// matchWrapped reports whether b starts with enc wrapped in lines of one
// length and one line ending, and returns that wrapping (gap and pos
// unset). enc is longer than 64 bytes and b starts with its first 64.
func matchWrapped(b, enc []byte) (attRef, bool) {
	l := 0
	for l < len(b) && l < len(enc) && b[l] == enc[l] {
		l++
	}
	r := attRef{lineLen: l}
	if l < len(enc) { // the first line ends at l: what ends it?
		switch {
		case l+1 < len(b) && b[l] == '\r' && b[l+1] == '\n':
			r.crlf = true
		case l < len(b) && b[l] == '\n':
		default:
			return attRef{}, false
		}
	}
	eol := "\n"
	if r.crlf {
		eol = "\r\n"
	}
	p := 0
	for k := 0; k < len(enc); {
		n := min(r.lineLen, len(enc)-k)
		if p+n > len(b) || !bytes.Equal(b[p:p+n], enc[k:k+n]) {
			return attRef{}, false
		}
		p, k = p+n, k+n
		if k < len(enc) {
			if !bytes.HasPrefix(b[p:], []byte(eol)) {
				return attRef{}, false
			}
			p += len(eol)
		}
	}
	r.n = p
	return r, true
}

// appendRefs appends the header of an encAttachments raw mail: the number
// of refs, then each ref's gap, pos, lineLen, n and line ending (0 "\n",
// 1 "\r\n"), as unsigned varints.
func appendRefs(b []byte, refs []attRef) []byte {
	b = binary.AppendUvarint(b, uint64(len(refs)))
	for _, r := range refs {
		for _, v := range []int{r.gap, r.pos, r.lineLen, r.n, int(b2i(r.crlf))} {
			b = binary.AppendUvarint(b, uint64(v))
		}
	}
	return b
}

// readRefs parses the header appendRefs wrote and returns the refs, the
// flag byte and what follows it.
func readRefs(b []byte) ([]attRef, byte, []byte, error) {
	next := func() (int, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > 1<<40 {
			return 0, errors.New("bad header")
		}
		b = b[n:]
		return int(v), nil
	}
	count, err := next()
	if err != nil || count > len(b) {
		return nil, 0, nil, errors.New("bad header")
	}
	refs := make([]attRef, count)
	for i := range refs {
		var v [5]int
		for j := range v {
			if v[j], err = next(); err != nil {
				return nil, 0, nil, err
			}
		}
		refs[i] = attRef{gap: v[0], pos: v[1], lineLen: v[2], n: v[3], crlf: v[4] == 1}
		if refs[i].lineLen <= 0 {
			return nil, 0, nil, errors.New("bad header")
		}
	}
	if len(b) == 0 {
		return nil, 0, nil, errors.New("bad header")
	}
	return refs, b[0], b[1:], nil
}

// rebuild returns the raw mail of size bytes that rest and refs describe,
// taking the attachments' data from data (by position).
func rebuild(rest []byte, refs []attRef, data map[int][]byte, size int64) ([]byte, error) {
	out := make([]byte, 0, size)
	var enc []byte
	for _, r := range refs {
		if r.gap > len(rest) {
			return nil, errors.New("reference past the end")
		}
		out = append(out, rest[:r.gap]...)
		rest = rest[r.gap:]
		d, ok := data[r.pos]
		if !ok {
			return nil, fmt.Errorf("attachment %d is missing", r.pos)
		}
		n := base64.StdEncoding.EncodedLen(len(d))
		enc = slices.Grow(enc[:0], n)[:n]
		base64.StdEncoding.Encode(enc, d)
		start := len(out)
		for k := 0; k < len(enc); k += r.lineLen {
			if k > 0 {
				if r.crlf {
					out = append(out, '\r')
				}
				out = append(out, '\n')
			}
			out = append(out, enc[k:min(k+r.lineLen, len(enc))]...)
		}
		if len(out)-start != r.n {
			return nil, fmt.Errorf("attachment %d encodes to %d bytes, want %d", r.pos, len(out)-start, r.n)
		}
	}
	out = append(out, rest...)
	if int64(len(out)) != size {
		return nil, fmt.Errorf("%d bytes, want %d", len(out), size)
	}
	return out, nil
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
	rb := s.prepareRaw(raw, nil)
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.putRaw(ctx, tx, key, sql.NullInt64{}, rb, nanos(s.now()))
	})
}

// GetRaw returns the raw mail kept under key, decompressed, or NotFound.
func (s *store) GetRaw(ctx context.Context, key string) ([]byte, error) {
	raw, err := s.getRaw(ctx, s.on(nil), key)
	s.noteErr(err)
	return raw, err
}

// getRaw reads and decodes the raw mail kept under key through q.
func (s *store) getRaw(ctx context.Context, q queryer, key string) ([]byte, error) {
	var (
		enc  string
		size int64
		data []byte
		iid  sql.NullInt64
	)
	err := q.QueryRowContext(ctx, s.q.getRaw, hashOf(key)).Scan(&enc, &size, &data, &iid)
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
		out, err := inflate(data, size)
		if err != nil {
			return nil, errorf(driver.Internal, "raw mail of %q: %v", key, err)
		}
		return out, nil
	case encAttachments:
		out, err := s.rebuildRaw(ctx, q, data, size, iid)
		if err != nil {
			return nil, errorf(driver.Internal, "raw mail of %q: %v", key, err)
		}
		return out, nil
	}
	return nil, errorf(driver.Internal, "raw mail of %q: unknown encoding %q", key, enc)
}

// inflate returns the size bytes DEFLATE-compressed in data.
func inflate(data []byte, size int64) ([]byte, error) {
	out := bytes.NewBuffer(make([]byte, 0, size))
	r := flate.NewReader(bytes.NewReader(data))
	if _, err := io.Copy(out, io.LimitReader(r, size+1)); err != nil {
		return nil, err
	}
	if int64(out.Len()) != size {
		return nil, fmt.Errorf("%d bytes, want %d", out.Len(), size)
	}
	return out.Bytes(), nil
}

// rebuildRaw decodes an encAttachments raw mail of size bytes, filed as
// interaction iid, with the data of its attachments read through q.
func (s *store) rebuildRaw(ctx context.Context, q queryer, data []byte, size int64, iid sql.NullInt64) ([]byte, error) {
	refs, flag, rest, err := readRefs(data)
	if err != nil {
		return nil, err
	}
	if !iid.Valid {
		return nil, errors.New("attachments of no mail")
	}
	var restSize int64 = size
	for _, r := range refs {
		restSize -= int64(r.n)
	}
	if flag == 1 {
		if rest, err = inflate(rest, restSize); err != nil {
			return nil, err
		}
	}
	rows, err := q.QueryContext(ctx, s.q.attachmentData, iid.Int64)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	atts := map[int][]byte{}
	for rows.Next() {
		var (
			pos int
			d   []byte
		)
		if err := rows.Scan(&pos, &d); err != nil {
			return nil, err
		}
		atts[pos] = d
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return rebuild(rest, refs, atts, size)
}

// inlineRaw stores the raw mail kept under key whole again when it is
// kept without the bodies of its attachments, before they are replaced.
func (s *store) inlineRaw(ctx context.Context, tx *sql.Tx, key string) error {
	var enc string
	err := s.on(tx).QueryRowContext(ctx, s.q.rawEncoding, hashOf(key)).Scan(&enc)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && enc != encAttachments) {
		return nil
	}
	if err != nil {
		return err
	}
	raw, err := s.getRaw(ctx, s.on(tx), key)
	if err != nil {
		return err
	}
	rb := s.prepareRaw(raw, nil)
	_, err = s.on(tx).ExecContext(ctx, s.q.updateRaw, rb.enc, rb.data, hashOf(key))
	return err
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
		if err := s.inlineRaw(ctx, tx, key); err != nil {
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
