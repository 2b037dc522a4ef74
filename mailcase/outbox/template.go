package outbox

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"reflect"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// TemplateData is what a template sees: {{.Case.Number}}, {{.Contact.Name}},
// {{.Mail.Subject}}... Fields that do not apply to a message are zero.
type TemplateData struct {
	Case    mailcase.Case
	Contact mailcase.Contact
	Account mailcase.Account
	// Queue is the case's queue and Agent the agent who wrote or owns it.
	Queue string
	Agent mailcase.Employee
	// Mail is the mail that caused the message (the customer's mail for an
	// acknowledgement, the agent's for a confirmation).
	Mail TemplateMail
	// Mailbox is the mailbox the message is sent for.
	Mailbox TemplateMailbox
	// Subject is the subject the threading package formats for a mail
	// about the case, with the case number ("Re: About Case 1234 ::
	// Printer jams"), "" when no threading codec is configured.
	Subject string
	// Reference is the line that lets a reply find the case again (the
	// signed context ID), "" when there is none; Body is the agent's text
	// of a Log Email.
	Reference string
	Body      string
	// Vars are the variables of a structured mail's automated reply
	// ({{.Vars.NAME}}, {{index .Vars "ADDRESS.CITY"}}); nil elsewhere.
	Vars map[string]string
}

// TemplateMail is the triggering mail as templates see it.
type TemplateMail struct {
	From      mailcase.Address
	Subject   string
	Date      time.Time
	Text      string
	MessageID string
}

// TemplateMailbox is the mailbox as templates see it.
type TemplateMailbox struct {
	Name, Address string
}

// ErrTemplate is matched (errors.Is) by every template error.
var ErrTemplate = errors.New("outbox: template")

// Template renders the subject and bodies of one kind of message. The
// subject and text body are text/template, the HTML body html/template
// (values are escaped for HTML). Every template is checked when it is
// parsed: a syntax error, a field that TemplateData does not have
// ({{.Case.Nmber}}) or an unknown function is an error then, never when a
// message is sent.
type Template struct {
	Name    string
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// TemplateSource is the text of a Template; HTML may be empty (text only).
type TemplateSource struct {
	Subject, Text, HTML string
}

// templateFuncs are the functions templates may call.
var templateFuncs = map[string]any{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"trim":  strings.TrimSpace,
	"default": func(def, v string) string {
		if strings.TrimSpace(v) == "" {
			return def
		}
		return v
	},
	"date": func(layout string, t time.Time) string { return t.Format(layout) },
	"quote": func(s string) string {
		if s == "" {
			return ""
		}
		return "> " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n> ")
	},
}

// ParseTemplate parses and checks src under name (used in errors, for
// example "mailbox support: acknowledgement").
func ParseTemplate(name string, src TemplateSource) (*Template, error) {
	if strings.TrimSpace(src.Subject) == "" || strings.TrimSpace(src.Text) == "" {
		return nil, fmt.Errorf("%w %s: a subject and a text body are required", ErrTemplate, name)
	}
	t := &Template{Name: name}
	var err error
	if t.subject, err = parseText(name, "subject", src.Subject); err != nil {
		return nil, err
	}
	if t.text, err = parseText(name, "text", src.Text); err != nil {
		return nil, err
	}
	if src.HTML != "" {
		h, err := htmltemplate.New("html").Option("missingkey=error").Funcs(templateFuncs).Parse(src.HTML)
		if err != nil {
			return nil, fmt.Errorf("%w %s: html: %s", ErrTemplate, name, trimTemplateErr(err))
		}
		for _, sub := range h.Templates() {
			if err := checkFields(sub.Tree, name, "html"); err != nil {
				return nil, err
			}
		}
		t.html = h
	}
	return t, nil
}

func parseText(name, part, src string) (*texttemplate.Template, error) {
	tt, err := texttemplate.New(part).Option("missingkey=error").Funcs(templateFuncs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %s: %s", ErrTemplate, name, part, trimTemplateErr(err))
	}
	for _, sub := range tt.Templates() { // {{define}} and {{block}} too
		if err := checkFields(sub.Tree, name, part); err != nil {
			return nil, err
		}
	}
	return tt, nil
}

func trimTemplateErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); strings.HasPrefix(s, "template: ") && i >= 0 {
		return strings.TrimPrefix(s, "template: ")
	}
	return s
}

// Rendered is a rendered Template.
type Rendered struct {
	Subject, Text, HTML string
}

// Render renders t with d. The subject is one line: line breaks in it
// (from a value) become spaces.
func (t *Template) Render(d *TemplateData) (Rendered, error) {
	var r Rendered
	var b bytes.Buffer
	if err := t.subject.Execute(&b, d); err != nil {
		return r, fmt.Errorf("%w %s: subject: %w", ErrTemplate, t.Name, err)
	}
	r.Subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := t.text.Execute(&b, d); err != nil {
		return r, fmt.Errorf("%w %s: text: %w", ErrTemplate, t.Name, err)
	}
	r.Text = b.String()
	if t.html != nil {
		b.Reset()
		if err := t.html.Execute(&b, d); err != nil {
			return r, fmt.Errorf("%w %s: html: %w", ErrTemplate, t.Name, err)
		}
		r.HTML = b.String()
	}
	return r, nil
}

