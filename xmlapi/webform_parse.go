package xmlapi

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// TemplateIDElement is the element naming an ERMS webform's template.
const TemplateIDElement = "WEBFORM_TEMPL_ID"

// xmlDecl matches an XML declaration of version 1.x.
var xmlDecl = regexp.MustCompile(`<\?xml\s+version\s*=\s*["']1\.[0-9]["']`)

// IsWebform reports whether body is an ERMS webform by the seed's rule:
// the body holds both the XML declaration (<?xml version="1.0"?>) and the
// <WEBFORM_TEMPL_ID> tag. The declaration may be left out when the body,
// after leading whitespace, starts with an element.
func IsWebform(body string) bool {
	if !strings.Contains(body, "<"+TemplateIDElement+">") {
		return false
	}
	return xmlDecl.MatchString(body) || strings.HasPrefix(strings.TrimLeft(body, " \t\r\n\ufeff"), "<")
}

// webformDocument returns the XML document of a webform body: from its XML
// declaration when it has one, else from its first element.
func webformDocument(body string) string {
	if loc := xmlDecl.FindStringIndex(body); loc != nil {
		return body[loc[0]:]
	}
	return strings.TrimLeft(body, " \t\r\n\ufeff")
}

// Form is a parsed ERMS webform.
type Form struct {
	// Root is the name of the root element (WEBFORM in the seed).
	Root string
	// TemplateID is the text of the WEBFORM_TEMPL_ID element, wherever
	// it is nested.
	TemplateID string
	// Fields are the root's child elements, in document order, the
	// WEBFORM_TEMPL_ID element included.
	Fields FormFields
	// secret is the text of a top-level secret element (any letter case),
	// the shared secret; it is not among Fields.
	secret string
}

// FormField is one element of a webform: a leaf with a value, or a group
// of nested fields.
type FormField struct {
	Name string
	// Value is the element's text, trimmed of surrounding whitespace.
	Value string
	// Fields are the nested elements of a group, in document order.
	Fields FormFields
}

// FormFields are the fields of a form or group, in document order;
// repeated names are kept.
type FormFields []FormField

