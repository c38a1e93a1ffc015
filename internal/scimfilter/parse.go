package scimfilter

import (
	"fmt"
	"strings"
)

// Parse parses a SCIM filter. The error, if any, is an *Error.
func Parse(s string) (*Filter, error) {
	if strings.TrimSpace(s) == "" {
		return nil, &Error{Pos: 0, Msg: "empty filter"}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &Error{Pos: t.pos, Msg: "unexpected " + t.describe()}
	}
	return &Filter{root: e, src: s}, nil
}

// MustParse is Parse for filters known to be valid; it panics on error.
func MustParse(s string) *Filter {
	f, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return f
}

type parser struct {
	toks    []token
	i       int
	depth   int
	inValue bool // inside a valuePath's brackets
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isKeyword(t token, kw string) bool {
	return t.kind == tWord && strings.EqualFold(t.text, kw)
}

func (p *parser) enter(pos int) error {
	p.depth++
	if p.depth > MaxDepth {
		return &Error{Pos: pos, Msg: fmt.Sprintf("filter nests deeper than %d levels", MaxDepth)}
	}
	return nil
}

func (p *parser) parseOr() (Expr, error) {
	return p.parseJoined("or", p.parseAnd, func(l, r Expr) Expr { return &Or{Left: l, Right: r} })
}

func (p *parser) parseAnd() (Expr, error) {
	return p.parseJoined("and", p.parseUnary, func(l, r Expr) Expr { return &And{Left: l, Right: r} })
}

// parseJoined parses operands joined by the keyword kw, grouping them from
// the left: a kw b kw c is join(join(a, b), c).
func (p *parser) parseJoined(kw string, operand func() (Expr, error), join func(l, r Expr) Expr) (Expr, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for p.isKeyword(p.peek(), kw) {
		p.next()
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = join(l, r)
	}
	return l, nil
}

func (p *parser) parseGroup() (Expr, error) {
	open := p.next() // "("
	if err := p.enter(open.pos); err != nil {
		return nil, err
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tRParen {
		return nil, &Error{Pos: t.pos, Msg: "expected \")\" but found " + t.describe()}
	}
	p.depth--
	return e, nil
}

func (p *parser) parseUnary() (Expr, error) {
	t := p.peek()
	switch {
	case t.kind == tLParen:
		return p.parseGroup()
	case p.isKeyword(t, "not") && p.toks[p.i+1].kind == tLParen:
		p.next()
		x, err := p.parseGroup()
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	case t.kind == tWord:
		return p.parseAttrExp()
	case t.kind == tEOF:
		return nil, &Error{Pos: t.pos, Msg: "expected an attribute expression but found end of filter"}
	default:
		return nil, &Error{Pos: t.pos, Msg: "expected an attribute expression but found " + t.describe()}
	}
}

func (p *parser) parseAttrExp() (Expr, error) {
	at := p.next()
	path, err := splitAttrPath(at.text, at.pos)
	if err != nil {
		return nil, err
	}
	if p.peek().kind == tLBrack {
		open := p.next()
		if p.inValue {
			return nil, &Error{Pos: open.pos, Msg: "value paths cannot be nested"}
		}
		if path.Sub != "" {
			return nil, &Error{Pos: open.pos, Msg: fmt.Sprintf("a value filter applies to a multi-valued attribute, not to %q", path.String())}
		}
		if err := p.enter(open.pos); err != nil {
			return nil, err
		}
		p.inValue = true
		f, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tRBrack {
			return nil, &Error{Pos: t.pos, Msg: "expected \"]\" but found " + t.describe()}
		}
		p.inValue = false
		p.depth--
		return &ValuePath{Path: path, Filter: f}, nil
	}
	ot := p.next()
	op, ok := Op(""), false
	if ot.kind == tWord {
		op, ok = ops[strings.ToLower(ot.text)]
	}
	if !ok {
		return nil, &Error{Pos: ot.pos, Msg: fmt.Sprintf("expected an operator after %q but found %s", at.text, ot.describe())}
	}
	if op == Pr {
		return &Compare{Path: path, Op: Pr}, nil
	}
	vt := p.next()
	c := &Compare{Path: path, Op: op}
	switch {
	case vt.kind == tString:
		c.Value = vt.str
	case vt.kind == tNumber:
		c.Value, c.raw = vt.num, vt.text
	case p.isKeyword(vt, "true"):
		c.Value = true
	case p.isKeyword(vt, "false"):
		c.Value = false
	case p.isKeyword(vt, "null"):
		c.Value = nil
	default:
		return nil, &Error{Pos: vt.pos, Msg: fmt.Sprintf("expected a value after %q but found %s", ot.text, vt.describe())}
	}
	switch op {
	case Co, Sw, Ew:
		if _, ok := c.Value.(string); !ok {
			return nil, &Error{Pos: vt.pos, Msg: fmt.Sprintf("operator %q needs a string value", op)}
		}
	case Gt, Ge, Lt, Le:
		switch c.Value.(type) {
		case bool, nil:
			return nil, &Error{Pos: vt.pos, Msg: fmt.Sprintf("operator %q cannot compare %s", op, vt.text)}
		}
	}
	return c, nil
}
