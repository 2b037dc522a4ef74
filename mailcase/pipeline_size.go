package mailcase

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"
	"net/textproto"
	"strconv"
)

// checkSize is stage 2.
func (j *job) checkSize(ctx context.Context) (bool, error) {
	size := max(int64(len(j.raw)), j.po.Size)
	limit := j.p.mb.MaxSize
	if !j.po.Truncated && (limit < 0 || size <= limit) {
		if j.m == nil { // recorded once, not on every attempt
			j.out.Record(stageSize, "ok", strconv.FormatInt(size, 10)+" bytes within the limit")
		}
		return false, nil
	}
	why := strconv.FormatInt(size, 10) + " bytes over the limit of " + strconv.FormatInt(limit, 10)
	if j.po.Truncated {
		why = "the source did not download the body (" + strconv.FormatInt(size, 10) + " bytes)"
	}
	if j.p.mb.RejectOversized {
		j.out.Record(stageSize, "reject", why)
		return true, &Error{Code: InvalidArgument, Op: stageSize, Err: fmt.Errorf("%w: %s", ErrTooLarge, why)}
	}
	j.out.Record(stageSize, "oversized", why+"; filed unanalysed in the default queue")
	return true, j.fileOversized(ctx, size, why)
}

// maxHeaderScan bounds the bytes read for the header of an oversized mail.
const maxHeaderScan = 256 << 10

// headerOnly parses only the header of raw (at most maxHeaderScan bytes),
// tolerating errors: whatever was read is returned.
func headerOnly(raw []byte) Header {
	b := raw[:min(len(raw), maxHeaderScan)]
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		b = b[:i+2]
	} else if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		b = b[:i+1]
	}
	r := textproto.NewReader(bufio.NewReader(headerReader(b)))
	h, _ := r.ReadMIMEHeader()
	if h == nil {
		h = Header{}
	}
	return Header(h)
}

// headerReader returns a reader over b followed by an empty line, so the
// header reader always finds its end.
func headerReader(b []byte) *bytes.Reader {
	out := make([]byte, 0, len(b)+4)
	out = append(out, b...)
	if !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\r', '\n')
	}
	out = append(out, '\r', '\n')
	return bytes.NewReader(out)
}

// fileOversized files a mail over the size limit without analysing it: a
// case in the default queue whose first mail carries the raw mail as the
// attachment original.eml.
func (j *job) fileOversized(ctx context.Context, size int64, why string) error {
	j.oversized = true
	if j.m == nil {
		h := headerOnly(j.raw)
		dec := new(mime.WordDecoder)
		decode := func(s string) string {
			if d, err := dec.DecodeHeader(s); err == nil {
				return d
			}
			return s
		}
		m := &Message{Raw: j.raw, Size: size, Header: h}
		m.ID = NormalizeMessageID(h.Get("Message-Id"))
		if m.ID == "" {
			m.ID, m.IDDerived = DerivedMessageID(j.raw), true
		}
		if a, err := mail.ParseAddress(h.Get("From")); err == nil {
			m.From = Address{Name: a.Name, Email: NormalizeAddress(a.Address)}
		}
		if l, err := mail.ParseAddressList(h.Get("To")); err == nil {
			for _, a := range l {
				m.To = append(m.To, Address{Name: a.Name, Email: NormalizeAddress(a.Address)})
			}
		}
		m.Subject = decode(h.Get("Subject"))
		if d, err := mail.ParseDate(h.Get("Date")); err == nil {
			m.Date = d
		}
		m.InReplyTo = ParseMessageIDList(h.Get("In-Reply-To"))
		m.References = ParseMessageIDList(h.Get("References"))
		name := "original.eml"
		if j.po.Truncated {
			name = "original-header.eml"
		}
		m.Text = "This mail (" + strconv.FormatInt(size, 10) + " bytes) was not analysed: " + why +
			". The original is attached as " + name + "."
		m.ReplyText = m.Text
		m.Attachments = []Attachment{{Filename: name, ContentType: "message/rfc822", Size: int64(len(j.raw)), Data: j.raw}}
		j.m = m
		j.key = IdempotencyKey(j.p.mb.Name, m)
		j.out.Key, j.d.Key = j.key, j.key
		j.d.Message = m
	}
	if done, err := j.lockThread(ctx); done || err != nil {
		return err
	}
	if done, err := j.dedupe(ctx); done || err != nil {
		return err
	}
	route := Route{Queue: j.p.mb.DefaultQueue, Rule: "oversized", Reason: "oversized mail goes to the default queue unanalysed"}
	j.out.Route = &route
	j.out.Record(stageRoute, route.Queue, route.Reason)
	who, err := j.linkSender(ctx, "no sender policy applied")
	if err != nil {
		return err
	}
	return j.createCase(ctx, who, route, "")
}
