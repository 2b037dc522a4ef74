package salesforce_test

// miniOrg is a deliberately small second fake org, written before
// salesforcetest landed and kept because it records the exact SOQL it
// receives and takes validation hooks on any object: tokens, sObject rows, a SOQL subset (=, IN, LIKE,
// AND, OR, ORDER BY, LIMIT), /composite with allOrNone and @{ref.field}
// references, unique external IDs and multipart ContentVersions.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

type miniOrg struct {
	*httptest.Server
	mu     sync.Mutex
	recs   map[string]map[string]map[string]any // object -> id -> record
	order  map[string][]string
	seq    int
	caseNo int
	calls  int
	unique map[string][]string // object -> unique fields
	soql   []string            // every query received, as parsed
	// validate, when set, may refuse an insert (a validation rule).
	validate func(obj string, f map[string]any) *resp
}

// Records returns copies of the records of obj, in insertion order.
func (o *miniOrg) Records(obj string) []map[string]any {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []map[string]any
	for _, id := range o.order[obj] {
		if r := o.recs[obj][id]; r != nil {
			cp := map[string]any{}
			for k, v := range r {
				cp[k] = v
			}
			out = append(out, cp)
		}
	}
	return out
}

// Queries returns the SOQL queries received.
func (o *miniOrg) Queries() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.soql...)
}

var prefixes = map[string]string{"Case": "500", "EmailMessage": "02s", "Contact": "003", "Account": "001", "User": "005",
	"Group": "00G", "CaseComment": "00a", "ContentVersion": "068", "ContentDocument": "069", "Task": "00T"}

func newMiniOrg(t testing.TB) *miniOrg {
	o := &miniOrg{recs: map[string]map[string]map[string]any{}, order: map[string][]string{}, caseNo: 1000,
		unique: map[string][]string{"Case": {"EmailcrmKey__c"}, "EmailMessage": {"EmailcrmKey__c"}, "Task": {"EmailcrmKey__c"}}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *miniOrg) Calls() int { o.mu.Lock(); defer o.mu.Unlock(); return o.calls }

type rawBody []byte

type resp struct {
	status int
	body   any
}

func errs(status int, code, msg string, fields ...string) resp {
	if fields == nil {
		fields = []string{}
	}
	return resp{status, []map[string]any{{"errorCode": code, "message": msg, "fields": fields}}}
}

func (o *miniOrg) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/services/oauth2/token" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "instance_url": o.URL})
		return
	}
	body, _ := io.ReadAll(r.Body)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	var rs resp
	p := strings.TrimPrefix(r.URL.EscapedPath(), "/services/data/v62.0/")
	if p == "composite" {
		rs = o.composite(body)
	} else {
		rs = o.route(r.Method, p, r.URL.Query(), body, r.Header.Get("Content-Type"))
	}
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/100000", o.calls))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rs.status)
	if raw, ok := rs.body.(rawBody); ok {
		_, _ = w.Write(raw)
	} else if rs.body != nil {
		_ = json.NewEncoder(w).Encode(rs.body)
	}
}

func (o *miniOrg) snapshot() (map[string]map[string]map[string]any, map[string][]string, int, int) {
	cp := map[string]map[string]map[string]any{}
	for obj, m := range o.recs {
		cp[obj] = map[string]map[string]any{}
		for id, rec := range m {
			r2 := map[string]any{}
			for k, v := range rec {
				r2[k] = v
			}
			cp[obj][id] = r2
		}
	}
	oc := map[string][]string{}
	for k, v := range o.order {
		oc[k] = append([]string(nil), v...)
	}
	return cp, oc, o.seq, o.caseNo
}

var refRE = regexp.MustCompile(`@\{([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\}`)

