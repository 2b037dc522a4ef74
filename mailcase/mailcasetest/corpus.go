package mailcasetest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// CorpusMailbox is the support address every generated mail is sent to.
const CorpusMailbox = "support@example.com"

// GenerateCorpus returns n realistic inbound support mails, deterministic for
// a given seed (the same n and seed always give the same bytes, so
// benchmarks and tests are reproducible).
//
// The mix approximates a support mailbox:
//
//   - about 22% new customer mails (plain text, or multipart/alternative
//     text + HTML), UTF-8 quoted-printable;
//   - about 25% replies with In-Reply-To/References to earlier mails of the
//     corpus and quoted history, in UTF-8 (quoted-printable or base64),
//     ISO-8859-1 or Windows-1252;
//   - about 12% HTML-only mails (with a <style> block);
//   - about 18% multipart/mixed mails with one or two attachments of a few
//     KB (PDF, PNG, CSV, plain text), some with RFC 2231 file names;
//   - about 10% Japanese mails in ISO-2022-JP (encoded-word subject);
//   - about 8% auto-replies (Auto-Submitted, X-Autoreply, Exchange OOF);
//   - about 5% delivery status notifications (multipart/report).
//
// Every mail has Received, Return-Path, From, To, Date, Message-ID and
// MIME headers, CRLF line endings, and a sender from a small set of
// customers (so replies thread). Mails are typically 1-15 KB.
func GenerateCorpus(n int, seed int64) [][]byte {
	return GenerateCorpusWith(n, seed, nil)
}

// CorpusOptions changes the mix of GenerateCorpusWith; nil or the zero
// value is GenerateCorpus's mix.
type CorpusOptions struct {
	// LargePDF, when positive, gives three in five mails with attachments a
	// PDF of this many bytes as its first attachment (the import
	// benchmark uses 150 KB): mailboxes of scanned invoices and reports.
	LargePDF int
}

// GenerateCorpusWith is GenerateCorpus with options.
func GenerateCorpusWith(n int, seed int64, o *CorpusOptions) [][]byte {
	g := &corpusGen{
		r:    rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		base: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC),
	}
	if o != nil {
		g.opts = *o
	}
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, g.mail(i))
	}
	return out
}

type corpusGen struct {
	r    *rand.Rand
	base time.Time
	opts CorpusOptions
	// sent holds earlier Message-IDs with their subject, for replies.
	sent []sentMail
}

type sentMail struct {
	id, subject string
	refs        []string
	customer    int
}

var corpusCustomers = []struct{ name, addr string }{
	{"Anna Müller", "anna.mueller@kunde-gmbh.de"},
	{"John Smith", "john.smith@acme-corp.com"},
	{"François Dubois", "f.dubois@exemple.fr"},
	{"María José García", "mjgarcia@empresa.es"},
	{"Li Wei", "li.wei@example.cn"},
	{"Søren Kierkegaard", "soren@firma.dk"},
	{"Olivia Brown", "olivia@smallshop.co.uk"},
	{"Piotr Nowak", "p.nowak@przyklad.pl"},
	{"Emma Johansson", "emma.j@foretag.se"},
	{"Carlos Silva", "carlos.silva@empresa.com.br"},
	{"Yuki Tanaka", "tanaka@example.co.jp"},
	{"Hiroshi Sato", "h.sato@kaisha.jp"},
	{"David Cohen", "dcohen@startup.io"},
	{"Grace Lee", "grace.lee@bigbank.com"},
	{"Ahmed Hassan", "ahmed@trading.ae"},
	{"Zoë Ørsted", "zoe@design.no"},
}

