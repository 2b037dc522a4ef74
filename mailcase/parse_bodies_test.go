package mailcase_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// issue10Shapes are the header/body shapes whose bodies were dropped while
// the mail was reported filed (issue 10, item 2), with what must be kept.
// They also seed the parse fuzz targets.
var issue10Shapes = []struct {
	name        string
	raw         string
	subject     string   // "" when the mail has none
	text        []string // substrings the text must hold
	notText     []string // substrings the text must not hold (header lines)
	separator   bool     // ProblemMissingSeparator expected
	bareCR      bool     // ProblemBareCR expected
	fromAddress string
}{
	{
		name: "no blank line between header and body",
		raw: "From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: Printer broken\r\n" +
			"Message-ID: <nb1@example.org>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n" +
			"My printer has been broken since Monday.\r\nPlease call me back.\r\n",
		subject: "Printer broken", text: []string{"My printer has been broken since Monday.", "Please call me back."},
		notText: []string{"Subject:"}, separator: true, fromAddress: "ann@example.org",
	},
	{
		name: "header-less mail behind Return-Path (LMTP, pipe flags=R)",
		raw:  "Return-Path: <x@y>\r\nHello, the invoice is wrong.\r\nRegards, Bob\r\n",
		text: []string{"Hello, the invoice is wrong.", "Regards, Bob"}, separator: true,
	},
	{
		name: "header-less mail behind Return-Path, LF only",
		raw:  "Return-Path: <x@y>\nHello, the invoice is wrong.\nRegards, Bob\n",
		text: []string{"Hello, the invoice is wrong.", "Regards, Bob"}, separator: true,
	},
	{
		name: "CR-only line endings (old Mac)",
		raw: "From: ann@example.org\rTo: support@example.com\rSubject: Old Mac mail\rMessage-ID: <cr1@example.org>\r\r" +
			"Body written on a Mac.\rSecond line.\r",
		subject: "Old Mac mail", text: []string{"Body written on a Mac.", "Second line."},
		notText: []string{"Subject:"}, bareCR: true, fromAddress: "ann@example.org",
	},
	{
		name: "LF-only line endings",
		raw: "From: ann@example.org\nTo: support@example.com\nSubject: Unix mail\nMessage-ID: <lf1@example.org>\n\n" +
			"Body with LF endings.\nSecond line.\n",
		subject: "Unix mail", text: []string{"Body with LF endings.", "Second line."},
		notText: []string{"Subject:"}, fromAddress: "ann@example.org",
	},
	{
		name: "CRLF line endings",
		raw: "From: ann@example.org\r\nTo: support@example.com\r\nSubject: Internet mail\r\nMessage-ID: <crlf1@example.org>\r\n\r\n" +
			"Body with CRLF endings.\r\nSecond line.\r\n",
		subject: "Internet mail", text: []string{"Body with CRLF endings.", "Second line."},
		notText: []string{"Subject:"}, fromAddress: "ann@example.org",
	},
}

func TestParseKeepsBodies(t *testing.T) {
	paths := []struct {
		name  string
		parse func([]byte, *mailcase.ParseOptions) (*mailcase.Message, error)
	}{
		{name: "splitter", parse: mailcase.ParseMessage},
		{name: "enmime", parse: mailcase.ParseWithEnmime},
	}
	for _, tc := range issue10Shapes {
		for _, p := range paths {
			t.Run(tc.name+"/"+p.name, func(t *testing.T) {
				m, err := p.parse([]byte(tc.raw), nil)
				require.NoError(t, err)
				assert.Equal(t, tc.raw, string(m.Raw), "the raw mail is kept as received")
				assert.Equal(t, tc.subject, m.Subject)
				assert.Equal(t, tc.fromAddress, m.From.Email)
				for _, s := range tc.text {
					assert.Contains(t, m.Text, s)
				}
				for _, s := range tc.notText {
					assert.NotContains(t, m.Text, s)
				}
				names := problemNames(m)
				assert.Equal(t, tc.separator, contains(names, mailcase.ProblemMissingSeparator), "problems: %v", m.Problems)
				assert.Equal(t, tc.bareCR, contains(names, mailcase.ProblemBareCR), "problems: %v", m.Problems)
			})
		}
	}
}

