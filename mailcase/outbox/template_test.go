package outbox_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

func sampleData() *outbox.TemplateData {
	return &outbox.TemplateData{
		Case:    mailcase.Case{ID: "c1", Number: "1234", Subject: "Printer <E42> & jams", Status: mailcase.StatusNew, Queue: "hardware"},
		Contact: mailcase.Contact{Name: "Ann O'Neil", Email: "ann@customer.example"},
		Queue:   "hardware",
		Agent:   mailcase.Employee{Name: "Bob Agent", Email: "bob@company.example"},
		Mail: outbox.TemplateMail{From: mailcase.Address{Name: "Ann", Email: "ann@customer.example"}, Subject: "Printer jams",
			Date: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), Text: "It jams.\nAgain.", MessageID: "m1@customer.example"},
		Mailbox:   outbox.TemplateMailbox{Name: "support", Address: "support@company.example"},
		Reference: "Case reference: CASE-1234-ABCD",
		Body:      "We replaced the drum.",
	}
}

// Every shipped template renders with full data and with empty data.
func TestShippedTemplatesRender(t *testing.T) {
	shipped := outbox.ShippedTemplates()
	kinds := make([]string, 0, len(shipped))
	for k := range shipped {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	assert.Equal(t, []string{"acknowledgement", "confirmation", "forward", "log-email", "notification"}, kinds)
	want := map[string]struct{ subject, text string }{
		"acknowledgement": {"[Case 1234] Printer <E42> & jams", "Hello Ann O'Neil,\n\nthank you for your mail. We opened case 1234"},
		"log-email":       {"[Case 1234] Printer <E42> & jams", "We replaced the drum.\n\n-- \nBob Agent\n\nCase reference: CASE-1234-ABCD\n"},
		"confirmation":    {"Added to case 1234: Printer jams", `Your mail "Printer jams" was added to case 1234 (Printer <E42> & jams).`},
		"forward":         {"[Case 1234] Printer jams", "Mail from ann@customer.example on case 1234, queue hardware:\n\n> It jams.\n> Again.\n"},
		"notification":    {"Case 1234: Printer <E42> & jams", "Case 1234 (new, queue hardware) needs attention.\n\nFrom: ann@customer.example\nSubject: Printer jams\n"},
	}
	for _, k := range kinds {
		t.Run(k, func(t *testing.T) {
			tpl, err := outbox.ParseTemplate(k, shipped[k])
			require.NoError(t, err)
			r, err := tpl.Render(sampleData())
			require.NoError(t, err)
			assert.Equal(t, want[k].subject, r.Subject)
			assert.Contains(t, r.Text, want[k].text)
			if shipped[k].HTML != "" {
				assert.Contains(t, r.HTML, "Hello Ann O&#39;Neil", "HTML values are escaped")
				assert.NotContains(t, r.HTML, "<E42>")
			}
			empty, err := tpl.Render(&outbox.TemplateData{})
			require.NoError(t, err, "a template renders with empty data")
			assert.NotContains(t, empty.Subject+empty.Text+empty.HTML, "<no value>")
		})
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		name string
		src  outbox.TemplateSource
		want string
	}{
		{"unknown field", outbox.TemplateSource{Subject: "Case {{.Case.Nmber}}", Text: "x"},
			"outbox: template ack: subject: subject:1:12: no field Case.Nmber in Case (the fields are ID, Number, Subject"},
		{"unknown top field", outbox.TemplateSource{Subject: "s", Text: "Hi {{.Customer}}"},
			"no field Customer in TemplateData"},
		{"inside with", outbox.TemplateSource{Subject: "s", Text: "{{with .Contact}}{{.Nme}}{{end}}"},
			"no field Nme in Contact"},
		{"inside if else", outbox.TemplateSource{Subject: "s", Text: "{{if .Queue}}a{{else}}{{.Agent.Mail}}{{end}}"},
			"no field Agent.Mail in Employee"},
		{"inside range", outbox.TemplateSource{Subject: "s", Text: "{{range .Case.Participants}}{{.X}}{{end}}"},
			"text:1:30: no field X: . is a string"},
		{"field of a string", outbox.TemplateSource{Subject: "s", Text: "{{.Case.Subject.Length}}"},
			"no field Case.Subject.Length: .Case.Subject is a string"},
		{"html field", outbox.TemplateSource{Subject: "s", Text: "t", HTML: "<p>{{.Mail.Sender}}</p>"},
			"html:1:"},
		{"parse error", outbox.TemplateSource{Subject: "s", Text: "{{if .Queue}}"},
			"outbox: template ack: text: text:1: unexpected EOF"},
		{"unknown function", outbox.TemplateSource{Subject: "{{shout .Queue}}", Text: "t"},
			`function "shout" not defined`},
		{"missing text", outbox.TemplateSource{Subject: "s"}, "a subject and a text body are required"},
		{"root variable", outbox.TemplateSource{Subject: "s", Text: "{{$.Bogus}}"}, "no field Bogus in TemplateData"},
		{"other variable", outbox.TemplateSource{Subject: "s", Text: "{{$c := .Case}}{{$c.Bogus}}"}, "a field of the variable $c cannot be checked"},
		{"range variable", outbox.TemplateSource{Subject: "s", Text: "{{range $i, $e := .Case.Participants}}{{$e.Bogus}}{{end}}"}, "a field of the variable $e cannot be checked"},
		{"define", outbox.TemplateSource{Subject: "s", Text: `{{define "x"}}{{.Bogus}}{{end}}{{template "x" .}}`}, "no field Bogus in TemplateData"},
		{"block", outbox.TemplateSource{Subject: "s", Text: `{{block "y" .}}{{.Nope}}{{end}}`}, "no field Nope in TemplateData"},
		{"chain on a pipe", outbox.TemplateSource{Subject: "s", Text: "{{(.Case).Bogus}}"}, "cannot be checked when the template is parsed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := outbox.ParseTemplate("ack", tc.src)
			require.Error(t, err)
			assert.True(t, errors.Is(err, outbox.ErrTemplate))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// A value with line breaks cannot split the subject.
func TestTemplateSubjectIsOneLine(t *testing.T) {
	tpl, err := outbox.ParseTemplate("x", outbox.TemplateSource{Subject: "Re: {{.Mail.Subject}}", Text: "{{.Mail.Subject}}"})
	require.NoError(t, err)
	r, err := tpl.Render(&outbox.TemplateData{Mail: outbox.TemplateMail{Subject: "a\r\nBcc: evil@attacker.example\n b"}})
	require.NoError(t, err)
	assert.Equal(t, "Re: a Bcc: evil@attacker.example b", r.Subject)
	assert.False(t, strings.ContainsAny(r.Subject, "\r\n"))
}