var corpusTopics = []struct{ subject, body string }{
	{"Invoice 2026-0412 is wrong", "the invoice you sent last week charges us for 12 licences, but our contract covers only 10. Could you please send a corrected invoice?"},
	{"Cannot log in since the update", "since yesterday's update none of our users can log in. The error says \"session expired\" right after entering the password. We tried two browsers."},
	{"Delivery delayed – order #88231", "our order #88231 was due on Monday and has still not arrived. The tracking page has not changed for four days. When can we expect it?"},
	{"Question about the API rate limits", "we plan to synchronise about 40,000 records a night. Which rate limits apply to the bulk endpoint, and can they be raised for our account?"},
	{"Kündigung unseres Vertrags", "hiermit kündigen wir den Wartungsvertrag fristgerecht zum Quartalsende. Bitte bestätigen Sie den Eingang dieser Kündigung."},
	{"Problème d'accès au portail", "depuis ce matin, le portail client affiche une erreur 500 lorsque nous ouvrons l'onglet « Factures ». Pouvez-vous regarder ?"},
	{"Solicitud de presupuesto", "quisiéramos recibir un presupuesto para 25 usuarios adicionales con soporte prioritario. ¿Cuál sería el plazo de entrega?"},
	{"Password reset e-mail never arrives", "I requested a password reset three times but the e-mail never arrives, not even in the spam folder. My address is the one I'm writing from."},
	{"Feature request: export to CSV", "it would help us a lot if the case list could be exported to CSV including the custom fields. Is that on your roadmap?"},
	{"Urgent: production system down", "our production instance stopped responding at 07:40 CET. All requests time out. This is blocking our whole warehouse — please call me back."},
	{"Wrong VAT number on account", "the VAT number on our account is DE123456789, not DE123456780. Please correct it before the next invoice run."},
	{"Reklamation Lieferung", "die gelieferte Ware ist beschädigt angekommen (siehe Fotos im Anhang). Wir bitten um Ersatzlieferung oder Gutschrift."},
}

var corpusJapanese = []struct{ subject, body string }{
	{"請求書について", "いつもお世話になっております。\r\n先月の請求書の金額が契約と異なっているようです。\r\nご確認のほど、よろしくお願いいたします。"},
	{"ログインできません", "お世話になっております。\r\n昨日のアップデート以降、ログインできなくなりました。\r\n至急ご対応をお願いします。"},
	{"納品の遅れについて", "ご担当者様\r\n注文番号８８２３１の商品がまだ届いておりません。\r\n配送状況を教えていただけますでしょうか。"},
	{"見積もりのお願い", "追加ライセンス２５件の見積もりをお願いしたく、ご連絡いたしました。\r\n納期もあわせてご教示ください。"},
}

var corpusAgents = []string{"Sarah (Support)", "Tom from Support", "Support Team"}

func (g *corpusGen) pick(n int) int { return g.r.IntN(n) }

