package dynamicstest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
)

const maxBatchRequests = 1000

// A batchItem is a single request or a change set.
type batchItem struct {
	single    *op
	changeset []*op
	ids       []string // Content-ID of each change set request
}

func batchError(msg string) *response {
	return odataError(http.StatusBadRequest, codePayload, "The batch request is malformed: "+msg)
}

// handleBatch runs POST $batch. The whole batch is one API call. Without
// Prefer: odata.continue-on-error, execution stops at the first failed
// request or change set. s.mu is held.
func (s *Server) handleBatch(h http.Header, body []byte) *response {
	items, resp := parseBatch(h.Get("Content-Type"), body)
	if resp != nil {
		return resp
	}
	n := 0
	for _, it := range items {
		if it.single != nil {
			n++
		}
		n += len(it.changeset)
	}
	if n > maxBatchRequests {
		return odataError(http.StatusBadRequest, codeInvalidArg, fmt.Sprintf("The number of requests in the batch (%d) exceeds the limit of %d.", n, maxBatchRequests))
	}
	continueOnError := strings.Contains(strings.Join(h.Values("Prefer"), ","), "odata.continue-on-error")
	var out bytes.Buffer
	w := multipart.NewWriter(&out)
	_ = w.SetBoundary("batchresponse_" + newGUID())
	for _, it := range items {
		failed := false
		if it.single != nil {
			r := s.exec(it.single)
			writeHTTPPart(w, r, "")
			failed = r.status >= 400
		} else {
			rs, bad, badID := s.runChangeset(it)
			if bad != nil {
				writeHTTPPart(w, bad, badID)
				failed = true
			} else {
				var cs bytes.Buffer
				cw := multipart.NewWriter(&cs)
				_ = cw.SetBoundary("changesetresponse_" + newGUID())
				for i, r := range rs {
					writeHTTPPart(cw, r, it.ids[i])
				}
				_ = cw.Close()
				pw, _ := w.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/mixed; boundary=" + cw.Boundary()}})
				_, _ = pw.Write(cs.Bytes())
			}
		}
		if failed && !continueOnError {
			break
		}
	}
	_ = w.Close()
	return (&response{status: http.StatusOK, body: out.Bytes()}).
		set("Content-Type", "multipart/mixed; boundary="+w.Boundary()).set("OData-Version", "4.0")
}

// runChangeset runs a change set as one transaction: on the first failure
// the tables are restored and that failure is returned with its Content-ID.
func (s *Server) runChangeset(it batchItem) ([]*response, *response, string) {
	sn := s.snapshot()
	refs := map[string]string{}
	var rs []*response
	for i, o := range it.changeset {
		o.refs = refs
		r := s.route(o)
		if r.status >= 400 {
			s.restore(sn)
			return nil, r, it.ids[i]
		}
		if loc := r.header.Get("OData-EntityId"); loc != "" && it.ids[i] != "" {
			refs[it.ids[i]] = strings.TrimPrefix(loc, s.URL()+apiPrefix)
		}
		rs = append(rs, r)
	}
	return rs, nil, ""
}

// odataHeaderNames restores the spelling Dataverse uses for headers that
// Go's canonical form changes.
var odataHeaderNames = map[string]string{"Odata-Entityid": "OData-EntityId", "Odata-Version": "OData-Version"}

func writeHTTPPart(w *multipart.Writer, r *response, contentID string) {
	h := textproto.MIMEHeader{"Content-Type": {"application/http"}, "Content-Transfer-Encoding": {"binary"}}
	if contentID != "" {
		h.Set("Content-ID", contentID)
	}
	pw, _ := w.CreatePart(h)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.status, http.StatusText(r.status))
	keys := make([]string, 0, len(r.header))
	for k := range r.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if n, ok := odataHeaderNames[k]; ok {
			name = n
		}
		for _, v := range r.header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	_, _ = pw.Write(b.Bytes())
}

func boundaryOf(contentType string) (string, bool) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return "", false
	}
	return params["boundary"], true
}

func parseBatch(contentType string, body []byte) ([]batchItem, *response) {
	boundary, ok := boundaryOf(contentType)
	if !ok {
		return nil, batchError("the Content-Type must be multipart/mixed with a boundary.")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var items []batchItem
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, batchError(err.Error())
		}
		ct := part.Header.Get("Content-Type")
		if b, ok := boundaryOf(ct); ok {
			it, resp := parseChangeset(part, b)
			if resp != nil {
				return nil, resp
			}
			items = append(items, it)
			continue
		}
		o, _, resp := parseHTTPPart(part)
		if resp != nil {
			return nil, resp
		}
		items = append(items, batchItem{single: o})
	}
	if len(items) == 0 {
		return nil, batchError("the batch has no parts.")
	}
	return items, nil
}

func parseChangeset(r io.Reader, boundary string) (batchItem, *response) {
	mr := multipart.NewReader(r, boundary)
	var it batchItem
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return it, batchError(err.Error())
		}
		o, innerID, resp := parseHTTPPart(part)
		if resp != nil {
			return it, resp
		}
		if o.method == http.MethodGet {
			return it, batchError("GET requests are not allowed in a change set.")
		}
		id := part.Header.Get("Content-ID")
		if id == "" {
			id = innerID
		}
		if strings.Trim(id, "<> ") == "" {
			return it, odataError(http.StatusBadRequest, codeOData, "Content-ID header not present in a change set request.")
		}
		it.changeset = append(it.changeset, o)
		it.ids = append(it.ids, strings.Trim(id, "<> "))
	}
	if len(it.changeset) == 0 {
		return it, batchError("a change set has no requests.")
	}
	return it, nil
}

// parseHTTPPart reads an application/http part: a request line, headers
// and a body. The URL may be absolute, absolute-path, relative to the API
// root, or a $n Content-ID reference.
func parseHTTPPart(part *multipart.Part) (*op, string, *response) {
	if mt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); mt != "application/http" {
		return nil, "", batchError("a part must be application/http or a multipart/mixed change set.")
	}
	br := bufio.NewReader(part)
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	for err == nil && strings.TrimSpace(line) == "" {
		line, err = tp.ReadLine()
	}
	if err != nil {
		return nil, "", batchError("a part has no request line.")
	}
	f := strings.Fields(line)
	if len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/") {
		return nil, "", batchError("invalid request line '" + line + "'.")
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && err != io.EOF {
		return nil, "", batchError("invalid headers: " + err.Error())
	}
	body, _ := io.ReadAll(br)
	target := f[1]
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			return nil, "", batchError("invalid URL '" + target + "'.")
		}
		target = u.EscapedPath()
		if u.RawQuery != "" {
			target += "?" + u.RawQuery
		}
	}
	if strings.HasPrefix(target, "/") {
		rest, ok := strings.CutPrefix(target, apiPrefix)
		if !ok {
			return nil, "", batchError("the URL '" + f[1] + "' is not under " + apiPrefix + ".")
		}
		target = rest
	}
	path, rawQuery, _ := strings.Cut(target, "?")
	return &op{method: f[0], path: path, rawQuery: rawQuery, header: http.Header(hdr), body: bytes.TrimSpace(body)}, hdr.Get("Content-ID"), nil
}