// A broken line inside a header that resumes and ends with its blank line
// is not the start of the body: the later fields are kept, and so is the
// line (in the previous field's value, as enmime keeps it).
func TestBrokenLineInsideHeader(t *testing.T) {
	raw := []byte("From: a@b.example\r\nTo: s@x.example\r\nthis line is no field\r\nSubject: kept\r\nMessage-ID: <in@x>\r\n\r\nthe body\r\n")
	for _, parse := range []func([]byte, *mailcase.ParseOptions) (*mailcase.Message, error){mailcase.ParseMessage, mailcase.ParseWithEnmime} {
		m, err := parse(raw, nil)
		require.NoError(t, err)
		assert.Equal(t, "kept", m.Subject)
		assert.Equal(t, "in@x", m.ID)
		assert.Equal(t, "the body", strings.TrimSpace(m.Text))
		assert.Contains(t, m.Header.Get("To"), "this line is no field")
	}
}

// A MIME part whose header has no blank line after it keeps its body too.
func TestMissingSeparatorMultipartParts(t *testing.T) {
	raw := []byte("From: a@b.example\r\nMessage-ID: <mp@x>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\nPart text without a blank line.\r\n--B--\r\n")
	m, err := mailcase.ParseMessage(raw, nil)
	require.NoError(t, err)
	assert.Contains(t, m.Text, "Part text without a blank line.")
	assert.Contains(t, problemNames(m), mailcase.ProblemMissingSeparator)
}

// Through the pipeline: the header-less mail behind Return-Path opens a
// case that holds its body, not an empty case.
func TestReturnPathMailIsFiledWithBody(t *testing.T) {
	s := plStore(t)
	p := plPipeline(t, s, nil)
	for i, raw := range []string{
		"Return-Path: <x@y>\r\nHello, the invoice is wrong.\r\nRegards, Bob\r\n",
		"From: ann@example.org\r\nSubject: no separator\r\nMessage-ID: <nb2@example.org>\r\nThe body of the second mail.\r\n",
		"From: ann@example.org\rSubject: Old Mac mail\rMessage-ID: <cr2@example.org>\r\rBody written on a Mac.\r",
	} {
		res, err := p.Process(context.Background(), []byte(raw), nil)
		require.NoError(t, err, "mail %d", i)
		require.NotEmpty(t, res.Outcome.CaseID, "mail %d: %s", i, plSteps(res))
	}
	var texts []string
	for _, c := range plCases(t, s) {
		for _, e := range plCaseMails(t, s, c.ID) {
			texts = append(texts, e.Text)
		}
	}
	all := strings.Join(texts, "\n")
	assert.Contains(t, all, "Hello, the invoice is wrong.")
	assert.Contains(t, all, "The body of the second mail.")
	assert.Contains(t, all, "Body written on a Mac.")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The pipeline hands the raw mail to the store when filing: kept once per
// mail (a redelivery with other trace headers keeps the first bytes), not
// for the summary filed on the sender's record, and not apart for an
// oversized mail (its raw mail is its attachment).
func TestPipelineKeepsRawOnce(t *testing.T) {
	ctx := context.Background()
	s := plStore(t)
	p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", MaxSize: 4000}})
	for _, addr := range []string{"ann@customer.example", "bob@customer.example"} {
		_, err := s.CreateContact(ctx, &mailcase.NewContact{Email: addr})
		require.NoError(t, err)
	}
	first := plMail("Ann <ann@customer.example>", "Printer", "raw1@customer.example", "It is broken.", "Cc: bob@customer.example")
	res := plProcess(t, p, first)
	require.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
	redelivered := append([]byte("Received: from mx2.example by mx.example; Mon, 02 Mar 2026 10:05:00 +0000\r\n"), first...)
	require.Equal(t, mailcase.ActionDuplicate, plProcess(t, p, redelivered).Outcome.Action)
	reply := plReply("Bob <bob@customer.example>", "Printer", "raw2@customer.example", "raw1@customer.example")
	res = plProcess(t, p, reply)
	require.Equal(t, mailcase.ActionAppended, res.Outcome.Action, plSteps(res))
	big := plMail("Ann <ann@customer.example>", "Big", "raw3@customer.example", strings.Repeat("x", 5000))
	require.Equal(t, mailcase.ActionCreated, plProcess(t, p, big).Outcome.Action)

	keys, err := s.RawKeys(ctx, "", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"support\x00raw1@customer.example", "support\x00raw2@customer.example"}, keys,
		"one raw mail per analysed mail; none for the sender's summary or the oversized mail")
	got, ok, err := s.GetRaw(ctx, keys[0])
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, first, got, "the first delivery's bytes are kept")
	got, _, err = s.GetRaw(ctx, keys[1])
	require.NoError(t, err)
	assert.Equal(t, reply, got)
	var summaries int
	for _, in := range plCaseless(t, s) {
		if in.Email != nil && in.Email.Summary {
			summaries++
		}
	}
	assert.Positive(t, summaries, "the reply filed a summary on the sender's record (checked above: without raw)")
}