func (g *corpusGen) msgID(i int, domain string) string {
	return fmt.Sprintf("<%08x.%d.%04x@%s>", g.r.Uint32(), i, g.r.IntN(0xffff), domain)
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

func (g *corpusGen) date(i int) time.Time {
	return g.base.Add(time.Duration(i)*7*time.Minute + time.Duration(g.r.IntN(300))*time.Second)
}

// header writes the common top-level header.
func (g *corpusGen) header(b *bytes.Buffer, i int, fromName, fromAddr, subjectField, msgID string) {
	d := g.date(i)
	dom := domainOf(fromAddr)
	fmt.Fprintf(b, "Return-Path: <%s>\r\n", fromAddr)
	fmt.Fprintf(b, "Delivered-To: %s\r\n", CorpusMailbox)
	fmt.Fprintf(b, "Received: from mx.%s (mx.%s [192.0.2.%d])\r\n\tby mx.example.com (Postfix) with ESMTPS id %X\r\n\tfor <%s>; %s\r\n",
		dom, dom, 1+g.pick(250), g.r.Uint32(), CorpusMailbox, d.Add(3*time.Second).Format(time.RFC1123Z))
	fmt.Fprintf(b, "Received: from [10.0.%d.%d] (client.%s [198.51.100.%d])\r\n\tby mx.%s with ESMTPSA id %x; %s\r\n",
		g.pick(255), g.pick(255), dom, 1+g.pick(250), dom, g.r.Uint64(), d.Format(time.RFC1123Z))
	if g.pick(3) == 0 {
		sig := make([]byte, 192)
		for k := range sig {
			sig[k] = byte(g.r.Uint32())
		}
		fmt.Fprintf(b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=mail;\r\n\th=from:to:subject:date:message-id; bh=%s;\r\n\tb=%s\r\n",
			dom, base64.StdEncoding.EncodeToString(sig[:32]), wrapLines(base64.StdEncoding.EncodeToString(sig), 72, "\r\n\t"))
	}
	fmt.Fprintf(b, "From: %s\r\n", formatAddr(fromName, fromAddr))
	fmt.Fprintf(b, "To: %s\r\n", formatAddr("Example Support", CorpusMailbox))
	fmt.Fprintf(b, "Subject: %s\r\n", subjectField)
	fmt.Fprintf(b, "Date: %s\r\n", d.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Message-ID: %s\r\n", msgID)
	b.WriteString("MIME-Version: 1.0\r\n")
}

func formatAddr(name, addr string) string {
	if isASCIIString(name) {
		if strings.ContainsAny(name, "()<>@,;:\\\".[]") {
			return fmt.Sprintf("%q <%s>", name, addr)
		}
		return name + " <" + addr + ">"
	}
	return mime.QEncoding.Encode("utf-8", name) + " <" + addr + ">"
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func encodeSubject(s string) string {
	if isASCIIString(s) {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

func wrapLines(s string, n int, sep string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteString(sep)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return crlf(b.String())
}

func b64(data []byte) string {
	return wrapLines(base64.StdEncoding.EncodeToString(data), 76, "\r\n") + "\r\n"
}

func encodeWith(enc encoding.Encoding, s string) []byte {
	out, err := enc.NewEncoder().Bytes([]byte(s))
	if err != nil {
		// The corpus texts are chosen to be representable; fall back to
		// replacing what is not.
		out, _ = encoding.ReplaceUnsupported(enc.NewEncoder()).Bytes([]byte(s))
	}
	return out
}

func (g *corpusGen) boundary() string {
	return fmt.Sprintf("----=_Part_%d_%d.%d", g.r.IntN(1000000), g.r.IntN(1000000000), g.r.IntN(1000000))
}

// prose returns a few paragraphs of filler around the topic body, as people
// write it.
func (g *corpusGen) prose(greet, topic, sign string) string {
	fillers := []string{
		"We have been using your product for three years and are generally very happy with it.",
		"I have attached the details our IT department collected, in case they help.",
		"This is the second time this month that we run into this, so we would appreciate a quick answer.",
		"Our account manager suggested that I contact the support team directly.",
		"Please let me know if you need any further information from our side.",
		"Thanks in advance for your help.",
	}
	var b strings.Builder
	b.WriteString(greet + ",\n\n" + topic + "\n\n")
	for k, m := 0, 1+g.pick(3); k < m; k++ {
		b.WriteString(fillers[g.pick(len(fillers))] + " ")
	}
	b.WriteString("\n\nBest regards,\n" + sign + "\n")
	if g.pick(2) == 0 {
		b.WriteString("-- \n" + sign + "\nPhone +49 30 1234 567\nhttps://www." + "customer.example/\n")
	}
	return b.String()
}

func htmlOf(text string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{font-family:Arial,sans-serif;font-size:11pt} p{margin:0 0 8px}</style></head><body>")
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(htmlEscape(para), "\n", "<br>\n"))
		b.WriteString("</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&quot;").Replace(s)
}

func (g *corpusGen) mail(i int) []byte {
	switch k := g.pick(100); {
	case k < 22:
		return g.newMail(i)
	case k < 47:
		return g.reply(i)
	case k < 59:
		return g.htmlOnly(i)
	case k < 77:
		return g.withAttachments(i)
	case k < 87:
		return g.japanese(i)
	case k < 95:
		return g.autoReply(i)
	default:
		return g.bounce(i)
	}
}

func (g *corpusGen) remember(id, subject string, refs []string, customer int) {
	g.sent = append(g.sent, sentMail{id: id, subject: subject, refs: refs, customer: customer})
}

func (g *corpusGen) newMail(i int) []byte {
	c := g.pick(len(corpusCustomers))
	cust := corpusCustomers[c]
	t := corpusTopics[g.pick(len(corpusTopics))]
	id := g.msgID(i, domainOf(cust.addr))
	g.remember(id, t.subject, nil, c)
	text := g.prose("Hello", t.body, strings.Fields(cust.name)[0])
	var b bytes.Buffer
	g.header(&b, i, cust.name, cust.addr, encodeSubject(t.subject), id)
	if g.pick(2) == 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		b.WriteString(qp(text))
		return b.Bytes()
	}
	bd := g.boundary()
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", bd, qp(text))
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", bd, qp(htmlOf(text)))
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return b.Bytes()
}

func quote(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for k, l := range lines {
		if strings.HasPrefix(l, ">") {
			lines[k] = ">" + l
		} else {
			lines[k] = "> " + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func (g *corpusGen) reply(i int) []byte {
	if len(g.sent) == 0 {
		return g.newMail(i)
	}
	prev := g.sent[len(g.sent)-1-g.pick(min(len(g.sent), 40))]
	cust := corpusCustomers[prev.customer]
	refs := append(append([]string(nil), prev.refs...), prev.id)
	if len(refs) > 8 {
		refs = refs[len(refs)-8:]
	}
	id := g.msgID(i, domainOf(cust.addr))
	subject := prev.subject
	if !strings.HasPrefix(subject, "Re: ") {
		subject = "Re: " + subject
	}
	g.remember(id, subject, refs, prev.customer)
	agent := corpusAgents[g.pick(len(corpusAgents))]
	earlier := fmt.Sprintf("Dear customer,\n\nthank you for your message. We are looking into it and will get back to you shortly.\nCase reference: [Case #%05d]\n\nKind regards,\n%s\n", 10000+g.pick(90000), agent)
	replies := []string{
		"thank you, that solved it. You can close the case.",
		"unfortunately the problem is still there. I tried again this morning and got the same error.",
		"could you give me an update? We are still waiting for a solution.",
		"here is the additional information you asked for: our customer number is 4711 and the error occurs on all devices.",
		"vielen Dank für die schnelle Antwort – das Problem ist jetzt behoben.",
		"merci beaucoup, tout fonctionne à nouveau.",
	}
	d := g.date(i).Add(-time.Hour)
	text := g.prose("Hi", replies[g.pick(len(replies))], strings.Fields(cust.name)[0]) +
		"\nOn " + d.Format("Mon, 2 Jan 2006 at 15:04") + ", Example Support <" + CorpusMailbox + "> wrote:\n" + quote(earlier)
	var b bytes.Buffer
	g.header(&b, i, cust.name, cust.addr, encodeSubject(subject), id)
	fmt.Fprintf(&b, "In-Reply-To: %s\r\n", refs[len(refs)-1])
	fmt.Fprintf(&b, "References: %s\r\n", strings.Join(refs, "\r\n "))
	switch g.pick(4) {
	case 0:
		b.WriteString("Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		b.WriteString(qp(text))
	case 1:
		b.WriteString("Content-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		b.WriteString(b64([]byte(crlf(text))))
	case 2:
		b.WriteString("Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		b.WriteString(qp(string(encodeWith(charmap.ISO8859_1, text))))
	default:
		bd := g.boundary()
		enc := encodeWith(charmap.Windows1252, strings.ReplaceAll(text, "Hi,", "Hi – quick follow-up,"))
		fmt.Fprintf(&b, "Content-Type: multipart/alternative;\r\n\tboundary=\"%s\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n", bd)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=\"windows-1252\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", bd, qp(string(enc)))
		html := encodeWith(charmap.Windows1252, strings.Replace(htmlOf(strings.ReplaceAll(text, "Hi,", "Hi – quick follow-up,")), "utf-8", "windows-1252", 1))
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/html; charset=\"windows-1252\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", bd, qp(string(html)))
		fmt.Fprintf(&b, "--%s--\r\n", bd)
	}
	return b.Bytes()
}

func (g *corpusGen) htmlOnly(i int) []byte {
	c := g.pick(len(corpusCustomers))
	cust := corpusCustomers[c]
	t := corpusTopics[g.pick(len(corpusTopics))]
	id := g.msgID(i, domainOf(cust.addr))
	g.remember(id, t.subject, nil, c)
	html := htmlOf(g.prose("Hello", t.body, cust.name))
	html = strings.Replace(html, "</body>", "<div class=\"footer\" style=\"color:#888\">Sent from my mobile device</div><img src=\"https://track.customer.example/p.gif?id="+fmt.Sprint(i)+"\" width=\"1\" height=\"1\"></body>", 1)
	var b bytes.Buffer
	g.header(&b, i, cust.name, cust.addr, encodeSubject(t.subject), id)
	if g.pick(2) == 0 {
		b.WriteString("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		b.WriteString(qp(html))
	} else {
		b.WriteString("Content-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		b.WriteString(b64([]byte(html)))
	}
	return b.Bytes()
}

// attachmentData returns realistic-looking content of n bytes for a type.
func (g *corpusGen) attachmentData(kind string, n int) []byte {
	var b bytes.Buffer
	switch kind {
	case "csv":
		b.WriteString("order;date;item;quantity;price\n")
		for b.Len() < n {
			fmt.Fprintf(&b, "%d;2026-02-%02d;ITEM-%04d;%d;%d.%02d\n", 80000+g.pick(9999), 1+g.pick(28), g.pick(9999), 1+g.pick(50), g.pick(999), g.pick(100))
		}
	case "txt":
		for b.Len() < n {
			fmt.Fprintf(&b, "2026-03-01T07:%02d:%02dZ ERROR request %x failed: timeout after 30s (worker=%d)\n", g.pick(60), g.pick(60), g.r.Uint32(), g.pick(16))
		}
	case "pdf":
		b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
		fallthrough
	default:
		if kind == "png" {
			b.WriteString("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
		}
		for b.Len() < n {
			v := g.r.Uint64()
			for k := 0; k < 8; k++ {
				b.WriteByte(byte(v >> (8 * k)))
			}
		}
	}
	return b.Bytes()[:n]
}

func (g *corpusGen) withAttachments(i int) []byte {
	c := g.pick(len(corpusCustomers))
	cust := corpusCustomers[c]
	t := corpusTopics[g.pick(len(corpusTopics))]
	id := g.msgID(i, domainOf(cust.addr))
	g.remember(id, t.subject, nil, c)
	text := g.prose("Hello", t.body, strings.Fields(cust.name)[0])
	var b bytes.Buffer
	g.header(&b, i, cust.name, cust.addr, encodeSubject(t.subject), id)
	bd := g.boundary()
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\nThis is a multi-part message in MIME format.\r\n", bd)
	if g.pick(2) == 0 {
		alt := g.boundary()
		fmt.Fprintf(&b, "--%s\r\nContent-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bd, alt)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", alt, qp(text))
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", alt, qp(htmlOf(text)))
		fmt.Fprintf(&b, "--%s--\r\n\r\n", alt)
	} else {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", bd, qp(text))
	}
	kinds := []struct{ ext, ctype string }{
		{"pdf", "application/pdf"}, {"png", "image/png"}, {"csv", "text/csv"}, {"txt", "text/plain"},
	}
	names := []string{"invoice-2026-0412", "screenshot", "orders-february", "server-log", "Rechnung März", "photo_damage", "contrat signé"}
	// The large PDF draws nothing from g.r unless it is asked for, so that
	// GenerateCorpus's bytes stay what they were.
	large := g.opts.LargePDF > 0 && g.pick(5) < 3
	for k, m := 0, 1+g.pick(2); k < m; k++ {
		kd := kinds[g.pick(len(kinds))]
		name := names[g.pick(len(names))] + "." + kd.ext
		size := 2048 + g.pick(10*1024)
		if large && k == 0 {
			kd, name, size = kinds[0], names[0]+".pdf", g.opts.LargePDF
		}
		data := g.attachmentData(kd.ext, size)
		var disp string
		if isASCIIString(name) {
			disp = fmt.Sprintf("attachment; filename=\"%s\"", name)
		} else if g.pick(2) == 0 {
			disp = "attachment; filename*=UTF-8''" + strings.ReplaceAll(percentEncode(name), " ", "%20")
		} else {
			disp = "attachment; filename=\"" + mime.BEncoding.Encode("utf-8", name) + "\""
		}
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: %s\r\n", bd, kd.ctype, mime.BEncoding.Encode("utf-8", name), disp)
		if kd.ext == "csv" || kd.ext == "txt" {
			fmt.Fprintf(&b, "Content-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", qp(string(data)))
		} else {
			fmt.Fprintf(&b, "Content-Transfer-Encoding: base64\r\n\r\n%s", b64(data))
		}
	}
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return b.Bytes()
}

func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (g *corpusGen) japanese(i int) []byte {
	c := 10 + g.pick(2) // the Japanese customers
	cust := corpusCustomers[c]
	t := corpusJapanese[g.pick(len(corpusJapanese))]
	id := g.msgID(i, domainOf(cust.addr))
	g.remember(id, t.subject, nil, c)
	subj := "=?ISO-2022-JP?B?" + base64.StdEncoding.EncodeToString(encodeWith(japanese.ISO2022JP, t.subject)) + "?="
	body := t.body + "\r\n\r\n" + cust.name + "\r\n"
	var b bytes.Buffer
	g.header(&b, i, cust.name, cust.addr, subj, id)
	b.WriteString("Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	b.Write(encodeWith(japanese.ISO2022JP, crlf(body)))
	b.WriteString("\r\n")
	return b.Bytes()
}

func (g *corpusGen) autoReply(i int) []byte {
	c := g.pick(len(corpusCustomers))
	cust := corpusCustomers[c]
	id := g.msgID(i, domainOf(cust.addr))
	var b bytes.Buffer
	var extra string
	switch g.pick(3) {
	case 0:
		extra = "Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n"
	case 1:
		extra = "Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\nX-MS-Exchange-Inbox-Rules-Loop: " + cust.addr + "\r\n"
	default:
		extra = "Auto-Submitted: auto-replied (vacation)\r\nPrecedence: bulk\r\n"
	}
	g.header(&b, i, cust.name, cust.addr, "Automatic reply: "+corpusTopics[g.pick(len(corpusTopics))].subject, id)
	b.WriteString(extra)
	text := "Thank you for your message. I am out of the office until " + g.date(i).Add(96*time.Hour).Format("2 January 2006") +
		" with limited access to e-mail.\n\nFor urgent matters please contact my colleague at office@" + domainOf(cust.addr) + ".\n\n" + cust.name + "\n"
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	b.WriteString(qp(text))
	return b.Bytes()
}

func (g *corpusGen) bounce(i int) []byte {
	orig := "<" + fmt.Sprintf("case.%d.%x", 10000+g.pick(90000), g.r.Uint32()) + "@support.example.com>"
	rcpt := corpusCustomers[g.pick(len(corpusCustomers))].addr
	d := g.date(i)
	bd := g.boundary()
	var b bytes.Buffer
	b.WriteString("Return-Path: <>\r\n")
	fmt.Fprintf(&b, "Received: by mx.example.com (Postfix)\r\n\tid %X; %s\r\n", g.r.Uint32(), d.Format(time.RFC1123Z))
	b.WriteString("From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\n")
	b.WriteString("Subject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(&b, "To: %s\r\n", CorpusMailbox)
	b.WriteString("Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", bd)
	fmt.Fprintf(&b, "Message-Id: <%X.%d@mx.example.com>\r\nDate: %s\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n", g.r.Uint32(), i, d.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "--%s\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", bd)
	fmt.Fprintf(&b, "This is the mail system at host mx.example.com.\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n<%s>: host mx.%s said: 550 5.1.1 user unknown\r\n\r\n", rcpt, domainOf(rcpt))
	fmt.Fprintf(&b, "--%s\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n", bd)
	fmt.Fprintf(&b, "Reporting-MTA: dns; mx.example.com\r\nArrival-Date: %s\r\n\r\nFinal-Recipient: rfc822; %s\r\nOriginal-Recipient: rfc822;%s\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown\r\n\r\n", d.Format(time.RFC1123Z), rcpt, rcpt, rcpt)
	fmt.Fprintf(&b, "--%s\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n", bd)
	fmt.Fprintf(&b, "From: Example Support <%s>\r\nTo: %s\r\nSubject: Re: your request [Case #%05d]\r\nMessage-ID: %s\r\nDate: %s\r\n\r\n", CorpusMailbox, rcpt, 10000+g.pick(90000), orig, d.Add(-time.Minute).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return b.Bytes()
}
