package outbox

// Kinds of message the SDK sends, the keys of ShippedTemplates.
const (
	KindAcknowledgement = "acknowledgement"
	KindLogEmail        = "log-email"
	KindConfirmation    = "confirmation"
	KindForward         = "forward"
	KindNotification    = "notification"
)

// ShippedTemplates returns the templates the SDK ships, by kind: a
// mailbox or queue that configures none uses these. Each renders with any
// TemplateData (fields that are empty read sensibly).
func ShippedTemplates() map[string]TemplateSource {
	return map[string]TemplateSource{
		KindAcknowledgement: {
			Subject: `{{if .Subject}}{{.Subject}}{{else}}[Case {{.Case.Number}}] {{default "Your request" .Case.Subject}}{{end}}`,
			Text: `Hello{{with .Contact.Name}} {{.}}{{end}},

thank you for your mail. We opened case {{.Case.Number}} for it and will
answer as soon as we can. Reply to this mail to add to the case.

{{.Mailbox.Address}}
{{with .Reference}}
{{.}}
{{end}}`,
			HTML: `<p>Hello{{with .Contact.Name}} {{.}}{{end}},</p>
<p>thank you for your mail. We opened case <b>{{.Case.Number}}</b> for it and will answer as soon as we can. Reply to this mail to add to the case.</p>
<p>{{.Mailbox.Address}}</p>{{with .Reference}}
<p style="color:#888;font-size:small">{{.}}</p>{{end}}`,
		},
		KindLogEmail: {
			Subject: `{{if .Subject}}{{.Subject}}{{else}}[Case {{.Case.Number}}] {{.Case.Subject}}{{end}}`,
			Text: `{{.Body}}
{{with .Agent.Name}}
-- 
{{.}}
{{end}}{{with .Reference}}
{{.}}
{{end}}`,
		},
		KindConfirmation: {
			Subject: `Added to case {{.Case.Number}}: {{default "(no subject)" .Mail.Subject}}`,
			Text: `Your mail "{{default "(no subject)" .Mail.Subject}}" was added to case {{.Case.Number}} ({{.Case.Subject}}).
{{with .Reference}}
{{.}}
{{end}}`,
		},
		KindForward: {
			Subject: `[Case {{default "-" .Case.Number}}] {{default "(no subject)" .Mail.Subject}}`,
			Text: `Mail from {{.Mail.From.Email}}{{with .Case.Number}} on case {{.}}{{end}}{{with .Queue}}, queue {{.}}{{end}}:

{{quote .Mail.Text}}
`,
		},
		KindNotification: {
			Subject: `Case {{.Case.Number}}: {{.Case.Subject}}`,
			Text: `Case {{.Case.Number}} ({{.Case.Status}}{{with .Queue}}, queue {{.}}{{end}}) needs attention.
{{with .Mail.From.Email}}
From: {{.}}{{end}}{{with .Mail.Subject}}
Subject: {{.}}{{end}}
{{with .Body}}
{{.}}
{{end}}`,
		},
	}
}