// checkFields walks a parsed template and checks that every field chain
// on dot or $ exists in TemplateData, following dot into {{with}} and
// {{range}}, in every template of the set ({{define}} and {{block}}
// bodies are checked with TemplateData as dot). A field of another
// variable or of a function's result cannot be typed and is refused.
func checkFields(tree *parse.Tree, name, part string) error {
	if tree == nil || tree.Root == nil {
		return nil
	}
	c := &fieldChecker{name: name, part: part, tree: tree}
	c.walk(tree.Root, reflect.TypeFor[TemplateData]())
	return c.err
}

type fieldChecker struct {
	name, part string
	tree       *parse.Tree
	err        error
}

func (c *fieldChecker) fail(n parse.Node, format string, args ...any) {
	if c.err == nil {
		loc, _ := c.tree.ErrorContext(n)
		c.err = fmt.Errorf("%w %s: %s: %s: %s", ErrTemplate, c.name, c.part, loc, fmt.Sprintf(format, args...))
	}
}

// resolve returns the type of the field chain idents on dot, or nil after
// reporting a missing field.
func (c *fieldChecker) resolve(n parse.Node, dot reflect.Type, idents []string) reflect.Type {
	t := dot
	for i, id := range idents {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil || t.Kind() == reflect.Map || t.Kind() == reflect.Interface {
			return nil // not checked
		}
		if t.Kind() != reflect.Struct {
			c.fail(n, "no field %s: %s is a %s", strings.Join(idents[:i+1], "."), "."+strings.Join(idents[:i], "."), t.Kind())
			return nil
		}
		f, ok := t.FieldByName(id)
		if ok && f.IsExported() {
			t = f.Type
			continue
		}
		if _, ok := reflect.PointerTo(t).MethodByName(id); ok && i == len(idents)-1 {
			return nil
		}
		c.fail(n, "no field %s in %s (the fields are %s)", strings.Join(idents[:i+1], "."), t.Name(), fieldNames(t))
		return nil
	}
	return t
}

func fieldNames(t reflect.Type) string {
	var names []string
	for f := range t.Fields() {
		if f.IsExported() {
			names = append(names, f.Name)
		}
	}
	return strings.Join(names, ", ")
}

// pipeType checks a pipeline and returns the type of its value when it is
// a plain field chain on dot.
func (c *fieldChecker) pipeType(p *parse.PipeNode, dot reflect.Type) reflect.Type {
	if p == nil {
		return nil
	}
	var last reflect.Type
	for _, cmd := range p.Cmds {
		last = nil
		for _, a := range cmd.Args {
			switch a := a.(type) {
			case *parse.FieldNode:
				last = c.resolve(a, dot, a.Ident)
			case *parse.ChainNode:
				if _, ok := a.Node.(*parse.DotNode); ok {
					last = c.resolve(a, dot, a.Field)
				} else {
					c.fail(a, "a field of %s cannot be checked when the template is parsed; write the field on . or $", a.Node)
				}
			case *parse.VariableNode:
				switch {
				case a.Ident[0] == "$":
					last = c.resolve(a, reflect.TypeFor[TemplateData](), a.Ident[1:])
				case len(a.Ident) > 1:
					c.fail(a, "a field of the variable %s cannot be checked when the template is parsed; write it on . or $", a.Ident[0])
				}
			case *parse.PipeNode:
				c.pipeType(a, dot)
			case *parse.DotNode:
				last = dot
			}
		}
		if len(cmd.Args) > 1 {
			last = nil // a function call
		}
	}
	return last
}

func (c *fieldChecker) walk(n parse.Node, dot reflect.Type) {
	if c.err != nil || n == nil {
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, x := range n.Nodes {
			c.walk(x, dot)
		}
	case *parse.ActionNode:
		c.pipeType(n.Pipe, dot)
	case *parse.IfNode:
		c.pipeType(n.Pipe, dot)
		c.walk(n.List, dot)
		c.walk(n.ElseList, dot)
	case *parse.WithNode:
		t := c.pipeType(n.Pipe, dot)
		c.walkIn(n.List, t)
		c.walk(n.ElseList, dot)
	case *parse.RangeNode:
		t := c.pipeType(n.Pipe, dot)
		if t != nil {
			switch t.Kind() {
			case reflect.Slice, reflect.Array, reflect.Map:
				t = t.Elem()
			default:
				t = nil
			}
		}
		c.walkIn(n.List, t)
		c.walk(n.ElseList, dot)
	case *parse.TemplateNode:
		c.pipeType(n.Pipe, dot)
	}
}

// walkIn walks a list whose dot has type t (nil: unknown, not checked).
func (c *fieldChecker) walkIn(l *parse.ListNode, t reflect.Type) {
	if t == nil {
		return
	}
	c.walk(l, t)
}
