package salesforcetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

const (
	maxSubrequests       = 25
	maxQuerySubrequests  = 5
	maxCollectionRecords = 200
)

type subrequest struct {
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	ReferenceID string            `json:"referenceId"`
	Body        json.RawMessage   `json:"body"`
	HTTPHeaders map[string]string `json:"httpHeaders"`
}

type subresult struct {
	Body           any               `json:"body"`
	HTTPHeaders    map[string]string `json:"httpHeaders"`
	HTTPStatusCode int               `json:"httpStatusCode"`
	ReferenceID    string            `json:"referenceId"`
}

var refIDRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// refRE matches @{refId.path} references: a dotted path with [n] indexes.
var refRE = regexp.MustCompile(`@\{([A-Za-z][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+|\[[0-9]+\])+)\}`)

var processingHalted = apiError{ErrorCode: "PROCESSING_HALTED", Message: "The transaction was rolled back since another operation in the same transaction failed."}

// handleComposite serves POST composite. s.mu is held for the whole
// request, so it runs as one transaction.
func (s *Server) handleComposite(rq *request) *response {
	var in struct {
		AllOrNone          bool         `json:"allOrNone"`
		CollateSubrequests bool         `json:"collateSubrequests"`
		CompositeRequest   []subrequest `json:"compositeRequest"`
	}
	if err := json.Unmarshal(rq.body, &in); err != nil {
		return errOne(http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize the composite request: "+err.Error())
	}
	if len(in.CompositeRequest) == 0 {
		return errOne(http.StatusBadRequest, "INVALID_API_INPUT", "compositeRequest must contain at least one subrequest")
	}
	if len(in.CompositeRequest) > maxSubrequests {
		return errOne(http.StatusBadRequest, "LIMIT_EXCEEDED", fmt.Sprintf("The composite request contains %d subrequests; at most %d are allowed", len(in.CompositeRequest), maxSubrequests))
	}
	queries := 0
	seen := map[string]bool{}
	for _, sr := range in.CompositeRequest {
		if !refIDRE.MatchString(sr.ReferenceID) {
			return errOne(http.StatusBadRequest, "INVALID_API_INPUT", fmt.Sprintf("Invalid referenceId '%s': it must start with a letter and contain only letters, digits and underscores", sr.ReferenceID))
		}
		if seen[sr.ReferenceID] {
			return errOne(http.StatusBadRequest, "INVALID_API_INPUT", fmt.Sprintf("Duplicate referenceId provided in the request: %s", sr.ReferenceID))
		}
		seen[sr.ReferenceID] = true
		switch strings.ToUpper(sr.Method) {
		case http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		default:
			return errOne(http.StatusBadRequest, "INVALID_API_INPUT", fmt.Sprintf("Invalid HTTP method '%s' in subrequest %s", sr.Method, sr.ReferenceID))
		}
		segs, ok := subrequestPath(sr.URL)
		if !ok {
			return errOne(http.StatusBadRequest, "INVALID_API_INPUT", fmt.Sprintf("Invalid url '%s' in subrequest %s: it must start with /services/data/vXX.X/", sr.URL, sr.ReferenceID))
		}
		if len(segs) > 0 && (segs[0] == "query" || segs[0] == "queryAll") || len(segs) > 1 && segs[0] == "composite" && segs[1] == "sobjects" {
			queries++
		}
	}
	if queries > maxQuerySubrequests {
		return errOne(http.StatusBadRequest, "LIMIT_EXCEEDED", fmt.Sprintf("The composite request contains %d query or sObject Collections subrequests; at most %d are allowed", queries, maxQuerySubrequests))
	}

	var snapshot *database
	if in.AllOrNone {
		snapshot = s.db.clone()
	}
	results := make([]subresult, len(in.CompositeRequest))
	refs := map[string]any{}
	failed := false
	for i, sr := range in.CompositeRequest {
		res := &results[i]
		res.ReferenceID = sr.ReferenceID
		res.HTTPHeaders = map[string]string{}
		if failed && in.AllOrNone {
			res.HTTPStatusCode = http.StatusBadRequest
			res.Body = []apiError{processingHalted}
			continue
		}
		r := s.runSubrequest(rq, sr, refs, in.AllOrNone)
		res.HTTPStatusCode = r.status
		for k := range r.header {
			if k != "Sforce-Limit-Info" && k != "Content-Type" {
				res.HTTPHeaders[k] = r.header.Get(k)
			}
		}
		if r.raw != nil {
			res.Body = string(r.raw)
		} else if r.status != http.StatusNoContent {
			res.Body = r.body
		}
		if r.status >= 400 {
			failed = true
			continue
		}
		// Keep the body as plain JSON values for reference resolution.
		if b, err := json.Marshal(res.Body); err == nil {
			var v any
			if json.Unmarshal(b, &v) == nil {
				refs[sr.ReferenceID] = v
			}
		}
	}
	if failed && in.AllOrNone {
		s.db = snapshot
		for i := range results {
			if results[i].HTTPStatusCode < 400 {
				results[i].HTTPStatusCode = http.StatusBadRequest
				results[i].Body = []apiError{processingHalted}
				results[i].HTTPHeaders = map[string]string{}
			}
		}
	}
	return jsonResp(http.StatusOK, map[string]any{"compositeResponse": results})
}

// subrequestPath checks a subrequest URL and returns its segments after the version.
func subrequestPath(raw string) ([]string, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, false
	}
	segs, ok := splitPath(u.EscapedPath())
	if !ok || len(segs) < 4 || !versionRE.MatchString(segs[2]) {
		return nil, false
	}
	return segs[3:], true
}

