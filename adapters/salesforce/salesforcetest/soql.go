package salesforcetest

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file implements a small SOQL subset:
//
//	SELECT field, ... | COUNT() FROM Object
//	  [WHERE condition] [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
//	  [LIMIT n] [OFFSET n]
//
// Conditions use =, !=, <>, <, <=, >, >=, LIKE, IN (...), NOT IN (...),
// with a semi-join "field IN (SELECT idField FROM ...)" allowed; AND, OR,
// NOT and parentheses. As in Salesforce, AND and OR cannot be mixed at one
// level without parentheses. Literals are quoted strings (with the
// documented backslash escapes), numbers, true, false, null and dateTime
// literals (2024-01-31T10:00:00Z).

// soqlError is a query failure, reported as a 400.
type soqlError struct {
	code, msg string
}

func (e *soqlError) Error() string { return e.code + ": " + e.msg }

func malformed(format string, args ...any) *soqlError {
	return &soqlError{code: "MALFORMED_QUERY", msg: fmt.Sprintf(format, args...)}
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokDateTime
	tokOp
	tokLParen
	tokRParen
	tokComma
)

type soqlTok struct {
	kind tokKind
	text string // identifier, operator, number; the raw content of a string literal
	pos  int    // byte offset
}

// lexSOQL splits a query into tokens. String literals keep their raw
// content, with every escape sequence checked for being one SOQL knows;
// \_ and \% are checked later, since they are valid only in LIKE patterns.
func lexSOQL(q string) ([]soqlTok, *soqlError) {
	var toks []soqlTok
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			start := i
			i++
			var raw strings.Builder
			closed := false
			for i < len(q) {
				c := q[i]
				if c == '\'' {
					closed = true
					i++
					break
				}
				if c == '\\' {
					if i+1 >= len(q) {
						break
					}
					e := q[i+1]
					switch e {
					case 'n', 'N', 'r', 'R', 't', 'T', 'b', 'B', 'f', 'F', '"', '\'', '\\', '_', '%':
						raw.WriteString(q[i : i+2])
						i += 2
						continue
					case 'u':
						if i+6 <= len(q) && isHex(q[i+2:i+6]) {
							raw.WriteString(q[i : i+6])
							i += 6
							continue
						}
					}
					end := strings.IndexByte(q[i+1:], '\'')
					lit := q[start:]
					if end >= 0 {
						lit = q[start : i+2+end]
					}
					seq := q[i : i+2]
					if e >= utf8.RuneSelf {
						_, n := utf8.DecodeRuneInString(q[i+1:])
						seq = q[i : i+1+n]
					}
					return nil, malformed("Invalid string literal %s. Illegal character sequence '%s' in string literal.", lit, seq)
				}
				raw.WriteByte(c)
				i++
			}
			if !closed {
				return nil, malformed("unterminated string literal at column %d: %s", start+1, q[start:])
			}
			toks = append(toks, soqlTok{kind: tokString, text: raw.String(), pos: start})
		case c == '(':
			toks = append(toks, soqlTok{kind: tokLParen, text: "(", pos: i})
			i++
		case c == ')':
			toks = append(toks, soqlTok{kind: tokRParen, text: ")", pos: i})
			i++
		case c == ',':
			toks = append(toks, soqlTok{kind: tokComma, text: ",", pos: i})
			i++
		case c == '=':
			toks = append(toks, soqlTok{kind: tokOp, text: "=", pos: i})
			i++
		case c == '!' || c == '<' || c == '>':
			op := string(c)
			if i+1 < len(q) && (q[i+1] == '=' || c == '<' && q[i+1] == '>') {
				op = q[i : i+2]
			}
			if op == "!" {
				return nil, malformed("unexpected token: '!' at column %d", i+1)
			}
			toks = append(toks, soqlTok{kind: tokOp, text: op, pos: i})
			i += len(op)
		case c >= '0' && c <= '9' || (c == '-' || c == '+' || c == '.') && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			start := i
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j-start == 4 && c != '-' && c != '+' && j < len(q) && q[j] == '-' {
				// A date or dateTime literal.
				for j < len(q) && strings.IndexByte("0123456789-:.TZ+", q[j]) >= 0 {
					j++
				}
				toks = append(toks, soqlTok{kind: tokDateTime, text: q[start:j], pos: start})
				i = j
				continue
			}
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			if j < len(q) && isIdentChar(q[j]) {
				return nil, malformed("unexpected token: '%s' at column %d", q[start:j+1], start+1)
			}
			toks = append(toks, soqlTok{kind: tokNumber, text: q[start:j], pos: start})
			i = j
		case c == '_' || c < utf8.RuneSelf && unicode.IsLetter(rune(c)):
			start := i
			for i < len(q) && (isIdentChar(q[i]) || q[i] == '.') {
				i++
			}
			toks = append(toks, soqlTok{kind: tokIdent, text: q[start:i], pos: start})
		default:
			r, _ := utf8.DecodeRuneInString(q[i:])
			return nil, malformed("unexpected character '%c' at column %d", r, i+1)
		}
	}
	return append(toks, soqlTok{kind: tokEOF, pos: len(q)}), nil
}

func isIdentChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte("0123456789abcdefABCDEF", s[i]) < 0 {
			return false
		}
	}
	return true
}

// unescapeSOQL decodes the raw content of a string literal outside a LIKE
// pattern, where \_ and \% are not valid.
func unescapeSOQL(raw string) (string, *soqlError) {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case 'n', 'N':
			b.WriteByte('\n')
		case 'r', 'R':
			b.WriteByte('\r')
		case 't', 'T':
			b.WriteByte('\t')
		case 'b', 'B':
			b.WriteByte('\b')
		case 'f', 'F':
			b.WriteByte('\f')
		case '"', '\'', '\\':
			b.WriteByte(raw[i])
		case 'u':
			n, _ := strconv.ParseUint(raw[i+1:i+5], 16, 32)
			b.WriteRune(rune(n))
			i += 4
		default: // \_ or \%
			return "", malformed("Invalid string literal '%s'. Illegal character sequence '\\%c' in string literal.", raw, raw[i])
		}
	}
	return b.String(), nil
}

// likeElem is one element of a compiled LIKE pattern.
type likeElem struct {
	any  bool // %: any sequence
	one  bool // _: any single character
	char rune // a literal character, lower-cased
}

// compileLike decodes a LIKE pattern: % and _ are wildcards, \% and \_ are
// the literal characters, and the other escapes mean what they mean
// elsewhere.
func compileLike(raw string) ([]likeElem, *soqlError) {
	var out []likeElem
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case '%':
			out = append(out, likeElem{any: true})
			i++
			continue
		case '_':
			out = append(out, likeElem{one: true})
			i++
			continue
		case '\\':
			if raw[i+1] == '%' || raw[i+1] == '_' {
				out = append(out, likeElem{char: rune(raw[i+1])})
				i += 2
				continue
			}
			n := 2
			if raw[i+1] == 'u' {
				n = 6
			}
			s, err := unescapeSOQL(raw[i : i+n])
			if err != nil {
				return nil, err
			}
			for _, r := range s {
				out = append(out, likeElem{char: unicode.ToLower(r)})
			}
			i += n
			continue
		}
		r, n := utf8.DecodeRuneInString(raw[i:])
		out = append(out, likeElem{char: unicode.ToLower(r)})
		i += n
	}
	return out, nil
}

// matchLike reports whether s matches the pattern, case-insensitively.
func matchLike(p []likeElem, s string) bool {
	rs := []rune(strings.ToLower(s))
	// Iterative matching with backtracking on the last %.
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(rs) {
		switch {
		case pi < len(p) && !p[pi].any && (p[pi].one || p[pi].char == rs[si]):
			pi++
			si++
		case pi < len(p) && p[pi].any:
			starP, starS = pi, si
			pi++
		case starP >= 0:
			starS++
			pi, si = starP+1, starS
		default:
			return false
		}
	}
	for pi < len(p) && p[pi].any {
		pi++
	}
	return pi == len(p)
}

