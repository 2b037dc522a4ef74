package threading

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// MinKeyLen is the shortest HMAC key accepted.
const MinKeyLen = 16

// Errors returned by the constructors.
var (
	// ErrKey means the HMAC key is missing or shorter than MinKeyLen.
	ErrKey = errors.New("threading: HMAC key must be at least 16 bytes")
	// ErrDomain means the Message-ID domain is not a plain host name.
	ErrDomain = errors.New("threading: invalid Message-ID domain")
)

// Lengths of the truncated HMAC-SHA256 tags, in bytes.
const (
	midMACLen   = 10 // Message-IDs: 80 bits
	tokenMACLen = 8  // subject/body tokens and context IDs: 64 bits
	tiGUIDLen   = 16 // Thread-Index conversation GUID: 128 bits
	maxIDLen    = 128
	// maxThreadIndex bounds a generated Thread-Index, in bytes before
	// base64 (896 characters, within the 998-byte line limit).
	maxThreadIndex = 672
)

// b32 is lower-case RFC 4648 base32 without padding. Decoding upper-cases
// first, so encoded values survive case changes.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func b32enc(p []byte) string { return strings.ToLower(b32.EncodeToString(p)) }

func b32dec(s string) ([]byte, error) { return b32.DecodeString(strings.ToUpper(s)) }

// Codec signs and verifies the thread markers carried by outgoing mail:
// Message-IDs, subject/body tokens, body context IDs and Thread-Index
// conversation GUIDs. Each marker's tag is a truncated HMAC-SHA256 over a
// purpose label and the value, so a tag made for one purpose never verifies
// for another. A Codec is immutable and safe for concurrent use.
type Codec struct {
	key    []byte
	domain string
	now    func() time.Time
}

// NewCodec returns a Codec for key (at least MinKeyLen bytes) and the
// domain written on the right of generated Message-IDs ("" means
// "emailcrm.invalid").
func NewCodec(key []byte, domain string) (*Codec, error) {
	if len(key) < MinKeyLen {
		return nil, ErrKey
	}
	if domain == "" {
		domain = "emailcrm.invalid"
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if !validDomain(domain) {
		return nil, fmt.Errorf("%w: %q", ErrDomain, domain)
	}
	return &Codec{key: append([]byte(nil), key...), domain: domain, now: time.Now}, nil
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func (c *Codec) mac(purpose string, n int, parts ...string) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte(purpose))
	for _, p := range parts {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(p)))
		h.Write(l[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)[:n]
}

// MessageID returns a new signed Message-ID (without angle brackets) for
// mail about case id: c.<id-b32>.<nonce>.<mac>@domain. It decodes to the
// case without a store lookup (ParseMessageID).
func (c *Codec) MessageID(id mailcase.CaseID) (string, error) {
	if id == "" || len(id) > maxIDLen {
		return "", fmt.Errorf("threading: case ID of length %d cannot be encoded", len(id))
	}
	var nb [8]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return "", fmt.Errorf("threading: nonce: %w", err)
	}
	ids, nonce := b32enc([]byte(id)), b32enc(nb[:])
	tag := b32enc(c.mac("mid", midMACLen, ids, nonce))
	return "c." + ids + "." + nonce + "." + tag + "@" + c.domain, nil
}

// ParseMessageID returns the case named by a Message-ID this Codec signed.
// ok is false for any other ID, including one with a wrong signature. The
// domain part is not checked (installations may change domain); the tag is.
func (c *Codec) ParseMessageID(msgid string) (id mailcase.CaseID, ok bool) {
	msgid = mailcase.NormalizeMessageID(msgid)
	at := strings.LastIndexByte(msgid, '@')
	if at < 0 || len(msgid) > 400 {
		return "", false
	}
	local := msgid[:at]
	if len(local) < 2 || (local[0] != 'c' && local[0] != 'C') || local[1] != '.' {
		return "", false
	}
	parts := strings.Split(local[2:], ".")
	if len(parts) != 3 {
		return "", false
	}
	ids, nonce, tag := strings.ToLower(parts[0]), strings.ToLower(parts[1]), parts[2]
	got, err := b32dec(tag)
	if err != nil || len(got) != midMACLen {
		return "", false
	}
	if !hmac.Equal(got, c.mac("mid", midMACLen, ids, nonce)) {
		return "", false
	}
	raw, err := b32dec(ids)
	if err != nil || len(raw) == 0 {
		return "", false
	}
	return mailcase.CaseID(raw), true
}

