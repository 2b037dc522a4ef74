package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/events"
)

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"ev_1","kind":"case.created"}`)
	at := time.Unix(1_800_000_000, 0)
	h := events.Sign(testSecret, at, body)
	require.True(t, strings.HasPrefix(h, "t=1800000000,v1="), h)
	other := events.Sign([]byte("another-secret-0123456789"), at, body)
	_, otherSig, _ := strings.Cut(other, ",")
	cases := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		tol    time.Duration
		want   error
	}{
		{name: "valid", secret: testSecret, header: h, body: body, now: at},
		{name: "valid within the tolerance", secret: testSecret, header: h, body: body, now: at.Add(4 * time.Minute)},
		{name: "clock skew ahead", secret: testSecret, header: h, body: body, now: at.Add(-4 * time.Minute)},
		{name: "replay after the default tolerance", secret: testSecret, header: h, body: body, now: at.Add(5*time.Minute + time.Second), want: events.ErrSignatureExpired},
		{name: "replay after a custom tolerance", secret: testSecret, header: h, body: body, now: at.Add(31 * time.Second), tol: 30 * time.Second, want: events.ErrSignatureExpired},
		{name: "tampered body", secret: testSecret, header: h, body: []byte(`{"id":"ev_2"}`), now: at, want: events.ErrSignatureMismatch},
		{name: "wrong secret", secret: []byte("wrong-secret-0123456789"), header: h, body: body, now: at, want: events.ErrSignatureMismatch},
		{name: "timestamp moved", secret: testSecret, header: strings.Replace(h, "t=1800000000", "t=1800000100", 1), body: body, now: at.Add(100 * time.Second), want: events.ErrSignatureMismatch},
		{name: "rotated secrets: one of two matches", secret: testSecret, header: h + "," + otherSig, body: body, now: at},
		{name: "empty", secret: testSecret, header: "", body: body, now: at, want: events.ErrSignatureMalformed},
		{name: "no timestamp", secret: testSecret, header: strings.SplitN(h, ",", 2)[1], body: body, now: at, want: events.ErrSignatureMalformed},
		{name: "short signature", secret: testSecret, header: "t=1800000000,v1=abcd", body: body, now: at, want: events.ErrSignatureMalformed},
		{name: "two timestamps", secret: testSecret, header: "t=1," + h, body: body, now: at, want: events.ErrSignatureMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := events.Verify(tc.secret, tc.header, tc.body, tc.now, tc.tol)
			if tc.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	body := []byte(`{"id":"x"}`)
	f.Add(events.Sign(testSecret, time.Unix(1_800_000_000, 0), body), body)
	f.Add("t=,v1=", []byte{})
	f.Add("t=1,v1=zz,v1", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		now := time.Unix(1_800_000_000, 0)
		err := events.Verify(testSecret, header, b, now, 0)
		// Never a panic; a header that verifies carries the signature of
		// the body under this secret, so it fails under another one and
		// for a changed body.
		if err == nil {
			if events.Verify([]byte("a-different-secret-0123"), header, b, now, 0) == nil {
				t.Fatalf("header %q verifies with two secrets", header)
			}
			if events.Verify(testSecret, header, append(b, 'x'), now, 0) == nil {
				t.Fatalf("header %q verifies a changed body", header)
			}
		}
	})
}