// runSubrequest resolves references in one subrequest and runs it.
func (s *Server) runSubrequest(parent *request, sr subrequest, refs map[string]any, allOrNone bool) *response {
	rawURL, err := resolveString(sr.URL, refs, true)
	if err != nil {
		return errOne(http.StatusBadRequest, "PROCESSING_HALTED", err.Error())
	}
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return errOne(http.StatusBadRequest, "INVALID_API_INPUT", "invalid url: "+rawURL)
	}
	segs, ok := splitPath(u.EscapedPath())
	if !ok || len(segs) < 4 || !versionRE.MatchString(segs[2]) {
		return errResp(http.StatusNotFound, notFound)
	}
	var body []byte
	if len(sr.Body) > 0 && !bytes.Equal(bytes.TrimSpace(sr.Body), []byte("null")) {
		d := json.NewDecoder(bytes.NewReader(sr.Body))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return errOne(http.StatusBadRequest, "JSON_PARSER_ERROR", err.Error())
		}
		v, err := resolveValue(v, refs)
		if err != nil {
			return errOne(http.StatusBadRequest, "PROCESSING_HALTED", err.Error())
		}
		body, _ = json.Marshal(v)
	}
	hdr := parent.header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	for k, v := range sr.HTTPHeaders {
		hdr.Set(k, v)
	}
	sub := &request{
		method:      strings.ToUpper(sr.Method),
		segs:        segs[3:],
		query:       u.Query(),
		header:      hdr,
		contentType: "application/json",
		body:        body,
		userID:      parent.userID,
		sub:         true,
	}
	if allOrNone {
		t := true
		sub.allOrNone = &t
	}
	return s.route(sub)
}

type refError struct{ ref, path string }

func (e *refError) Error() string {
	return fmt.Sprintf("Invalid reference specified. No value for %s%s found in %s. Provided referenceId ('%s') must be unique and exist in the request.", e.ref, e.path, e.ref, e.ref)
}

// resolveString replaces each @{ref.path} in s. In a URL the values are
// path-escaped.
func resolveString(s string, refs map[string]any, inURL bool) (string, error) {
	var firstErr error
	out := refRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := refRE.FindStringSubmatch(m)
		v, ok := lookupRef(refs, sub[1], sub[2])
		if !ok {
			if firstErr == nil {
				firstErr = &refError{ref: sub[1], path: sub[2]}
			}
			return m
		}
		str := scalarString(v)
		if inURL {
			return url.PathEscape(str)
		}
		return str
	})
	return out, firstErr
}