// Token returns the signed thread token for case id, for a subject or a
// body: "[ref:<id-b32>:<mac>]". It is case-insensitive and contains no
// space, so it survives lower-casing, HTML rendering and line wrapping.
func (c *Codec) Token(id mailcase.CaseID) (string, error) {
	if id == "" || len(id) > maxIDLen {
		return "", fmt.Errorf("threading: case ID of length %d cannot be encoded", len(id))
	}
	ids := b32enc([]byte(id))
	return "[ref:" + ids + ":" + b32enc(c.mac("tok", tokenMACLen, ids)) + "]", nil
}

// VerifyToken checks the inside of a token ("<id-b32>:<mac>", any case).
func (c *Codec) verifyToken(body string) (mailcase.CaseID, bool) {
	i := strings.IndexByte(body, ':')
	if i <= 0 {
		return "", false
	}
	ids, tag := strings.ToLower(body[:i]), body[i+1:]
	got, err := b32dec(tag)
	if err != nil || len(got) != tokenMACLen {
		return "", false
	}
	if !hmac.Equal(got, c.mac("tok", tokenMACLen, ids)) {
		return "", false
	}
	raw, err := b32dec(ids)
	if err != nil || len(raw) == 0 {
		return "", false
	}
	return mailcase.CaseID(raw), true
}

// ContextID returns the signed body context ID for a case number:
// "ctx:<number>.<mac>". Unlike a token it names the case by its human
// number, so it also works for stores whose IDs are long or opaque.
//
// The tag covers the number exactly as written (letter case included),
// because the store looks numbers up exactly as written: a context ID made
// for "AB12" does not verify for "ab12". Only the tag is case-insensitive.
func (c *Codec) ContextID(number string) (string, error) {
	if !validNumber(number) {
		return "", fmt.Errorf("threading: case number %q cannot be encoded", number)
	}
	return "ctx:" + number + "." + b32enc(c.mac("ctx", tokenMACLen, number)), nil
}

// verifyContext checks the tag of a context ID over the exact number.
func (c *Codec) verifyContext(number, tag string) bool {
	got, err := b32dec(tag)
	if err != nil || len(got) != tokenMACLen {
		return false
	}
	return hmac.Equal(got, c.mac("ctx", tokenMACLen, number))
}

func validNumber(n string) bool {
	if n == "" || len(n) > 40 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// conversationGUID is the signed Thread-Index conversation GUID of a case.
func (c *Codec) conversationGUID(id mailcase.CaseID) []byte {
	return c.mac("ti", tiGUIDLen, string(id))
}

// ThreadIndex returns a Thread-Index value (Microsoft conversation index)
// for a new mail about case id. When parent is a valid Thread-Index of the
// mail being answered, a 5-byte child block is appended to it, as Outlook
// does; otherwise a new index whose conversation GUID is signed for the
// case is returned, which lets the resolver recognise replies by
// Thread-Index alone.
func (c *Codec) ThreadIndex(id mailcase.CaseID, parent string) string {
	now := c.now().UTC()
	ft := filetime(now)
	if p, ok := decodeThreadIndex(parent); ok {
		if len(p)+5 > maxThreadIndex {
			// Too many child blocks for one header line: keep the
			// conversation header (its GUID groups the conversation)
			// and start the child blocks over.
			p = p[:22]
		}
		// Child block: 1 bit code, 31 bits time delta, 4 bits random, 4 bits sequence.
		// We use the coarse form: delta in units of 2^18 * 100ns (about 26ms),
		// clamped to 31 bits.
		base := binary.BigEndian.Uint64(append(p[:6:6], 0, 0))
		delta := uint64(0)
		if ft > base {
			delta = (ft - base) >> 18
		}
		if delta >= 1<<31 {
			delta = 1<<31 - 1
		}
		var blk [5]byte
		binary.BigEndian.PutUint32(blk[:4], uint32(delta))
		var r [1]byte
		_, _ = rand.Read(r[:])
		blk[4] = r[0]
		out := append(append([]byte(nil), p...), blk[:]...)
		return base64.StdEncoding.EncodeToString(out)
	}
	var hdr [22]byte
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], ft)
	copy(hdr[:6], t[:6])
	copy(hdr[6:], c.conversationGUID(id))
	return base64.StdEncoding.EncodeToString(hdr[:])
}

// filetime is t as a Windows FILETIME (100ns since 1601).
func filetime(t time.Time) uint64 {
	const epochDiff = 116444736000000000
	ns := t.UnixNano()
	if ns < 0 {
		return epochDiff
	}
	return uint64(ns/100) + epochDiff
}

// decodeThreadIndex decodes a Thread-Index value: a 22-byte header
// followed by 5-byte child blocks, base64-encoded.
func decodeThreadIndex(v string) ([]byte, bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 4096 {
		return nil, false
	}
	p, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(p) < 22 || (len(p)-22)%5 != 0 {
		return nil, false
	}
	return p, true
}
