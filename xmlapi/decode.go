package xmlapi

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Errors returned by Decode; errors.Is matches them through *DecodeError.
var (
	// ErrMalformed: the document is not well-formed XML of this API.
	ErrMalformed = errors.New("xmlapi: malformed request")
	// ErrLimit: the document exceeds a Limits bound.
	ErrLimit = errors.New("xmlapi: request exceeds a limit")
	// ErrDoctype: the document declares a DOCTYPE (entities are refused).
	ErrDoctype = errors.New("xmlapi: DOCTYPE is not allowed")
)

// DecodeError is returned by Decode and Validate. Path names the element
// (for example "request/createCase[2]") when known.
type DecodeError struct {
	Path string
	Err  error // one of the sentinels above, possibly wrapping a detail
	Msg  string
}

func (e *DecodeError) Error() string {
	s := e.Err.Error()
	if e.Path != "" {
		s += " at " + e.Path
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Limits bounds a request. A nil *Limits or zero fields mean the defaults.
type Limits struct {
	// MaxBytes is the largest document; 0 means 1 MiB.
	MaxBytes int64
	// MaxDepth is the deepest element nesting; 0 means 16.
	MaxDepth int
	// MaxTokens bounds the XML tokens; 0 means 100,000.
	MaxTokens int
	// MaxActions bounds the actions of one request; 0 means 100.
	MaxActions int
}

func (l *Limits) withDefaults() Limits {
	var o Limits
	if l != nil {
		o = *l
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 16
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 100_000
	}
	if o.MaxActions <= 0 {
		o.MaxActions = 100
	}
	return o
}

// Decode reads one request from r within the limits. It refuses DOCTYPE
// declarations, so no entity is ever defined or expanded, and checks the
// namespace, the version and every action (see Validate).
func Decode(r io.Reader, lim *Limits) (*Request, error) {
	l := lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, l.MaxBytes+1))
	if err != nil {
		return nil, &DecodeError{Err: ErrMalformed, Msg: err.Error()}
	}
	if int64(len(data)) > l.MaxBytes {
		return nil, &DecodeError{Err: ErrLimit, Msg: fmt.Sprintf("more than %d bytes", l.MaxBytes)}
	}
	if err := scan(data, l); err != nil {
		return nil, err
	}
	var req Request
	if err := xml.Unmarshal(data, &req); err != nil {
		return nil, &DecodeError{Err: ErrMalformed, Msg: err.Error()}
	}
	if len(req.Actions) > l.MaxActions {
		return nil, &DecodeError{Path: "request", Err: ErrLimit, Msg: fmt.Sprintf("more than %d actions", l.MaxActions)}
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return &req, nil
}

// scan walks the tokens once, enforcing the depth and token limits and
// refusing directives, before the document is unmarshalled.
func scan(data []byte, l Limits) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	depth, tokens, roots := 0, 0, 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &DecodeError{Err: ErrMalformed, Msg: err.Error()}
		}
		tokens++
		if tokens > l.MaxTokens {
			return &DecodeError{Err: ErrLimit, Msg: fmt.Sprintf("more than %d tokens", l.MaxTokens)}
		}
		switch t := tok.(type) {
		case xml.Directive:
			return &DecodeError{Err: ErrDoctype}
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return &DecodeError{Err: ErrMalformed, Msg: "more than one root element"}
				}
			}
			depth++
			if depth > l.MaxDepth {
				return &DecodeError{Path: t.Name.Local, Err: ErrLimit, Msg: fmt.Sprintf("nested deeper than %d", l.MaxDepth)}
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return &DecodeError{Err: ErrMalformed, Msg: "text outside the root element"}
			}
		}
	}
	if roots == 0 {
		return &DecodeError{Err: ErrMalformed, Msg: "no root element"}
	}
	if depth != 0 {
		return &DecodeError{Err: ErrMalformed, Msg: "unclosed element"}
	}
	return nil
}

func knownAction(name string) bool {
	switch name {
	case ActCreateContact, ActCreateCase, ActAddNote, ActSetStatus, ActSetPriority, ActDispatch, ActAssign, ActClose:
		return true
	}
	return isRecordAction(name)
}

func validStatus(s string) bool {
	switch s {
	case "new", "open", "in_progress", "closed", "cancelled":
		return true
	}
	return false
}

func validPriority(p string) bool {
	switch p {
	case "low", "normal", "high", "urgent":
		return true
	}
	return false
}

// Validate checks the version and the required attributes of every action,
// naming the action's position in the error. Actions outside the namespace
// or with unknown names are ignored (forward compatibility).
func (r *Request) Validate() error {
	if r.Version != "" && r.Version != "1" {
		return &DecodeError{Path: "request", Err: ErrMalformed, Msg: fmt.Sprintf("unsupported version %q", r.Version)}
	}
	hasCase := false // a createCase earlier in the request supplies the case
	for i, a := range r.Actions {
		if a.XMLName.Space != Namespace || !knownAction(a.XMLName.Local) {
			continue
		}
		path := fmt.Sprintf("request/%s[%d]", a.XMLName.Local, i+1)
		bad := func(msg string) error { return &DecodeError{Path: path, Err: ErrMalformed, Msg: msg} }
		needCase := func() error {
			if strings.TrimSpace(a.Case) == "" && !hasCase {
				return bad("missing case attribute")
			}
			return nil
		}
		switch a.XMLName.Local {
		case ActCreateContact:
			if strings.TrimSpace(a.Email) == "" {
				return bad("missing email attribute")
			}
			if err := validateRecord(&a, bad); err != nil {
				return err
			}
		case ActCreateCase:
			if strings.TrimSpace(a.Subject) == "" {
				return bad("missing subject")
			}
			if a.Priority != "" && !validPriority(a.Priority) {
				return bad(fmt.Sprintf("unknown priority %q", a.Priority))
			}
			hasCase = true
		case ActAddNote:
			if err := needCase(); err != nil {
				return err
			}
			if strings.TrimSpace(a.Body) == "" {
				return bad("missing body")
			}
		case ActSetStatus:
			if err := needCase(); err != nil {
				return err
			}
			if !validStatus(a.Status) {
				return bad(fmt.Sprintf("unknown status %q", a.Status))
			}
		case ActSetPriority:
			if err := needCase(); err != nil {
				return err
			}
			if !validPriority(a.Priority) {
				return bad(fmt.Sprintf("unknown priority %q", a.Priority))
			}
		case ActDispatch:
			if err := needCase(); err != nil {
				return err
			}
			if strings.TrimSpace(a.Queue) == "" {
				return bad("missing queue attribute")
			}
		case ActAssign:
			if err := needCase(); err != nil {
				return err
			}
			if strings.TrimSpace(a.Owner) == "" {
				return bad("missing owner attribute")
			}
		case ActClose:
			if err := needCase(); err != nil {
				return err
			}
		default:
			if err := validateRecord(&a, bad); err != nil {
				return err
			}
		}
	}
	return nil
}