// ---- parser ----

type literal struct {
	kind tokKind // tokString, tokNumber, tokDateTime, or tokIdent for true/false/null
	s    string  // decoded string
	n    float64
	b    bool
	null bool
	t    time.Time
}

type cond interface {
	eval(s *Server, rec record) bool
}

type andCond []cond
type orCond []cond
type notCond struct{ c cond }

type cmpCond struct {
	f    *field
	op   string // = != < <= > >= LIKE IN NOTIN
	lit  literal
	like []likeElem
	set  []literal
}

func (c andCond) eval(s *Server, r record) bool {
	for _, x := range c {
		if !x.eval(s, r) {
			return false
		}
	}
	return true
}

func (c orCond) eval(s *Server, r record) bool {
	for _, x := range c {
		if x.eval(s, r) {
			return true
		}
	}
	return false
}

func (c notCond) eval(s *Server, r record) bool { return !c.c.eval(s, r) }

func (c *cmpCond) eval(_ *Server, r record) bool {
	v := r[c.f.Name]
	switch c.op {
	case "LIKE":
		sv, ok := v.(string)
		return ok && matchLike(c.like, sv)
	case "IN", "NOTIN":
		in := false
		for _, l := range c.set {
			if equalValue(c.f, v, l) {
				in = true
				break
			}
		}
		return in == (c.op == "IN")
	case "=":
		return equalValue(c.f, v, c.lit)
	case "!=":
		return !equalValue(c.f, v, c.lit)
	}
	if v == nil || c.lit.null {
		return false
	}
	n, ok := compareValue(c.f, v, c.lit)
	if !ok {
		return false
	}
	switch c.op {
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	case ">=":
		return n >= 0
	}
	return false
}

func equalValue(f *field, v any, l literal) bool {
	if l.null {
		return v == nil
	}
	if v == nil {
		return false
	}
	n, ok := compareValue(f, v, l)
	return ok && n == 0
}

// compareValue compares a stored value with a literal of a matching type.
func compareValue(f *field, v any, l literal) (int, bool) {
	switch x := v.(type) {
	case string:
		if f.Type == typeID || f.Type == typeRef {
			if x == l.s {
				return 0, true
			}
			return strings.Compare(x, l.s), true
		}
		return strings.Compare(strings.ToLower(x), strings.ToLower(l.s)), true
	case bool:
		if x == l.b {
			return 0, true
		}
		if !x {
			return -1, true
		}
		return 1, true
	case float64:
		switch {
		case x < l.n:
			return -1, true
		case x > l.n:
			return 1, true
		}
		return 0, true
	case time.Time:
		return x.Compare(l.t), true
	}
	return 0, false
}

type orderKey struct {
	f         *field
	desc      bool
	nullsLast bool
}

type soqlQuery struct {
	obj    *object
	fields []*field
	count  bool
	where  cond
	order  []orderKey
	limit  int // -1: none
	offset int
}

type soqlParser struct {
	s    *Server
	q    string
	toks []soqlTok
	i    int
}

func (p *soqlParser) peek() soqlTok { return p.toks[p.i] }
func (p *soqlParser) next() soqlTok {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *soqlParser) isKeyword(kw string) bool {
	t := p.peek()
	return t.kind == tokIdent && strings.EqualFold(t.text, kw)
}

func (p *soqlParser) expectKeyword(kw string) *soqlError {
	if !p.isKeyword(kw) {
		return p.unexpected()
	}
	p.next()
	return nil
}

func (p *soqlParser) unexpected() *soqlError {
	t := p.peek()
	if t.kind == tokEOF {
		return malformed("unexpected end of query at column %d", t.pos+1)
	}
	text := t.text
	if t.kind == tokString {
		text = "'" + text + "'"
	}
	return malformed("\n%s\n%s^\nERROR at Row:1:Column:%d\nunexpected token: %s", p.q, strings.Repeat(" ", t.pos), t.pos+1, text)
}

