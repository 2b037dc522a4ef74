package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header carrying a webhook delivery's signature.
const SignatureHeader = "Emailcrm-Signature"

// IdempotencyHeader carries the event ID, the same on every attempt. The
// signature does not cover it: the "id" of the signed body is the same
// value, and the one to trust (Verifier uses it).
const IdempotencyHeader = "Emailcrm-Idempotency-Key"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock when Verify is given a zero tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	// ErrSignatureMalformed: the header is missing or not of the form
	// "t=<unix seconds>,v1=<hex>".
	ErrSignatureMalformed = errors.New("events: malformed webhook signature")
	// ErrSignatureMismatch: no v1 signature matches the body and secret.
	ErrSignatureMismatch = errors.New("events: webhook signature does not match")
	// ErrSignatureExpired: the signature matches but its timestamp is
	// outside the tolerance (a replayed or badly delayed delivery).
	ErrSignatureExpired = errors.New("events: webhook signature timestamp outside the tolerance")
)

func mac(secret []byte, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the Emailcrm-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := t.Unix()
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// Verify checks the Emailcrm-Signature header value of a delivery whose
// body is body, against secret, at the receiver's time now: some v1
// signature must match (several are accepted while a secret is rotated),
// and the timestamp must be within tolerance of now, before or after (0
// means DefaultTolerance), so a delivery replayed later than that is
// rejected. It returns nil, ErrSignatureMalformed, ErrSignatureMismatch or
// ErrSignatureExpired. Receivers deduplicate accepted deliveries by the
// event ID: the "id" of the signed body, which the Emailcrm-Idempotency-Key
// header repeats (headers are not signed).
//
// Verify alone does not stop a delivery replayed within the tolerance; a
// receiver that must not act on one twice uses a [Verifier].
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	_, _, err := verify(secret, header, body, now, tolerance)
	return err
}

// verify is Verify, returning the signature's timestamp and the MAC that
// matched.
func verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) (int64, []byte, error) {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts int64
	haveTS := false
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return 0, nil, ErrSignatureMalformed
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || haveTS {
				return 0, nil, ErrSignatureMalformed
			}
			ts, haveTS = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return 0, nil, ErrSignatureMalformed
			}
			sigs = append(sigs, b)
		}
	}
	if !haveTS || len(sigs) == 0 {
		return 0, nil, ErrSignatureMalformed
	}
	want := mac(secret, ts, body)
	matched := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return 0, nil, ErrSignatureMismatch
	}
	d := now.Sub(time.Unix(ts, 0))
	if d > tolerance || d < -tolerance {
		return 0, nil, ErrSignatureExpired
	}
	return ts, want, nil
}