// Get returns the value of the first field called name, "" if none.
func (fs FormFields) Get(name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// All returns the values of every field called name, in order.
func (fs FormFields) All(name string) []string {
	var out []string
	for _, f := range fs {
		if f.Name == name {
			out = append(out, f.Value)
		}
	}
	return out
}

// Groups returns the nested fields of every field called name, in order.
func (fs FormFields) Groups(name string) []FormFields {
	var out []FormFields
	for _, f := range fs {
		if f.Name == name {
			out = append(out, f.Fields)
		}
	}
	return out
}

// Lookup returns the value of the first field at a dotted path
// ("ADDRESS.CITY"), descending into the first group of each name.
func (fs FormFields) Lookup(path string) (string, bool) {
	cur := fs
	parts := strings.Split(path, ".")
	for i, p := range parts {
		found := false
		for _, f := range cur {
			if f.Name != p {
				continue
			}
			if i == len(parts)-1 {
				return f.Value, true
			}
			cur, found = f.Fields, true
			break
		}
		if !found {
			return "", false
		}
	}
	return "", false
}

// Flatten returns every leaf as a dotted path and its value, in document
// order; repeated fields give repeated paths.
func (fs FormFields) Flatten() []FormValue {
	var out []FormValue
	var walk func(prefix string, fs FormFields)
	walk = func(prefix string, fs FormFields) {
		for _, f := range fs {
			p := prefix + f.Name
			if len(f.Fields) == 0 {
				out = append(out, FormValue{Path: p, Value: f.Value})
				continue
			}
			if f.Value != "" {
				out = append(out, FormValue{Path: p, Value: f.Value})
			}
			walk(p+".", f.Fields)
		}
	}
	walk("", fs)
	return out
}

// FormValue is one leaf of Flatten.
type FormValue struct{ Path, Value string }

// errTooBig is returned by capReader past its limit.
var errTooBig = errors.New("document too large")

// capReader reads at most n bytes of r and fails with errTooBig when r
// holds more, so a large document is refused without reading it whole.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		var probe [1]byte
		if k, err := c.r.Read(probe[:]); k > 0 {
			return 0, errTooBig
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	return k, err
}

// ParseForm reads one ERMS webform from r within lim (the bounds of the
// own format: size, depth, tokens). It streams: a document larger than
// MaxBytes is refused after MaxBytes are read. DOCTYPE declarations are
// refused, so no entity is defined or expanded; only the five predefined
// entities and character references are decoded. Whatever follows the
// root element (a mail footer) is ignored. Errors match ErrMalformed,
// ErrLimit or ErrDoctype.
func ParseForm(r io.Reader, lim *Limits) (*Form, error) {
	l := lim.withDefaults()
	d := xml.NewDecoder(&capReader{r: r, n: l.MaxBytes})
	d.Strict = true
	var (
		form   Form
		stack  []*FormField // open elements below the root
		text   []*strings.Builder
		depth  int
		tokens int
		ids    int
	)
	fail := func(err error) (*Form, error) {
		if errors.Is(err, errTooBig) {
			return nil, &DecodeError{Err: ErrLimit, Msg: fmt.Sprintf("webform larger than %d bytes", l.MaxBytes)}
		}
		if err == io.EOF {
			return nil, &DecodeError{Err: ErrMalformed, Msg: "webform ends before its root element closes"}
		}
		return nil, &DecodeError{Err: ErrMalformed, Msg: "webform: " + err.Error()}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF && depth == 0 && form.Root == "" {
				return nil, &DecodeError{Err: ErrMalformed, Msg: "webform has no root element"}
			}
			return fail(err)
		}
		tokens++
		if tokens > l.MaxTokens {
			return nil, &DecodeError{Err: ErrLimit, Msg: fmt.Sprintf("webform has more than %d tokens", l.MaxTokens)}
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, &DecodeError{Err: ErrDoctype}
		case xml.StartElement:
			depth++
			if depth > l.MaxDepth {
				return nil, &DecodeError{Path: t.Name.Local, Err: ErrLimit, Msg: fmt.Sprintf("webform nested deeper than %d", l.MaxDepth)}
			}
			if depth == 1 {
				form.Root = t.Name.Local
				continue
			}
			stack = append(stack, &FormField{Name: t.Name.Local})
			text = append(text, &strings.Builder{})
		case xml.CharData:
			if depth == 0 {
				if len(strings.TrimSpace(string(t))) > 0 {
					return nil, &DecodeError{Err: ErrMalformed, Msg: "webform: text before the root element"}
				}
				continue
			}
			if len(text) > 0 {
				text[len(text)-1].Write(t)
			}
		case xml.EndElement:
			depth--
			if depth == 0 {
				if ids == 0 || form.TemplateID == "" {
					return nil, &DecodeError{Path: form.Root, Err: ErrMalformed, Msg: "webform has no " + TemplateIDElement}
				}
				return &form, nil
			}
			f := stack[len(stack)-1]
			f.Value = strings.TrimSpace(text[len(text)-1].String())
			stack, text = stack[:len(stack)-1], text[:len(text)-1]
			if f.Name == TemplateIDElement {
				ids++
				if ids > 1 && f.Value != form.TemplateID {
					return nil, &DecodeError{Path: form.Root, Err: ErrMalformed, Msg: "webform has two different " + TemplateIDElement}
				}
				form.TemplateID = f.Value
			}
			if len(stack) == 0 {
				if strings.EqualFold(f.Name, "secret") && len(f.Fields) == 0 {
					form.secret = f.Value
					continue
				}
				form.Fields = append(form.Fields, *f)
				continue
			}
			parent := stack[len(stack)-1]
			parent.Fields = append(parent.Fields, *f)
		}
	}
}
