package salesforcetest

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"
)

// decodeBlob decodes a base64 blob sent in JSON, refusing one larger than
// Options.MaxJSONBlob.
func (s *Server) decodeBlob(f *field, x string) ([]byte, *apiError) {
	x = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' {
			return -1
		}
		return r
	}, x)
	if base64.StdEncoding.DecodedLen(len(x)) > s.opts.MaxJSONBlob+2 {
		return nil, &apiError{ErrorCode: "STRING_TOO_LONG", Message: f.Name + ": data value too large", Fields: []string{f.Name}}
	}
	b, err := base64.StdEncoding.DecodeString(x)
	if err != nil {
		return nil, &apiError{ErrorCode: "JSON_PARSER_ERROR", Message: "Cannot deserialize instance of base64 from VALUE_STRING value for field " + f.Name + ": " + err.Error()}
	}
	if len(b) > s.opts.MaxJSONBlob {
		return nil, &apiError{ErrorCode: "STRING_TOO_LONG", Message: f.Name + ": data value too large", Fields: []string{f.Name}}
	}
	return b, nil
}

// handleMultipartCreate serves a multipart/form-data create: a part named
// "entity_content" with the JSON fields and a part named after the blob
// field (VersionData) with the bytes.
func (s *Server) handleMultipartCreate(o *object, rq *request) *response {
	if rq.sub {
		return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "multipart bodies are not supported in composite subrequests")
	}
	mt, params, err := mime.ParseMediaType(rq.contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "Content-Type must be multipart/form-data with a boundary")
	}
	var blobField *field
	for _, n := range o.order {
		if f := o.field(n); f.Type == typeBase64 {
			blobField = f
		}
	}
	if blobField == nil {
		return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "sObject type "+o.Name+" has no blob field")
	}
	mr := multipart.NewReader(bytes.NewReader(rq.body), params["boundary"])
	var entity map[string]any
	var blob []byte
	haveBlob := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "malformed multipart body: "+err.Error())
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "malformed multipart body: "+err.Error())
		}
		switch name := part.FormName(); {
		case name == "entity_content":
			if entity != nil {
				return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "more than one entity_content part")
			}
			var r *response
			if entity, r = decodeObject(data); r != nil {
				return r
			}
		case strings.EqualFold(name, blobField.Name):
			if haveBlob {
				return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "more than one binary part")
			}
			blob, haveBlob = data, true
		default:
			return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "unexpected part "+name)
		}
	}
	if entity == nil {
		return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", "the entity_content part is missing")
	}
	for k := range entity {
		if strings.EqualFold(k, blobField.Name) {
			return errOne(http.StatusBadRequest, "INVALID_MULTIPART_REQUEST", blobField.Name+" must be sent as a binary part, not in entity_content")
		}
	}
	vals, errs := s.convertInput(o, entity, true)
	if errs != nil {
		return errResp(http.StatusBadRequest, errs...)
	}
	if haveBlob {
		vals[blobField.Name] = blob
	}
	id, errs := s.createValues(o, vals, rq)
	if errs != nil {
		return errResp(http.StatusBadRequest, errs...)
	}
	return &response{
		status: http.StatusCreated,
		header: http.Header{"Location": {s.recordURL(o.Name, id)}},
		body:   map[string]any{"id": id, "success": true, "errors": []any{}},
	}
}

// linkContent completes a new ContentVersion: computed fields, a new
// ContentDocument (or a new version of the given one), and a
// ContentDocumentLink to FirstPublishLocationId. s.mu is held.
func (s *Server) linkContent(rec record, userID string) []apiError {
	b, _ := rec["VersionData"].([]byte)
	sum := md5.Sum(b)
	rec["ContentSize"] = float64(len(b))
	rec["Checksum"] = hex.EncodeToString(sum[:])
	if p, _ := rec["PathOnClient"].(string); p != "" {
		if ext := strings.TrimPrefix(path.Ext(strings.ReplaceAll(p, "\\", "/")), "."); ext != "" {
			rec["FileExtension"] = strings.ToLower(ext)
		}
	}
	docObj := s.schema["contentdocument"]
	var doc record
	if docID, ok := rec["ContentDocumentId"].(string); ok {
		doc = s.db.get("ContentDocument", docID)
		for _, v := range s.db.all("ContentVersion") {
			if v["ContentDocumentId"] == docID && v["IsLatest"] == true {
				nv := make(record, len(v))
				for k, x := range v {
					nv[k] = x
				}
				nv["IsLatest"] = false
				s.db.put("ContentVersion", nv)
			}
		}
		nd := make(record, len(doc))
		for k, x := range doc {
			nd[k] = x
		}
		doc = nd
	} else {
		doc = s.newRecord(docObj, map[string]any{}, userID)
		rec["ContentDocumentId"] = doc["Id"]
	}
	doc["Title"] = rec["Title"]
	doc["LatestPublishedVersionId"] = rec["Id"]
	doc["FileExtension"] = rec["FileExtension"]
	doc["ContentSize"] = rec["ContentSize"]
	s.db.put("ContentDocument", doc)
	if loc, ok := rec["FirstPublishLocationId"].(string); ok {
		linkObj := s.schema["contentdocumentlink"]
		link := s.newRecord(linkObj, map[string]any{"LinkedEntityId": loc, "ContentDocumentId": doc["Id"]}, userID)
		s.db.put("ContentDocumentLink", link)
	}
	return nil
}
