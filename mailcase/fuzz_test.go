package mailcase_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// addSeeds seeds a fuzz target with the tricky-mail corpus, a few generated
// mails and small edge cases.
func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, raw := range mailcasetest.GenerateCorpus(20, 3) {
		f.Add(raw)
	}
	for _, s := range []string{
		"", "\r\n", "From: a@b\r\n\r\n", "From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--",
		"Subject: =?utf-8?b?////?=\r\n\r\n", "From: a@b\nContent-Transfer-Encoding: base64\n\n====",
		"From: a@b\nContent-Type: message/rfc822\n\nFrom: c@d\n\n",
	} {
		f.Add([]byte(s))
	}
	// The header/body shapes of issue 10 (bodies that were dropped).
	for _, s := range issue10Shapes {
		f.Add([]byte(s.raw))
	}
	for _, s := range []string{"Return-Path: <x@y>\r\n", "Return-Path: <x@y>\r\nSubject: s\r\nbody\r\n\r\n", "a\rb:\r"} {
		f.Add([]byte(s))
	}
}

func checkParse(t *testing.T, raw []byte, parse func([]byte, *mailcase.ParseOptions) (*mailcase.Message, error), opts *mailcase.ParseOptions) *mailcase.Message {
	orig := bytes.Clone(raw)
	m, err := parse(raw, opts)
	if !bytes.Equal(orig, raw) {
		t.Fatal("input modified")
	}
	if (m == nil) == (err == nil) {
		t.Fatalf("message %v and error %v: exactly one must be nil", m != nil, err)
	}
	if err != nil {
		if mailcase.Code(err) != mailcase.InvalidArgument {
			t.Fatalf("error code %v, want InvalidArgument: %v", mailcase.Code(err), err)
		}
		return nil
	}
	if !bytes.Equal(m.Raw, orig) || m.Size != int64(len(orig)) {
		t.Fatal("raw mail not kept")
	}
	if !utf8.ValidString(m.Text) || !utf8.ValidString(m.HTML) || !utf8.ValidString(m.Subject) {
		t.Fatal("text, html or subject not UTF-8")
	}
	if m.ReplyText != m.Text {
		t.Fatal("ReplyText differs from Text")
	}
	if m.ID == "" {
		t.Fatal("empty ID")
	}
	for _, a := range m.Attachments {
		if a.Size != int64(len(a.Data)) {
			t.Fatalf("attachment size %d, data %d", a.Size, len(a.Data))
		}
		if strings.ContainsAny(a.Filename, "/\\") || a.Filename == "." || a.Filename == ".." || hasControl(a.Filename) {
			t.Fatalf("unsafe attachment name %q", a.Filename)
		}
	}
	// Decoded header values are single-line.
	if hasControl(m.Subject) {
		t.Fatalf("control character in subject %q", m.Subject)
	}
	addrs := append([]mailcase.Address{m.From, m.Sender}, m.To...)
	addrs = append(append(addrs, m.Cc...), m.ReplyTo...)
	for _, a := range addrs {
		if hasControl(a.Name) {
			t.Fatalf("control character in display name %q", a.Name)
		}
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			if hasControl(v) {
				t.Fatalf("control character in %s value %q", k, v)
			}
		}
	}
	return m
}

// hasControl reports the characters a single-line value must not carry.
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return r < 0x20 || r >= 0x7f && r <= 0x9f || r == 0x2028 || r == 0x2029
	}) >= 0
}

// FuzzParseMessage: never panic; exactly one of message and error; the raw
// mail kept; text valid UTF-8. Both parse paths are exercised, and tight
// limits too.
func FuzzParseMessage(f *testing.F) {
	addSeeds(f)
	small := &mailcase.ParseOptions{MaxHeaderBytes: 512, MaxDepth: 2, MaxParts: 4}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkParse(t, raw, mailcase.ParseMessage, nil)
		checkParse(t, raw, mailcase.ParseWithEnmime, nil)
		checkParse(t, raw, mailcase.ParseMessage, small)
	})
}

// FuzzDetectAuto parses then runs the automatic-mail and bounce detection:
// never panic, and the answers are consistent.
func FuzzDetectAuto(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := checkParse(t, raw, mailcase.ParseMessage, nil)
		if m == nil {
			return
		}
		a := mailcase.DetectAuto(m)
		b := mailcase.DetectBounce(m)
		switch a.Kind {
		case "", mailcase.AutoKindReply, mailcase.AutoKindBulk, mailcase.AutoKindList, mailcase.AutoKindBounce, mailcase.AutoKindLoop, mailcase.AutoKindNoReply:
		default:
			t.Fatalf("unknown kind %q", a.Kind)
		}
		if a.NoReply != (a.Kind != "") || a.NoReply != (a.Reason != "") || a.IsAuto && !a.NoReply {
			t.Fatalf("inconsistent %+v", a)
		}
		if b.IsBounce && !a.IsAuto {
			t.Fatalf("bounce %+v not automatic", b)
		}
		if !b.IsBounce && (b != mailcase.BounceInfo{}) {
			t.Fatalf("details without a bounce: %+v", b)
		}
	})
}
