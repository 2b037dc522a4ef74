//lint:file-ignore ST1005 the fake answers with the texts Dataverse itself sends (capitalised, with a full stop)

package dynamicstest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The $filter dialect: comparisons "property op literal" (or "property op
// property" of the same type) with op one of eq
// ne gt ge lt le; and, or, not, parentheses; contains, startswith and
// endswith over a text property and a string literal. Literals: strings in
// single quotes ('' is a quote), GUIDs, numbers, true, false, null and
// DateTimeOffset values (2024-01-31 or RFC 3339), all unquoted except
// strings. String comparisons are case-insensitive, as in Dataverse's SQL
// collation; the three functions compile to SQL LIKE, so % _ and [...] in
// their argument are wildcards.

type tokKind int

const (
	tkEOF tokKind = iota
	tkLParen
	tkRParen
	tkComma
	tkString
	tkWord
)

type token struct {
	kind tokKind
	text string // word text or unescaped string
	pos  int
}

func lexFilter(q string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			toks = append(toks, token{kind: tkLParen, pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tkRParen, pos: i})
			i++
		case c == ',':
			toks = append(toks, token{kind: tkComma, pos: i})
			i++
		case c == '\'':
			start := i
			var b strings.Builder
			i++
			for {
				if i >= len(q) {
					return nil, fmt.Errorf("There is an unterminated literal at position %d in '%s'.", start, q)
				}
				if q[i] == '\'' {
					if i+1 < len(q) && q[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(q[i])
				i++
			}
			toks = append(toks, token{kind: tkString, text: b.String(), pos: start})
		default:
			start := i
			for i < len(q) && !strings.ContainsRune(" \t\r\n(),'", rune(q[i])) {
				i++
			}
			toks = append(toks, token{kind: tkWord, text: q[start:i], pos: start})
		}
	}
	return append(toks, token{kind: tkEOF, pos: len(q)}), nil
}

type litKind int

const (
	lkNull litKind = iota
	lkString
	lkNumber
	lkBool
	lkGUID
	lkTime
)

func (k litKind) edm() string {
	return [...]string{"null", "Edm.String", "Edm.Double", "Edm.Boolean", "Edm.Guid", "Edm.DateTimeOffset"}[k]
}

type literal struct {
	kind litKind
	s    string
	n    float64
	b    bool
	t    time.Time
}

var (
	identRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	numberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?[mMdDfFlL]?$`)
)

func wordLiteral(w string) (literal, bool) {
	switch w {
	case "null":
		return literal{kind: lkNull}, true
	case "true", "false":
		return literal{kind: lkBool, b: w == "true"}, true
	}
	if guidRE.MatchString(w) {
		return literal{kind: lkGUID, s: strings.ToLower(w)}, true
	}
	if numberRE.MatchString(w) {
		n, err := strconv.ParseFloat(strings.TrimRight(w, "mMdDfFlL"), 64)
		return literal{kind: lkNumber, n: n}, err == nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, w); err == nil {
			return literal{kind: lkTime, t: t}, true
		}
	}
	return literal{}, false
}

type filterParser struct {
	q    string
	e    *entity
	toks []token
	i    int
}

// A pred evaluates a filter with SQL's three-valued logic: Dataverse
// returns a row only when the filter is true, not when it is null, so
// "emailaddress1 ne 'x'" skips rows whose emailaddress1 is null.
type pred = func(record) tri

// tri is a three-valued truth value.
type tri int8

const (
	triFalse tri = iota
	triTrue
	triNull
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// compileFilter parses q against e's columns.
func compileFilter(e *entity, q string) (func(record) bool, error) {
	toks, err := lexFilter(q)
	if err != nil {
		return nil, err
	}
	p := &filterParser{q: q, e: e, toks: toks}
	f, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tkEOF {
		return nil, p.syntax(t)
	}
	return func(r record) bool { return f(r) == triTrue }, nil
}

func (p *filterParser) peek() token { return p.toks[p.i] }
func (p *filterParser) next() token {
	t := p.toks[p.i]
	if t.kind != tkEOF {
		p.i++
	}
	return t
}

func (p *filterParser) syntax(t token) error {
	return fmt.Errorf("Syntax error at position %d in '%s'.", t.pos, p.q)
}

func (p *filterParser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tkWord && t.text == w
}

func (p *filterParser) or() (pred, error) {
	return p.chain("or", p.and, func(a, b tri) tri {
		switch {
		case a == triTrue || b == triTrue:
			return triTrue
		case a == triNull || b == triNull:
			return triNull
		}
		return triFalse
	})
}

func (p *filterParser) and() (pred, error) {
	return p.chain("and", p.unary, func(a, b tri) tri {
		switch {
		case a == triFalse || b == triFalse:
			return triFalse
		case a == triNull || b == triNull:
			return triNull
		}
		return triTrue
	})
}

// chain parses operands joined by the left-associative operator word,
// combining their three-valued results with op.
func (p *filterParser) chain(word string, operand func() (pred, error), op func(a, b tri) tri) (pred, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for p.isWord(word) {
		p.next()
		r, err := operand()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(x record) tri { return op(a(x), b(x)) }
	}
	return l, nil
}

func (p *filterParser) unary() (pred, error) {
	if p.isWord("not") {
		p.next()
		f, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(x record) tri {
			switch f(x) {
			case triTrue:
				return triFalse
			case triFalse:
				return triTrue
			}
			return triNull
		}, nil
	}
	return p.primary()
}

func (p *filterParser) primary() (pred, error) {
	t := p.next()
	switch t.kind {
	case tkLParen:
		f, err := p.or()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tkRParen {
			return nil, p.syntax(c)
		}
		return f, nil
	case tkWord:
		if p.peek().kind == tkLParen {
			return p.function(t)
		}
		return p.comparison(t)
	}
	return nil, p.syntax(t)
}

func (p *filterParser) column(t token) (string, attrType, error) {
	if !identRE.MatchString(t.text) {
		return "", 0, p.syntax(t)
	}
	typ, ok := p.e.column(t.text)
	if !ok {
		return "", 0, fmt.Errorf("Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", t.text, p.e.logical)
	}
	return t.text, typ, nil
}

func (p *filterParser) function(name token) (pred, error) {
	var build func(string) string
	switch name.text {
	case "contains":
		build = func(s string) string { return "%" + s + "%" }
	case "startswith":
		build = func(s string) string { return s + "%" }
	case "endswith":
		build = func(s string) string { return "%" + s }
	default:
		return nil, fmt.Errorf("An unknown function with name '%s' was found. This may also be a function import or a key lookup on a navigation property, which is not allowed. (in '%s')", name.text, p.q)
	}
	p.next() // (
	ct := p.next()
	if ct.kind != tkWord {
		return nil, p.syntax(ct)
	}
	col, typ, err := p.column(ct)
	if err != nil {
		return nil, err
	}
	if typ != tString && typ != tMemo {
		return nil, fmt.Errorf("The function '%s' requires a text property; '%s' is %s (in '%s').", name.text, col, typ.edmOrGUID(), p.q)
	}
	if c := p.next(); c.kind != tkComma {
		return nil, p.syntax(c)
	}
	lt := p.next()
	if lt.kind != tkString {
		return nil, p.syntax(lt)
	}
	if c := p.next(); c.kind != tkRParen {
		return nil, p.syntax(c)
	}
	re := likeRegexp(build(lt.text))
	return func(x record) tri {
		s, ok := x[col].(string)
		if !ok {
			return triNull
		}
		return triOf(re.MatchString(s))
	}, nil
}

func (t attrType) edmOrGUID() string {
	if t == 0 {
		return "Edm.Guid"
	}
	return t.edm()
}

var opNames = map[string]string{"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual", "lt": "LessThan", "le": "LessThanOrEqual"}

func (p *filterParser) comparison(left token) (pred, error) {
	if _, isLit := wordLiteral(left.text); isLit || !identRE.MatchString(left.text) {
		return nil, fmt.Errorf("The left operand at position %d in '%s' must be a property (dynamicstest needs a property on the left).", left.pos, p.q)
	}
	col, typ, err := p.column(left)
	if err != nil {
		return nil, err
	}
	opTok := p.next()
	op := opTok.text
	if opTok.kind != tkWord || opNames[op] == "" {
		return nil, p.syntax(opTok)
	}
	rt := p.next()
	var lit literal
	switch rt.kind {
	case tkString:
		lit = literal{kind: lkString, s: rt.text}
	case tkWord:
		var ok bool
		if lit, ok = wordLiteral(rt.text); !ok {
			if identRE.MatchString(rt.text) {
				return p.columnComparison(col, typ, op, rt)
			}
			return nil, p.syntax(rt)
		}
	default:
		return nil, p.syntax(rt)
	}
	if lit.kind != lkNull && !compatible(typ, lit.kind) {
		return nil, fmt.Errorf("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.", typ.edmOrGUID(), lit.kind.edm(), opNames[op])
	}
	return func(x record) tri { return compareOp(x[col], op, lit) }, nil
}

// columnComparison compares two columns of the same type, e.g.
// "firstname eq lastname".
func (p *filterParser) columnComparison(left string, lt attrType, op string, rt token) (pred, error) {
	right, rtyp, err := p.column(rt)
	if err != nil {
		return nil, err
	}
	if lt.edmOrGUID() != rtyp.edmOrGUID() {
		return nil, fmt.Errorf("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.", lt.edmOrGUID(), rtyp.edmOrGUID(), opNames[op])
	}
	return func(x record) tri {
		a, b := x[left], x[right]
		if a == nil || b == nil {
			return triNull
		}
		c := compareValues(a, b)
		if lt == tDateTime {
			ta, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(a))
			tb, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(b))
			c = ta.Compare(tb)
		}
		return triOf(map[string]bool{"eq": c == 0, "ne": c != 0, "gt": c > 0, "ge": c >= 0, "lt": c < 0, "le": c <= 0}[op])
	}, nil
}

func compatible(t attrType, k litKind) bool {
	switch t {
	case 0:
		return k == lkGUID
	case tString, tMemo, tBase64:
		return k == lkString
	case tInt, tOption, tState, tStatus:
		return k == lkNumber
	case tBool:
		return k == lkBool
	case tDateTime:
		return k == lkTime
	}
	return false
}

func compareOp(v any, op string, lit literal) tri {
	if lit.kind == lkNull {
		switch op { // IS NULL / IS NOT NULL
		case "eq":
			return triOf(v == nil)
		case "ne":
			return triOf(v != nil)
		}
		return triNull
	}
	if v == nil {
		return triNull
	}
	return triOf(compareNonNull(v, op, lit))
}

func compareNonNull(v any, op string, lit literal) bool {
	var c int
	switch lit.kind {
	case lkString, lkGUID:
		s, _ := v.(string)
		c = strings.Compare(strings.ToLower(s), strings.ToLower(lit.s))
	case lkNumber:
		f, ok := toFloat(v)
		if !ok {
			return false
		}
		switch {
		case f < lit.n:
			c = -1
		case f > lit.n:
			c = 1
		}
	case lkBool:
		b, _ := v.(bool)
		switch {
		case b == lit.b:
		case !b:
			c = -1
		default:
			c = 1
		}
	case lkTime:
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return false
		}
		c = t.Compare(lit.t)
	}
	switch op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	}
	return c <= 0 // le
}

// likeRegexp translates a SQL Server LIKE pattern (% _ [abc] [a-z] [^a]) to
// a case-insensitive regular expression.
func likeRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?is)^`)
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '%':
			b.WriteString(`.*`)
		case '_':
			b.WriteString(`.`)
		case '[':
			end := -1
			for j := i + 2; j < len(rs); j++ {
				if rs[j] == ']' {
					end = j
					break
				}
			}
			if end < 0 {
				b.WriteString(regexp.QuoteMeta(string(r)))
				continue
			}
			body := rs[i+1 : end]
			b.WriteByte('[')
			if body[0] == '^' {
				b.WriteByte('^')
				body = body[1:]
			}
			for k, c := range body {
				switch {
				case c == '-' && k > 0 && k < len(body)-1:
					b.WriteByte('-') // a range such as a-z
				case c == '-':
					b.WriteString(`\-`) // QuoteMeta leaves '-' alone
				default:
					b.WriteString(regexp.QuoteMeta(string(c)))
				}
			}
			b.WriteByte(']')
			i = end
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return regexp.MustCompile(`^\b$`) // an impossible class such as [^] matches nothing
	}
	return re
}