// resolveValue resolves references in every string of a decoded JSON value.
// A string that is exactly one reference takes the referenced value itself.
func resolveValue(v any, refs map[string]any) (any, error) {
	switch x := v.(type) {
	case string:
		if m := refRE.FindStringSubmatch(x); m != nil && m[0] == x {
			val, ok := lookupRef(refs, m[1], m[2])
			if !ok {
				return nil, &refError{ref: m[1], path: m[2]}
			}
			return val, nil
		}
		return resolveString(x, refs, false)
	case map[string]any:
		for k, e := range x {
			r, err := resolveValue(e, refs)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	case []any:
		for i, e := range x {
			r, err := resolveValue(e, refs)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	}
	return v, nil
}

var pathStepRE = regexp.MustCompile(`\.([A-Za-z0-9_]+)|\[([0-9]+)\]`)

func lookupRef(refs map[string]any, ref, path string) (any, bool) {
	cur, ok := refs[ref]
	if !ok {
		return nil, false
	}
	for _, m := range pathStepRE.FindAllStringSubmatch(path, -1) {
		if m[1] != "" {
			obj, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = obj[m[1]]; !ok {
				return nil, false
			}
			continue
		}
		arr, ok := cur.([]any)
		n, _ := strconv.Atoi(m[2])
		if !ok || n >= len(arr) {
			return nil, false
		}
		cur = arr[n]
	}
	if cur == nil {
		return nil, false
	}
	return cur, true
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// collectionResult is one element of an sObject Collections answer.
type collectionResult struct {
	ID      string            `json:"id,omitempty"`
	Success bool              `json:"success"`
	Errors  []collectionError `json:"errors"`
}

type collectionError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

// handleCollections serves POST composite/sobjects.
func (s *Server) handleCollections(rq *request) *response {
	var in struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	d := json.NewDecoder(bytes.NewReader(rq.body))
	d.UseNumber()
	if err := d.Decode(&in); err != nil {
		return errOne(http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize the request: "+err.Error())
	}
	if len(in.Records) > maxCollectionRecords {
		return errOne(http.StatusBadRequest, "EXCEEDED_ID_LIMIT", fmt.Sprintf("record limit reached. cannot submit more than %d records into this call", maxCollectionRecords))
	}
	allOrNone := in.AllOrNone
	if rq.allOrNone != nil {
		allOrNone = *rq.allOrNone
	}
	var snapshot *database
	if allOrNone {
		snapshot = s.db.clone()
	}
	results := make([]collectionResult, len(in.Records))
	failed := false
	for i, rec := range in.Records {
		var typ string
		if attrs, ok := rec["attributes"].(map[string]any); ok {
			typ, _ = attrs["type"].(string)
		}
		o := s.schema[strings.ToLower(typ)]
		var errs []apiError
		var id string
		switch {
		case typ == "":
			errs = []apiError{{ErrorCode: "INVALID_TYPE", Message: "Must specify a type in attributes"}}
		case o == nil:
			errs = []apiError{{ErrorCode: "INVALID_TYPE", Message: fmt.Sprintf("sObject type '%s' is not supported.", typ)}}
		default:
			id, errs = s.create(o, rec, rq)
		}
		if errs != nil {
			failed = true
			results[i] = collectionResult{Errors: toCollectionErrors(errs)}
			continue
		}
		results[i] = collectionResult{ID: id, Success: true, Errors: []collectionError{}}
	}
	if failed && allOrNone {
		s.db = snapshot
		for i := range results {
			if results[i].Success || len(results[i].Errors) == 0 {
				results[i] = collectionResult{Errors: []collectionError{{
					StatusCode: "ALL_OR_NONE_OPERATION_ROLLED_BACK",
					Message:    "Record rolled back because not all records were valid and the request was using AllOrNone header",
					Fields:     []string{},
				}}}
			}
		}
		if rq.sub {
			// Inside an allOrNone composite request the failure halts the whole request.
			return &response{status: http.StatusBadRequest, body: results}
		}
	}
	return jsonResp(http.StatusOK, results)
}

func toCollectionErrors(errs []apiError) []collectionError {
	out := make([]collectionError, len(errs))
	for i, e := range errs {
		f := e.Fields
		if f == nil {
			f = []string{}
		}
		out[i] = collectionError{StatusCode: e.ErrorCode, Message: e.Message, Fields: f}
	}
	return out
}