var reserved = map[string]bool{
	"select": true, "from": true, "where": true, "and": true, "or": true, "not": true,
	"like": true, "in": true, "order": true, "by": true, "limit": true, "offset": true,
	"asc": true, "desc": true, "nulls": true, "null": true, "true": true, "false": true,
	"group": true, "having": true, "includes": true, "excludes": true,
}

// parseSOQL parses a query against the server's schema.
func (s *Server) parseSOQL(q string) (*soqlQuery, *soqlError) {
	toks, err := lexSOQL(q)
	if err != nil {
		return nil, err
	}
	p := &soqlParser{s: s, q: q, toks: toks}
	sq, err := p.parseQuery()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tokEOF {
		return nil, p.unexpected()
	}
	return sq, nil
}

func (p *soqlParser) parseQuery() (*soqlQuery, *soqlError) {
	if err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	sq := &soqlQuery{limit: -1}
	var names []soqlTok
	if p.isKeyword("COUNT") && p.toks[p.i+1].kind == tokLParen {
		p.next()
		p.next()
		if p.peek().kind != tokRParen {
			return nil, &soqlError{code: "MALFORMED_QUERY", msg: "salesforcetest supports only COUNT() among aggregate functions"}
		}
		p.next()
		sq.count = true
	} else {
		for {
			t := p.peek()
			if t.kind != tokIdent || reserved[strings.ToLower(t.text)] {
				return nil, p.unexpected()
			}
			names = append(names, p.next())
			if p.peek().kind != tokComma {
				break
			}
			p.next()
		}
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return nil, err
	}
	ot := p.next()
	// A reserved word is an object name here when the schema has that
	// object: Salesforce takes FROM Group (the queues and public groups).
	if ot.kind != tokIdent || reserved[strings.ToLower(ot.text)] && p.s.schema[strings.ToLower(ot.text)] == nil {
		p.i--
		return nil, p.unexpected()
	}
	sq.obj = p.s.schema[strings.ToLower(ot.text)]
	if sq.obj == nil {
		return nil, &soqlError{code: "INVALID_TYPE", msg: fmt.Sprintf("\n%s\n%s^\nERROR at Row:1:Column:%d\nsObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", p.q, strings.Repeat(" ", ot.pos), ot.pos+1, ot.text)}
	}
	seen := map[string]bool{}
	for _, t := range names {
		f, err := p.field(sq.obj, t)
		if err != nil {
			return nil, err
		}
		if seen[f.Name] {
			return nil, malformed("duplicate field selected: %s", f.Name)
		}
		seen[f.Name] = true
		sq.fields = append(sq.fields, f)
	}
	if p.isKeyword("WHERE") {
		p.next()
		c, err := p.parseCond(sq.obj)
		if err != nil {
			return nil, err
		}
		sq.where = c
	}
	if p.isKeyword("ORDER") {
		p.next()
		if err := p.expectKeyword("BY"); err != nil {
			return nil, err
		}
		for {
			t := p.next()
			if t.kind != tokIdent {
				p.i--
				return nil, p.unexpected()
			}
			f, err := p.field(sq.obj, t)
			if err != nil {
				return nil, err
			}
			if f.NoFilter {
				return nil, &soqlError{code: "INVALID_FIELD", msg: fmt.Sprintf("field '%s' can not be sorted in a query call", f.Name)}
			}
			k := orderKey{f: f}
			if p.isKeyword("ASC") {
				p.next()
			} else if p.isKeyword("DESC") {
				p.next()
				k.desc = true
			}
			k.nullsLast = k.desc
			if p.isKeyword("NULLS") {
				p.next()
				switch {
				case p.isKeyword("FIRST"):
					k.nullsLast = false
				case p.isKeyword("LAST"):
					k.nullsLast = true
				default:
					return nil, p.unexpected()
				}
				p.next()
			}
			sq.order = append(sq.order, k)
			if p.peek().kind != tokComma {
				break
			}
			p.next()
		}
	}
	if p.isKeyword("LIMIT") {
		p.next()
		n, err := p.integer()
		if err != nil {
			return nil, err
		}
		sq.limit = n
	}
	if p.isKeyword("OFFSET") {
		p.next()
		n, err := p.integer()
		if err != nil {
			return nil, err
		}
		if n > 2000 {
			return nil, &soqlError{code: "NUMBER_OUTSIDE_VALID_RANGE", msg: "Maximum SOQL offset allowed is 2000"}
		}
		sq.offset = n
	}
	return sq, nil
}

