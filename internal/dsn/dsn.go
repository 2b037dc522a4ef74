// Package dsn reads delivery status notifications (RFC 3464): the
// message/delivery-status part of a bounce, and the Message-ID of the
// returned message. Reading is tolerant and bounded: linear in the input,
// at most MaxStatusBytes of a report and MaxStatusValueBytes of one value.
package dsn

import (
	"bytes"
	"regexp"
	"strings"
	"unicode/utf8"
)

var enhancedStatus = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// Status is what ReadStatus found in a delivery-status report. Values are
// as written in the report (not normalised), except Status and Permanent.
type Status struct {
	// OriginalMessageIDs are the Original-Message-ID and
	// X-Original-Message-ID values of the report, in order.
	OriginalMessageIDs []string
	// Recipient is the Final-Recipient (else Original-Recipient) of the
	// chosen recipient block without its address type ("rfc822;"): the
	// first block whose Action is failed, else the first recipient block.
	// It is "" when the report has no recipient block.
	Recipient string
	// Status is the enhanced status code (RFC 3463) of the chosen block,
	// else the first token of its Status field, at most 16 bytes.
	Status string
	// Permanent reports a 5.x.x status, or a failed Action without a
	// status.
	Permanent bool
}

// ReadStatus reads a message/delivery-status body (RFC 3464): a
// per-message block then per-recipient blocks of header fields.
//
// Only the first MaxStatusBytes of data are read: a report holds a few
// short blocks, so the rest of a larger part is noise or an attack.
func ReadStatus(data []byte) Status {
	var st Status
	if len(data) > MaxStatusBytes {
		data = data[:MaxStatusBytes]
	}
	blocks := statusBlocks(data)
	chosen := -1
	for i, b := range blocks {
		for _, k := range []string{"original-message-id", "x-original-message-id"} {
			if v := b[k]; v != "" {
				st.OriginalMessageIDs = append(st.OriginalMessageIDs, v)
			}
		}
		if b["final-recipient"] == "" && b["original-recipient"] == "" {
			continue
		}
		if chosen < 0 {
			chosen = i
		}
		action := strings.ToLower(firstToken(b["action"]))
		if action == "failed" && strings.ToLower(firstToken(blocks[chosen]["action"])) != "failed" {
			chosen = i
		}
	}
	if chosen < 0 {
		return st
	}
	b := blocks[chosen]
	rcpt := b["final-recipient"]
	if rcpt == "" {
		rcpt = b["original-recipient"]
	}
	if _, after, ok := strings.Cut(rcpt, ";"); ok {
		rcpt = after
	}
	st.Recipient = strings.TrimSpace(rcpt)
	if code := enhancedStatus.FindString(b["status"]); code != "" {
		st.Status = code
	} else {
		st.Status = clip(firstToken(b["status"]), 16)
	}
	st.Permanent = strings.HasPrefix(st.Status, "5") ||
		st.Status == "" && strings.EqualFold(firstToken(b["action"]), "failed")
	return st
}

// Limits of the delivery-status reading: the bytes of the part read, and
// the length of one (unfolded) field value. A real report is a few hundred
// bytes per recipient.
const (
	MaxStatusBytes      = 64 << 10
	MaxStatusValueBytes = 4 << 10
)

// statusBlocks splits header-style blocks separated by blank lines into
// maps with lower-case keys (first value wins). Folded values are unfolded
// in one buffer and cut at MaxStatusValueBytes, so the work is linear in
// len(data).
func statusBlocks(data []byte) []map[string]string {
	var blocks []map[string]string
	cur := map[string]string{}
	last := ""     // key whose value the continuation lines extend
	var val []byte // value of last, while it is being read
	flushValue := func() {
		if last != "" {
			cur[last] = string(val)
			last = ""
		}
	}
	flush := func() {
		flushValue()
		if len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = map[string]string{}
		}
	}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" && len(val) < MaxStatusValueBytes {
				val = append(val, ' ')
				val = append(val, bytes.TrimSpace(line)...)
				if len(val) > MaxStatusValueBytes {
					val = val[:MaxStatusValueBytes]
				}
			}
			continue
		}
		flushValue()
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		key := strings.ToLower(strings.TrimSpace(string(k)))
		if _, dup := cur[key]; !dup {
			v = bytes.TrimSpace(v)
			if len(v) > MaxStatusValueBytes {
				v = v[:MaxStatusValueBytes]
			}
			cur[key] = "" // reserve: a repeated key is ignored
			last, val = key, append(val[:0], v...)
		}
	}
	flush()
	return blocks
}

// HeaderMessageID returns the value of the Message-ID field of a header
// section (the start of data, as in a returned message/rfc822 or
// text/rfc822-headers part), unfolded, not normalised; "" when it has none.
// At most 256 KiB of data are read.
func HeaderMessageID(data []byte) string {
	const limit = 256 << 10
	if len(data) > limit {
		data = data[:limit]
	}
	var cur []byte
	inID := false
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if inID {
				cur = append(cur, line...)
			}
			continue
		}
		if inID {
			break
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if ok && strings.EqualFold(strings.TrimSpace(string(k)), "Message-Id") {
			inID = true
			cur = append(cur[:0], v...)
		}
	}
	if !inID {
		return ""
	}
	return string(cur)
}

func firstToken(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t;(,"); i >= 0 {
		v = v[:i]
	}
	return v
}

// clip shortens s to n bytes (on a rune boundary).
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