func (o *miniOrg) composite(body []byte) resp {
	var in struct {
		AllOrNone bool `json:"allOrNone"`
		Subs      []struct {
			Method, URL, ReferenceID string
			Body                     json.RawMessage
		} `json:"compositeRequest"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return errs(400, "JSON_PARSER_ERROR", err.Error())
	}
	if len(in.Subs) > 25 {
		return errs(400, "INVALID_API_INPUT", "too many subrequests")
	}
	snapRecs, snapOrder, snapSeq, snapNo := o.snapshot()
	results := map[string]map[string]any{}
	subst := func(s string) string {
		return refRE.ReplaceAllStringFunc(s, func(m string) string {
			g := refRE.FindStringSubmatch(m)
			if v, ok := results[g[1]][g[2]]; ok {
				return fmt.Sprint(v)
			}
			return m
		})
	}
	var out []map[string]any
	failed := false
	for _, s := range in.Subs {
		if failed && in.AllOrNone {
			out = append(out, map[string]any{"referenceId": s.ReferenceID, "httpStatusCode": 400,
				"body": []map[string]any{{"errorCode": "PROCESSING_HALTED", "message": "halted"}}})
			continue
		}
		u, _ := url.Parse(subst(s.URL))
		p := strings.TrimPrefix(u.EscapedPath(), "/services/data/v62.0/")
		b := []byte(subst(string(s.Body)))
		rs := o.route(s.Method, p, u.Query(), b, "application/json")
		if rs.status >= 300 {
			failed = true
		} else if m, ok := rs.body.(map[string]any); ok {
			results[s.ReferenceID] = m
		}
		out = append(out, map[string]any{"referenceId": s.ReferenceID, "httpStatusCode": rs.status, "body": rs.body})
	}
	if failed && in.AllOrNone {
		o.recs, o.order, o.seq, o.caseNo = snapRecs, snapOrder, snapSeq, snapNo
		for _, e := range out {
			if st := e["httpStatusCode"].(int); st < 300 {
				e["httpStatusCode"] = 400
				e["body"] = []map[string]any{{"errorCode": "PROCESSING_HALTED", "message": "rolled back"}}
			}
		}
	}
	return resp{200, map[string]any{"compositeResponse": out}}
}

func (o *miniOrg) route(method, p string, q url.Values, body []byte, ctype string) resp {
	segs := strings.Split(p, "/")
	for i := range segs {
		segs[i], _ = url.PathUnescape(segs[i])
	}
	if segs[0] == "query" {
		return o.query(q.Get("q"))
	}
	if segs[0] != "sobjects" || len(segs) < 2 {
		return errs(404, "NOT_FOUND", "no such resource")
	}
	obj := segs[1]
	switch {
	case len(segs) == 2 && method == http.MethodPost:
		var f map[string]any
		if strings.HasPrefix(ctype, "multipart/") {
			f = o.multipart(body, ctype)
		} else if err := json.Unmarshal(body, &f); err != nil {
			return errs(400, "JSON_PARSER_ERROR", err.Error())
		}
		return o.insert(obj, f)
	case len(segs) == 3 || len(segs) == 4:
		if len(segs) == 4 && segs[3] == "VersionData" {
			rec := o.recs[obj][segs[2]]
			if rec == nil {
				return errs(404, "NOT_FOUND", "no such record")
			}
			data, _ := base64.StdEncoding.DecodeString(fmt.Sprint(rec["VersionData"]))
			return resp{200, rawBody(data)}
		}
		rec := o.recs[obj][segs[2]]
		if rec == nil {
			return errs(404, "NOT_FOUND", "The requested resource does not exist")
		}
		switch method {
		case http.MethodGet:
			out := map[string]any{"attributes": map[string]any{"type": obj}}
			for _, f := range strings.Split(q.Get("fields"), ",") {
				if f != "" {
					out[f] = rec[f]
				}
			}
			if q.Get("fields") == "" {
				for k, v := range rec {
					out[k] = v
				}
			}
			return resp{200, out}
		case http.MethodPatch:
			var f map[string]any
			_ = json.Unmarshal(body, &f)
			for k, v := range f {
				rec[k] = v
			}
			o.derive(obj, rec)
			return resp{204, nil}
		case http.MethodDelete:
			delete(o.recs[obj], segs[2])
			if obj == "Case" {
				for id, em := range o.recs["EmailMessage"] {
					if em["ParentId"] == segs[2] {
						delete(o.recs["EmailMessage"], id)
					}
				}
			}
			return resp{204, nil}
		}
	}
	return errs(404, "NOT_FOUND", "no such resource")
}

func (o *miniOrg) multipart(body []byte, ctype string) map[string]any {
	_, params, _ := mime.ParseMediaType(ctype)
	mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
	f := map[string]any{}
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		data, _ := io.ReadAll(part)
		if part.FormName() == "entity_content" {
			_ = json.Unmarshal(data, &f)
		} else {
			f["VersionData"] = base64.StdEncoding.EncodeToString(data)
		}
	}
	return f
}

func (o *miniOrg) insert(obj string, f map[string]any) resp {
	if _, ok := prefixes[obj]; !ok {
		return errs(404, "NOT_FOUND", "no such object")
	}
	if obj == "EmailMessage" {
		if p, _ := f["ParentId"].(string); o.recs["Case"][p] == nil {
			return errs(400, "FIELD_INTEGRITY_EXCEPTION", "ParentId: bad reference", "ParentId")
		}
	}
	if o.validate != nil {
		if r := o.validate(obj, f); r != nil {
			return *r
		}
	}
	for _, uf := range o.unique[obj] {
		if v, ok := f[uf]; ok && v != nil {
			for id, r := range o.recs[obj] {
				if r[uf] == v {
					return errs(400, "DUPLICATE_VALUE", "duplicate value found: "+uf+" duplicates value on record with id: "+id)
				}
			}
		}
	}
	o.seq++
	id := fmt.Sprintf("%s%012dAAA", prefixes[obj], o.seq)
	rec := map[string]any{}
	for k, v := range f {
		rec[k] = v
	}
	rec["Id"] = id
	rec["CreatedDate"] = time.Now().UTC().Format("2006-01-02T15:04:05.000+0000")
	if obj == "Case" {
		o.caseNo++
		rec["CaseNumber"] = fmt.Sprintf("%08d", o.caseNo)
	}
	if obj == "User" && rec["IsActive"] == nil {
		rec["IsActive"] = true
	}
	o.derive(obj, rec)
	if o.recs[obj] == nil {
		o.recs[obj] = map[string]map[string]any{}
	}
	o.recs[obj][id] = rec
	o.order[obj] = append(o.order[obj], id)
	return resp{201, map[string]any{"id": id, "success": true, "errors": []any{}}}
}

func (o *miniOrg) derive(obj string, rec map[string]any) {
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000+0000")
	rec["LastModifiedDate"] = now
	if obj == "Case" {
		closed := rec["Status"] == "Closed"
		if closed && rec["IsClosed"] != true {
			rec["ClosedDate"] = now
		}
		if !closed {
			rec["ClosedDate"] = nil
		}
		rec["IsClosed"] = closed
	}
}

// ---- SOQL subset ----

type tok struct {
	kind string // "id", "str", "op", "num"
	val  string
}

func lex(q string) ([]tok, error) {
	var out []tok
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\n' || c == '\t':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(q) && q[j] != '\''; j++ {
				if q[j] == '\\' {
					j++
					if j >= len(q) {
						return nil, fmt.Errorf("bad escape")
					}
					switch q[j] {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					case 'b':
						b.WriteByte('\b')
					case 'f':
						b.WriteByte('\f')
					case '\'', '"', '\\':
						b.WriteByte(q[j])
					case '_', '%':
						b.WriteByte('\\')
						b.WriteByte(q[j])
					case 'u':
						var r rune
						if _, err := fmt.Sscanf(q[j+1:j+5], "%04x", &r); err != nil {
							return nil, fmt.Errorf("bad \\u")
						}
						b.WriteRune(r)
						j += 4
					default:
						return nil, fmt.Errorf("invalid escape \\%c", q[j])
					}
					continue
				}
				b.WriteByte(q[j])
			}
			if j >= len(q) {
				return nil, fmt.Errorf("unterminated literal")
			}
			out = append(out, tok{"str", b.String()})
			i = j + 1
		case strings.ContainsRune("(),=!<>", rune(c)):
			if c == '!' && i+1 < len(q) && q[i+1] == '=' {
				out = append(out, tok{"op", "!="})
				i += 2
				continue
			}
			out = append(out, tok{"op", string(c)})
			i++
		default:
			j := i
			for j < len(q) && !strings.ContainsRune(" \n\t(),=!<>'", rune(q[j])) {
				j++
			}
			out = append(out, tok{"id", q[i:j]})
			i = j
		}
	}
	return out, nil
}

type cond func(rec map[string]any) bool

func likeMatch(pat, s string) bool {
	var re strings.Builder
	re.WriteString("(?is)^")
	for i := 0; i < len(pat); i++ {
		switch pat[i] {
		case '\\':
			i++
			re.WriteString(regexp.QuoteMeta(string(pat[i])))
		case '%':
			re.WriteString(".*")
		case '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(pat[i])))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(s)
}

func unlike(s string) string { return strings.NewReplacer(`\_`, "_", `\%`, "%").Replace(s) }

func (o *miniOrg) query(q string) resp {
	o.soql = append(o.soql, q)
	ts, err := lex(q)
	if err != nil {
		return errs(400, "MALFORMED_QUERY", err.Error())
	}
	pos := 0
	next := func() tok {
		if pos >= len(ts) {
			return tok{}
		}
		pos++
		return ts[pos-1]
	}
	peek := func() tok {
		if pos >= len(ts) {
			return tok{}
		}
		return ts[pos]
	}
	if !strings.EqualFold(next().val, "SELECT") {
		return errs(400, "MALFORMED_QUERY", "want SELECT")
	}
	var fields []string
	for {
		f := next()
		fields = append(fields, f.val)
		if peek().val != "," {
			break
		}
		next()
	}
	if !strings.EqualFold(next().val, "FROM") {
		return errs(400, "MALFORMED_QUERY", "want FROM")
	}
	obj := next().val
	var where cond = func(map[string]any) bool { return true }
	var parseOr func() (cond, error)
	parseAtom := func() (cond, error) {
		if peek().val == "(" {
			next()
			c, err := parseOr()
			if err != nil {
				return nil, err
			}
			if next().val != ")" {
				return nil, fmt.Errorf("want )")
			}
			return c, nil
		}
		field := next().val
		op := next()
		switch {
		case op.val == "=" || op.val == "!=":
			v := next()
			var want any = v.val
			if v.kind == "id" {
				switch strings.ToLower(v.val) {
				case "true":
					want = true
				case "false":
					want = false
				case "null":
					want = nil
				}
			} else {
				want = unlike(v.val)
			}
			eq := op.val == "="
			return func(r map[string]any) bool {
				got := r[field]
				var same bool
				if gs, ok := got.(string); ok {
					ws, ok2 := want.(string)
					same = ok2 && strings.EqualFold(gs, ws)
				} else {
					same = got == want
				}
				return same == eq
			}, nil
		case strings.EqualFold(op.val, "IN"):
			if next().val != "(" {
				return nil, fmt.Errorf("want (")
			}
			var vals []string
			for {
				v := next()
				if v.kind != "str" {
					return nil, fmt.Errorf("want literal")
				}
				vals = append(vals, unlike(v.val))
				if t := next(); t.val == ")" {
					break
				} else if t.val != "," {
					return nil, fmt.Errorf("want ,")
				}
			}
			return func(r map[string]any) bool {
				gs, _ := r[field].(string)
				for _, v := range vals {
					if strings.EqualFold(gs, v) {
						return true
					}
				}
				return false
			}, nil
		case strings.EqualFold(op.val, "LIKE"):
			v := next()
			if v.kind != "str" {
				return nil, fmt.Errorf("want literal")
			}
			return func(r map[string]any) bool { gs, _ := r[field].(string); return likeMatch(v.val, gs) }, nil
		}
		return nil, fmt.Errorf("unknown operator %q", op.val)
	}
	parseAnd := func() (cond, error) {
		c, err := parseAtom()
		if err != nil {
			return nil, err
		}
		for strings.EqualFold(peek().val, "AND") {
			next()
			d, err := parseAtom()
			if err != nil {
				return nil, err
			}
			a, b := c, d
			c = func(r map[string]any) bool { return a(r) && b(r) }
		}
		return c, nil
	}
	parseOr = func() (cond, error) {
		c, err := parseAnd()
		if err != nil {
			return nil, err
		}
		for strings.EqualFold(peek().val, "OR") {
			next()
			d, err := parseAnd()
			if err != nil {
				return nil, err
			}
			a, b := c, d
			c = func(r map[string]any) bool { return a(r) || b(r) }
		}
		return c, nil
	}
	if strings.EqualFold(peek().val, "WHERE") {
		next()
		c, err := parseOr()
		if err != nil {
			return errs(400, "MALFORMED_QUERY", err.Error())
		}
		where = c
	}
	type key struct {
		f    string
		desc bool
	}
	var order []key
	limit := -1
	for pos < len(ts) {
		t := next()
		switch strings.ToUpper(t.val) {
		case "ORDER":
			next() // BY
			for {
				k := key{f: next().val}
				if u := strings.ToUpper(peek().val); u == "ASC" || u == "DESC" {
					k.desc = u == "DESC"
					next()
				}
				order = append(order, k)
				if peek().val != "," {
					break
				}
				next()
			}
		case "LIMIT":
			_, _ = fmt.Sscan(next().val, &limit)
		default:
			return errs(400, "MALFORMED_QUERY", "unexpected "+t.val)
		}
	}
	var recs []map[string]any
	for _, id := range o.order[obj] {
		if r := o.recs[obj][id]; r != nil && where(r) {
			recs = append(recs, r)
		}
	}
	sort.SliceStable(recs, func(i, j int) bool {
		for _, k := range order {
			a, b := fmt.Sprint(recs[i][k.f]), fmt.Sprint(recs[j][k.f])
			if a != b {
				return (a < b) != k.desc
			}
		}
		return false
	})
	if limit >= 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	out := []map[string]any{}
	for _, r := range recs {
		m := map[string]any{"attributes": map[string]any{"type": obj}}
		for _, f := range fields {
			m[f] = r[f]
		}
		out = append(out, m)
	}
	return resp{200, map[string]any{"totalSize": len(out), "done": true, "records": out}}
}