func (p *soqlParser) integer() (int, *soqlError) {
	t := p.peek()
	if t.kind != tokNumber {
		return 0, p.unexpected()
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n < 0 {
		return 0, p.unexpected()
	}
	p.next()
	return n, nil
}

func (p *soqlParser) field(o *object, t soqlTok) (*field, *soqlError) {
	if strings.Contains(t.text, ".") {
		return nil, &soqlError{code: "INVALID_FIELD", msg: fmt.Sprintf("Didn't understand relationship '%s' in field path. salesforcetest supports only fields of the queried object.", t.text)}
	}
	f := o.field(t.text)
	if f == nil || strings.HasPrefix(t.text, "_") {
		return nil, &soqlError{code: "INVALID_FIELD", msg: fmt.Sprintf("\n%s\n%s^\nERROR at Row:1:Column:%d\nNo such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", p.q, strings.Repeat(" ", t.pos), t.pos+1, t.text, o.Name)}
	}
	return f, nil
}

// parseCond parses conditions joined by one kind of connective.
func (p *soqlParser) parseCond(o *object) (cond, *soqlError) {
	first, err := p.parseUnary(o)
	if err != nil {
		return nil, err
	}
	var kind string
	switch {
	case p.isKeyword("AND"):
		kind = "AND"
	case p.isKeyword("OR"):
		kind = "OR"
	default:
		return first, nil
	}
	list := []cond{first}
	for p.isKeyword(kind) {
		p.next()
		c, err := p.parseUnary(o)
		if err != nil {
			return nil, err
		}
		list = append(list, c)
	}
	if p.isKeyword("AND") || p.isKeyword("OR") {
		// SOQL requires parentheses when mixing AND and OR.
		return nil, p.unexpected()
	}
	if kind == "AND" {
		return andCond(list), nil
	}
	return orCond(list), nil
}

func (p *soqlParser) parseUnary(o *object) (cond, *soqlError) {
	if p.isKeyword("NOT") {
		p.next()
		c, err := p.parseUnary(o)
		if err != nil {
			return nil, err
		}
		return notCond{c}, nil
	}
	if p.peek().kind == tokLParen {
		p.next()
		c, err := p.parseCond(o)
		if err != nil {
			return nil, err
		}
		if p.peek().kind != tokRParen {
			return nil, p.unexpected()
		}
		p.next()
		return c, nil
	}
	t := p.peek()
	if t.kind != tokIdent || reserved[strings.ToLower(t.text)] {
		return nil, p.unexpected()
	}
	p.next()
	f, err := p.field(o, t)
	if err != nil {
		return nil, err
	}
	if f.NoFilter {
		return nil, &soqlError{code: "INVALID_FIELD", msg: fmt.Sprintf("\n%s\n%s^\nERROR at Row:1:Column:%d\nfield '%s' can not be filtered in a query call", p.q, strings.Repeat(" ", t.pos), t.pos+1, f.Name)}
	}
	c := &cmpCond{f: f}
	switch op := p.peek(); {
	case op.kind == tokOp:
		p.next()
		c.op = op.text
		if c.op == "<>" {
			c.op = "!="
		}
		lit, err := p.literal(f)
		if err != nil {
			return nil, err
		}
		if lit.null && c.op != "=" && c.op != "!=" {
			return nil, p.unexpectedAt(op)
		}
		if f.Type == typeBool && c.op != "=" && c.op != "!=" {
			return nil, &soqlError{code: "INVALID_QUERY_FILTER_OPERATOR", msg: fmt.Sprintf("invalid operator on boolean field: %s", f.Name)}
		}
		c.lit = lit
	case p.isKeyword("LIKE"):
		p.next()
		if f.Type != typeString && f.Type != typePicklist {
			return nil, &soqlError{code: "INVALID_QUERY_FILTER_OPERATOR", msg: fmt.Sprintf("invalid operator on %s field: %s", f.Type, f.Name)}
		}
		lt := p.peek()
		if lt.kind != tokString {
			return nil, p.unexpected()
		}
		p.next()
		c.op = "LIKE"
		if c.like, err = compileLike(lt.text); err != nil {
			return nil, err
		}
	case p.isKeyword("IN") || p.isKeyword("NOT"):
		c.op = "IN"
		if p.isKeyword("NOT") {
			p.next()
			if !p.isKeyword("IN") {
				return nil, p.unexpected()
			}
			c.op = "NOTIN"
		}
		p.next()
		if p.peek().kind != tokLParen {
			return nil, p.unexpected()
		}
		p.next()
		if p.isKeyword("SELECT") {
			set, err := p.semiJoin(f)
			if err != nil {
				return nil, err
			}
			c.set = set
		} else {
			for {
				lit, err := p.literal(f)
				if err != nil {
					return nil, err
				}
				c.set = append(c.set, lit)
				if p.peek().kind != tokComma {
					break
				}
				p.next()
			}
		}
		if p.peek().kind != tokRParen {
			return nil, p.unexpected()
		}
		p.next()
	default:
		return nil, p.unexpected()
	}
	return c, nil
}

func (p *soqlParser) unexpectedAt(t soqlTok) *soqlError {
	save := p.i
	for i, x := range p.toks {
		if x.pos == t.pos {
			p.i = i
		}
	}
	err := p.unexpected()
	p.i = save
	return err
}

// semiJoin evaluates "(SELECT idField FROM Obj WHERE ...)" eagerly, under
// the server's lock, and returns the Ids it yields as literals.
func (p *soqlParser) semiJoin(outer *field) ([]literal, *soqlError) {
	if outer.Type != typeID && outer.Type != typeRef {
		return nil, &soqlError{code: "INVALID_FIELD", msg: "semi join sub-selects are only allowed on Id and reference fields"}
	}
	sub, err := p.parseQuery()
	if err != nil {
		return nil, err
	}
	if sub.count || len(sub.fields) != 1 || (sub.fields[0].Type != typeID && sub.fields[0].Type != typeRef) {
		return nil, &soqlError{code: "MALFORMED_QUERY", msg: "a semi join sub-select must select exactly one Id or reference field"}
	}
	var out []literal
	for _, rec := range p.s.runQuery(sub) {
		if v, ok := rec[sub.fields[0].Name].(string); ok {
			out = append(out, literal{kind: tokString, s: v})
		}
	}
	return out, nil
}

// literal parses one literal and checks it against the field's type.
func (p *soqlParser) literal(f *field) (literal, *soqlError) {
	t := p.peek()
	typeErr := func(want string, quoted bool) (literal, *soqlError) {
		q := "should not be enclosed in quotes"
		if quoted {
			q = "should be enclosed in quotes"
		}
		return literal{}, &soqlError{code: "INVALID_QUERY_FILTER_OPERATOR", msg: fmt.Sprintf("\n%s\n%s^\nERROR at Row:1:Column:%d\nvalue of filter criterion for field '%s' must be of type %s and %s", p.q, strings.Repeat(" ", t.pos), t.pos+1, f.Name, want, q)}
	}
	switch t.kind {
	case tokIdent:
		switch strings.ToLower(t.text) {
		case "null":
			p.next()
			return literal{kind: tokIdent, null: true}, nil
		case "true", "false":
			if f.Type != typeBool {
				return typeErr(f.Type.String(), f.Type != typeDateTime && f.Type != typeNumber)
			}
			p.next()
			return literal{kind: tokIdent, b: strings.EqualFold(t.text, "true")}, nil
		}
		return literal{}, p.unexpected()
	case tokString:
		switch f.Type {
		case typeString, typePicklist, typeID, typeRef:
		default:
			return typeErr(f.Type.String(), false)
		}
		s, err := unescapeSOQL(t.text)
		if err != nil {
			return literal{}, err
		}
		p.next()
		if f.Type == typeID || f.Type == typeRef {
			id, ok := normID(s)
			if !ok {
				return literal{}, &soqlError{code: "INVALID_QUERY_FILTER_OPERATOR", msg: fmt.Sprintf("\n%s\n%s^\nERROR at Row:1:Column:%d\ninvalid ID field: %s", p.q, strings.Repeat(" ", t.pos), t.pos+1, s)}
			}
			s = id
		}
		if s == "" {
			// Salesforce stores empty text as null.
			return literal{kind: tokString, null: true}, nil
		}
		return literal{kind: tokString, s: s}, nil
	case tokNumber:
		if f.Type != typeNumber {
			return typeErr(f.Type.String(), f.Type != typeBool && f.Type != typeDateTime)
		}
		n, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return literal{}, p.unexpected()
		}
		p.next()
		return literal{kind: tokNumber, n: n}, nil
	case tokDateTime:
		if f.Type != typeDateTime {
			return typeErr(f.Type.String(), f.Type != typeBool && f.Type != typeNumber)
		}
		for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05.000Z0700"} {
			if tm, err := time.Parse(l, t.text); err == nil {
				p.next()
				return literal{kind: tokDateTime, t: tm.UTC()}, nil
			}
		}
		return literal{}, malformed("\n%s\n%s^\nERROR at Row:1:Column:%d\nvalue of filter criterion for field '%s' must be of type dateTime and should not be enclosed in quotes", p.q, strings.Repeat(" ", t.pos), t.pos+1, f.Name)
	}
	return literal{}, p.unexpected()
}

