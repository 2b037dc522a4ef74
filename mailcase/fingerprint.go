package mailcase

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sort"
	"strings"
)

// fingerprintVersion prefixes every content fingerprint. A fingerprint of
// another version (a later normalisation) is never compared: it is treated
// as matching, like a record filed before fingerprints existed.
const fingerprintVersion = "v1:"

// fingerprintFields are the header fields that identify a mail's content,
// lower case. Trace and transport fields (Received, Return-Path,
// Delivered-To, X-Original-To, Envelope-To, DKIM-Signature,
// Authentication-Results, X-Spam-*, ...) are left out on purpose: MTAs
// add or rewrite them on every delivery.
var fingerprintFields = [...]string{
	"cc", "content-transfer-encoding", "content-type", "date", "from",
	"message-id", "subject", "to",
}

// ContentFingerprint returns the fingerprint of a mail's content: "v1:"
// and the hex SHA-256 of
//
//   - the header fields From, To, Cc, Subject, Date, Message-ID,
//     Content-Type and Content-Transfer-Encoding, each occurrence as
//     "name:value\n" with the name in lower case and the value unfolded,
//     runs of white space made one space and trimmed; sorted by name,
//     occurrences of one name in their order; then
//   - a blank line and the body: the bytes after the header, with line
//     endings made CRLF (an LMTP delivery and a pipe delivery of one mail
//     agree), mbox "From " quoting undone (">From " and ">>From " read as
//     "From "), and trailing blank lines and white space removed.
//
// Everything else in the header, notably the trace fields every hop adds
// (Received, Return-Path, Delivered-To, X-Original-To), an mbox "From "
// separator line and the folding of the header lines, does not change it,
// so a redelivery of a mail has the fingerprint of the first delivery,
// while a different mail under a reused Message-ID (another Subject,
// From, Date or body) has another. The header ends at the first empty
// line, or at the first line that is neither a field nor a continuation
// line (tolerant readers start the body there).
func ContentFingerprint(raw []byte) string {
	type kv struct{ name, value string }
	var fields []kv
	rest := raw
	// An mbox separator ("From sender date") is not part of the mail.
	if bytes.HasPrefix(rest, []byte("From ")) {
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		} else {
			rest = nil
		}
	}
	cur := -1 // index in fields of the field being unfolded, -1 for a skipped one
	inField := false
	for len(rest) > 0 {
		line := rest
		next := []byte(nil)
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, next = rest[:i], rest[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			rest = next
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !inField {
				break // no field to continue: the body starts here
			}
			if cur >= 0 {
				fields[cur].value += " " + string(line)
			}
			rest = next
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || !isFieldName(name) {
			break // not a field: the body starts here
		}
		inField = true
		cur = -1
		n := strings.ToLower(string(name))
		for _, f := range fingerprintFields {
			if f == n {
				fields = append(fields, kv{n, string(value)})
				cur = len(fields) - 1
				break
			}
		}
		rest = next
	}
	for i := range fields {
		fields[i].value = strings.Join(strings.Fields(fields[i].value), " ")
	}
	sort.SliceStable(fields, func(a, b int) bool { return fields[a].name < fields[b].name })

	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f.name))
		h.Write([]byte{':'})
		h.Write([]byte(f.value))
		h.Write([]byte{'\n'})
	}
	h.Write([]byte{'\n'})
	// Trailing blank lines and white space are not content.
	writeBody(h, bytes.TrimRight(rest, " \t\r\n"))
	return fingerprintVersion + hex.EncodeToString(h.Sum(nil))
}

// writeBody writes the body as ContentFingerprint hashes it: each line
// with CRLF, a quoted "From " line unquoted.
func writeBody(w io.Writer, body []byte) {
	if len(body) > 0 && canonicalBody(body) {
		// What writeLines would write, in two calls: most mail has CRLF
		// line endings and no quoted "From " line.
		w.Write(body)
		w.Write([]byte("\r\n"))
		return
	}
	writeLines(w, body)
}

// writeLines is writeBody line by line.
func writeLines(w io.Writer, body []byte) {
	for len(body) > 0 {
		line := body
		next := []byte(nil)
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, next = body[:i], body[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
			line = q
		}
		w.Write(line)
		w.Write([]byte("\r\n"))
		body = next
	}
}

// canonicalBody reports whether the line-by-line normalisation of
// ContentFingerprint leaves body as it is (but for the CRLF after its last
// line): every LF follows a CR and no line starts with '>'.
func canonicalBody(body []byte) bool {
	if body[0] == '>' {
		return false
	}
	for i := 0; ; {
		j := bytes.IndexByte(body[i:], '\n')
		if j < 0 {
			return true
		}
		i += j
		if i == 0 || body[i-1] != '\r' || i+1 < len(body) && body[i+1] == '>' {
			return false
		}
		i++
	}
}

// isFieldName reports whether b is a header field name (printable ASCII
// without colon or space).
func isFieldName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// sameContent reports whether a filed record's fingerprint and the new
// mail's agree. A record without one (filed before fingerprints existed,
// or by a store that keeps none) or of another version is taken as
// matching: treating a redelivery as a new mail would file it twice.
func sameContent(filed, fp string) bool {
	if filed == "" || fp == "" || !strings.HasPrefix(filed, fingerprintVersion) || !strings.HasPrefix(fp, fingerprintVersion) {
		return true
	}
	return filed == fp
}

// reusedIDKey is the key of a mail whose Message-ID is already filed for
// different content: the original key, "\x00fp:" and the first 16 hex
// digits (64 bits) of the fingerprint. It depends on the content only, so
// the redelivery of that mail gets the same key and is a duplicate.
func reusedIDKey(key, fp string) string {
	return key + "\x00fp:" + strings.TrimPrefix(fp, fingerprintVersion)[:16]
}