// runQuery evaluates a parsed query. s.mu is held.
func (s *Server) runQuery(q *soqlQuery) []record {
	var out []record
	for _, rec := range s.db.all(q.obj.Name) {
		if q.where == nil || q.where.eval(s, rec) {
			out = append(out, rec)
		}
	}
	if len(q.order) > 0 {
		sort.SliceStable(out, func(i, j int) bool {
			for _, k := range q.order {
				a, b := out[i][k.f.Name], out[j][k.f.Name]
				if a == nil || b == nil {
					if a == nil && b == nil {
						continue
					}
					return (a == nil) != k.nullsLast
				}
				n, _ := compareValue(k.f, a, toLiteral(b))
				if n == 0 {
					continue
				}
				return (n < 0) != k.desc
			}
			return false
		})
	}
	if q.offset > 0 {
		if q.offset >= len(out) {
			out = nil
		} else {
			out = out[q.offset:]
		}
	}
	if q.limit >= 0 && q.limit < len(out) {
		out = out[:q.limit]
	}
	return out
}

func toLiteral(v any) literal {
	switch x := v.(type) {
	case string:
		return literal{kind: tokString, s: x}
	case bool:
		return literal{kind: tokIdent, b: x}
	case float64:
		return literal{kind: tokNumber, n: x}
	case time.Time:
		return literal{kind: tokDateTime, t: x}
	}
	return literal{null: true}
}

// handleQuery serves GET query?q=.
func (s *Server) handleQuery(q string) *response {
	if strings.TrimSpace(q) == "" {
		return errOne(http.StatusBadRequest, "MALFORMED_QUERY", "A query string has to be specified")
	}
	sq, err := s.parseSOQL(q)
	if err != nil {
		return errOne(http.StatusBadRequest, err.code, err.msg)
	}
	recs := s.runQuery(sq)
	out := make([]any, 0, len(recs))
	if !sq.count {
		names := make([]string, len(sq.fields))
		for i, f := range sq.fields {
			names[i] = f.Name
		}
		for _, rec := range recs {
			out = append(out, s.recordJSON(sq.obj, rec, names))
		}
	}
	return jsonResp(http.StatusOK, orderedObject{{"totalSize", len(recs)}, {"done", true}, {"records", out}})
}
