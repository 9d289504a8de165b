package grafana

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// This file holds a small PromQL parser that checks a dashboard's queries
// against the metrics a registry exports: every selector names an exported
// series, every label in a matcher, by/without, on/ignoring, group_left,
// label_replace and histogram_quantile exists on the series it applies to,
// and the query is well typed (counters go through rate or increase, rate
// takes a range vector over $__rate_interval, and so on). It follows the
// expressions Prometheus accepts, not every corner of them: an expression it
// cannot parse is an error, never silently skipped.

// family is an exported metric family: its type and, per label, the values
// its samples had.
type family struct {
	typ    string // COUNTER, GAUGE, HISTOGRAM, SUMMARY or UNTYPED
	labels map[string]map[string]bool
}

// exports are the metric families a registry exported, by name.
type exports map[string]family

// gatherExports reads what g exports. Only vectors with at least one
// sample are exported: label names are known from samples.
func gatherExports(g prometheus.Gatherer) (exports, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	ex := exports{}
	for _, mf := range mfs {
		f := family{typ: mf.GetType().String(), labels: map[string]map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if f.labels[lp.GetName()] == nil {
					f.labels[lp.GetName()] = map[string]bool{}
				}
				f.labels[lp.GetName()][lp.GetValue()] = true
			}
		}
		ex[mf.GetName()] = f
	}
	return ex, nil
}

// series is a name a selector may use: a family, or the _bucket, _sum or
// _count series of a histogram (or the _sum and _count of a summary).
type series struct {
	family  string
	labels  map[string]bool
	values  map[string]map[string]bool
	counter bool // cumulative: only rate, increase and kin make sense of it
}

// lookup resolves a selector's metric name.
func (ex exports) lookup(name string) (series, error) {
	if f, ok := ex[name]; ok {
		switch f.typ {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			return series{}, fmt.Errorf("metric %s is a histogram, which has no series of its own: use %s_bucket, %[1]s_sum or %[1]s_count", name, name)
		}
		s := series{family: name, labels: map[string]bool{}, values: f.labels, counter: f.typ == "COUNTER"}
		for l := range f.labels {
			s.labels[l] = true
		}
		if f.typ == "SUMMARY" {
			s.labels["quantile"] = true
		}
		return s, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := ex[base]
		if !ok || !(f.typ == "HISTOGRAM" || f.typ == "SUMMARY" && suffix != "_bucket") {
			continue
		}
		s := series{family: base, labels: map[string]bool{}, values: f.labels, counter: true}
		for l := range f.labels {
			s.labels[l] = true
		}
		if suffix == "_bucket" {
			s.labels["le"] = true
		}
		return s, nil
	}
	return series{}, fmt.Errorf("metric %s is not exported by the proxy (it exports %s)", name, strings.Join(ex.names(), ", "))
}

func (ex exports) names() []string {
	var out []string
	for n, f := range ex {
		if f.typ == "HISTOGRAM" {
			out = append(out, n+"_bucket", n+"_sum", n+"_count")
		} else {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// checkExpr parses a PromQL expression and checks it against ex. It returns
// the names of the series the expression selects, and every problem found.
func checkExpr(expr string, ex exports) (used []string, err error) {
	p, err := newParser(expr, ex)
	if err != nil {
		return nil, err
	}
	defer p.recoverSyntax(&err)
	v := p.expr(0)
	p.end()
	switch v.kind {
	case kMatrix, kString:
		p.errorf("the query is %s: a panel can show only an instant vector or a scalar", v.kind)
	default:
		p.consume(v)
	}
	return p.usedNames(), errors.Join(p.errs...)
}

// checkVariableQuery checks a Prometheus template variable query:
// label_values(label), label_values(selector, label), query_result(expr)
// or metrics(regex).
func checkVariableQuery(q string, ex exports) (used []string, err error) {
	q = strings.TrimSpace(q)
	switch {
	case strings.HasPrefix(q, "label_values(") && strings.HasSuffix(q, ")"):
		inner := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
		i := strings.LastIndex(inner, ",")
		label := strings.TrimSpace(inner[i+1:])
		if i < 0 {
			for _, f := range ex {
				if f.labels[label] != nil {
					return nil, nil
				}
			}
			return nil, fmt.Errorf("%s: no exported metric has a label %q", q, label)
		}
		var p *parser
		if p, err = newParser(inner[:i], ex); err != nil {
			return nil, err
		}
		defer p.recoverSyntax(&err)
		v := p.primary()
		p.end()
		if !v.sel {
			p.errorf("%s: the first argument must be a series selector", q)
		} else if v.labels != nil && !v.labels[label] {
			p.errorf("%s: %s has no label %q (it has %s)", q, v.metric, label, list(v.labels))
		}
		return p.usedNames(), errors.Join(p.errs...)
	case strings.HasPrefix(q, "query_result(") && strings.HasSuffix(q, ")"):
		return checkExpr(strings.TrimSuffix(strings.TrimPrefix(q, "query_result("), ")"), ex)
	case strings.HasPrefix(q, "metrics("):
		return nil, nil
	}
	return nil, fmt.Errorf("variable query %q is none of label_values, query_result and metrics", q)
}

// Tokens.

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // metric, label, function and keyword names
	tNumber         // numbers and durations: 0.95, 1e6, 5m, 1h30m
	tString         // a quoted string; val holds it unquoted
	tVar            // a Grafana variable: $x, ${x}, ${x:format}, [[x]]
	tOp             // operators: + - * / % ^ == != < <= > >= = =~ !~
	tPunct          // ( ) { } [ ] , : @
)

type token struct {
	kind tokKind
	text string // as written
	val  string // a string's value
	pos  int
}

func (t token) is(kind tokKind, text string) bool { return t.kind == kind && t.text == text }

func (t token) String() string {
	if t.kind == tEOF {
		return "end of query"
	}
	return strconv.Quote(t.text)
}

// A name may hold colons (recording rules), but not start with one: a colon
// alone separates a subquery's range from its step.
func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == ':' }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }

// lex splits a PromQL expression into tokens, ending with tEOF.
func lex(s string) ([]token, error) {
	var out []token
	i := 0
	emit := func(kind tokKind, end int, val string) {
		out = append(out, token{kind: kind, text: s[i:end], val: val, pos: i})
		i = end
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#': // a comment, to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "[["):
			end := strings.Index(s[i:], "]]")
			if end < 0 {
				return nil, fmt.Errorf("unterminated [[variable at %d", i)
			}
			emit(tVar, i+end+2, "")
		case c == '$':
			j := i + 1
			if j < len(s) && s[j] == '{' {
				end := strings.IndexByte(s[j:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unterminated ${variable at %d", i)
				}
				j += end + 1
			} else {
				for j < len(s) && (isIdentChar(s[j]) && s[j] != ':') {
					j++
				}
			}
			if j == i+1 {
				return nil, fmt.Errorf("a lone $ at %d", i)
			}
			emit(tVar, j, "")
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			emit(tIdent, j, "")
		case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
			j := i + 1
			for j < len(s) {
				if isIdentChar(s[j]) && s[j] != ':' || s[j] == '.' {
					j++
				} else if (s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E') && !strings.ContainsAny(s[i:j], "xX") {
					j++ // an exponent's sign
				} else {
					break
				}
			}
			emit(tNumber, j, "")
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			raw := s[i : j+1]
			val, err := unquote(raw)
			if err != nil {
				return nil, fmt.Errorf("string %s at %d: %w", raw, i, err)
			}
			emit(tString, j+1, val)
		default:
			if len(s) > i+1 {
				switch s[i : i+2] {
				case "==", "!=", "<=", ">=", "=~", "!~":
					emit(tOp, i+2, "")
					continue
				}
			}
			switch c {
			case '+', '-', '*', '/', '%', '^', '<', '>', '=':
				emit(tOp, i+1, "")
			case '(', ')', '{', '}', '[', ']', ',', ':', '@':
				emit(tPunct, i+1, "")
			default:
				return nil, fmt.Errorf("unexpected character %q at %d", c, i)
			}
		}
	}
	out = append(out, token{kind: tEOF, pos: len(s)})
	return out, nil
}

func unquote(raw string) (string, error) {
	switch raw[0] {
	case '`':
		return raw[1 : len(raw)-1], nil
	case '\'':
		inner := strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`)
		return strconv.Unquote(`"` + strings.ReplaceAll(inner, `"`, `\"`) + `"`)
	}
	return strconv.Unquote(raw)
}

// Values.

type kind int

const (
	kScalar kind = iota
	kString
	kVector
	kMatrix
)

func (k kind) String() string {
	return [...]string{"a scalar", "a string", "an instant vector", "a range vector"}[k]
}

// value is what an expression evaluates to, as far as checking goes.
type value struct {
	kind kind
	// labels the series carry; nil when unknown (after an error).
	labels map[string]bool
	// metric and counter describe a selector, bare or with a range.
	metric  string
	counter bool
	sel     bool   // a bare selector, which may take a range
	str     string // a string literal's value
}

// Parser.

type parser struct {
	toks []token
	pos  int
	ex   exports
	errs []error
	used map[string]bool
}

type syntaxError struct{ error }

func newParser(expr string, ex exports) (*parser, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, fmt.Errorf("syntax error: %w", err)
	}
	return &parser{toks: toks, ex: ex, used: map[string]bool{}}, nil
}

func (p *parser) recoverSyntax(err *error) {
	if r := recover(); r != nil {
		se, ok := r.(syntaxError)
		if !ok {
			panic(r)
		}
		*err = errors.Join(append(p.errs, se.error)...)
	}
}

func (p *parser) syntax(format string, args ...any) {
	panic(syntaxError{fmt.Errorf("syntax error at %d: "+format, append([]any{p.peek().pos}, args...)...)})
}

func (p *parser) errorf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) peekAt(n int) token { return p.toks[min(p.pos+n, len(p.toks)-1)] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) expect(kind tokKind, text string) token {
	if t := p.peek(); !t.is(kind, text) {
		p.syntax("expected %q, found %s", text, t)
	}
	return p.next()
}

func (p *parser) end() {
	if t := p.peek(); t.kind != tEOF {
		p.syntax("unexpected %s after the expression", t)
	}
}

func (p *parser) usedNames() []string {
	out := make([]string, 0, len(p.used))
	for n := range p.used {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// consume checks a value used by an operator or function that does not
// make sense of a raw counter.
func (p *parser) consume(v value) {
	if v.counter {
		p.errorf("counter %s is used as it is: its value is a running total since the proxy started; take rate() or increase() of it", v.metric)
	}
}

var precedence = map[string]int{
	"or": 1, "and": 2, "unless": 2,
	"==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
	"+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "atan2": 5, "^": 6,
}

func isComparison(op string) bool { return precedence[op] == 3 }
func isSetOp(op string) bool      { return op == "or" || op == "and" || op == "unless" }

// matching is a binary operator's vector matching.
type matching struct {
	on, ignoring bool
	labels       []string
	group        string // "", "group_left" or "group_right"
	include      []string
	boolean      bool
}

// expr parses a binary expression of operators binding at least as tightly as minPrec.
func (p *parser) expr(minPrec int) value {
	lhs := p.unary()
	for {
		t := p.peek()
		prec, ok := precedence[t.text]
		if !ok || (t.kind != tOp && t.kind != tIdent) || prec < minPrec {
			return lhs
		}
		op := p.next().text
		var m matching
		if p.peek().is(tIdent, "bool") {
			if !isComparison(op) {
				p.syntax("bool modifies comparisons, not %s", op)
			}
			p.next()
			m.boolean = true
		}
		if t := p.peek(); t.is(tIdent, "on") || t.is(tIdent, "ignoring") {
			p.next()
			m.on, m.ignoring = t.text == "on", t.text == "ignoring"
			m.labels = p.labelList()
			if t := p.peek(); t.is(tIdent, "group_left") || t.is(tIdent, "group_right") {
				p.next()
				m.group = t.text
				if p.peek().is(tPunct, "(") {
					m.include = p.labelList()
				}
			}
		}
		next := prec + 1
		if op == "^" {
			next = prec // right-associative
		}
		rhs := p.expr(next)
		lhs = p.binary(op, lhs, rhs, m)
	}
}

func (p *parser) unary() value {
	if t := p.peek(); t.is(tOp, "-") || t.is(tOp, "+") {
		p.next()
		v := p.unary()
		if v.kind != kScalar && v.kind != kVector {
			p.errorf("unary %s of %s", t.text, v.kind)
		}
		p.consume(v)
		return value{kind: v.kind, labels: v.labels}
	}
	return p.postfix()
}

func (p *parser) postfix() value {
	v := p.primary()
	for {
		t := p.peek()
		switch {
		case t.is(tPunct, "["):
			v = p.rangeOf(v)
		case t.is(tIdent, "offset"):
			p.next()
			if p.peek().is(tOp, "-") {
				p.next()
			}
			if d := p.next(); d.kind != tNumber && d.kind != tVar {
				p.syntax("offset takes a duration, not %s", d)
			}
		case t.is(tPunct, "@"):
			p.next()
			d := p.next()
			switch {
			case d.kind == tNumber || d.kind == tVar:
			case d.is(tIdent, "start") || d.is(tIdent, "end"):
				p.expect(tPunct, "(")
				p.expect(tPunct, ")")
			default:
				p.syntax("@ takes a timestamp, start() or end(), not %s", d)
			}
		default:
			return v
		}
	}
}

// allowedRanges are the windows a dashboard's rates may use: Grafana's
// $__rate_interval follows the step and the scrape interval; $__range is
// the dashboard's time range, for totals.
var allowedRanges = map[string]bool{"$__rate_interval": true, "${__rate_interval}": true, "$__range": true, "${__range}": true}

// rangeOf parses [range] after a selector, or [range:step] after any expression.
func (p *parser) rangeOf(v value) value {
	p.expect(tPunct, "[")
	var parts []string
	subquery := false
	for {
		t := p.next()
		switch {
		case t.is(tPunct, "]"):
			if len(parts) == 0 {
				p.syntax("an empty range")
			}
			if !allowedRanges[parts[0]] {
				p.errorf("range [%s] is fixed: use [$__rate_interval] (or [$__range] for a total over the dashboard's time range), so that the window follows the step and the scrape interval", parts[0])
			}
			if subquery {
				if v.kind != kVector {
					p.errorf("a subquery of %s", v.kind)
				}
				p.consume(v)
				return value{kind: kMatrix, labels: v.labels}
			}
			if !v.sel {
				p.syntax("a range [%s] applies to a series selector only (or write a subquery [range:step])", parts[0])
			}
			v.kind, v.sel = kMatrix, false
			return v
		case t.is(tPunct, ":") && !subquery:
			subquery = true
			if len(parts) == 0 {
				p.syntax("a subquery needs a range before its colon")
			}
		case t.kind == tNumber || t.kind == tVar:
			parts = append(parts, t.text)
		default:
			p.syntax("unexpected %s in a range", t)
		}
	}
}

func (p *parser) primary() value {
	t := p.peek()
	switch {
	case t.kind == tNumber || t.kind == tVar:
		p.next()
		return value{kind: kScalar}
	case t.kind == tString:
		p.next()
		return value{kind: kString, str: t.val}
	case t.is(tPunct, "("):
		p.next()
		v := p.expr(0)
		p.expect(tPunct, ")")
		v.sel = false
		return v
	case t.is(tPunct, "{"):
		return p.selector("")
	case t.kind == tIdent:
		switch lower := strings.ToLower(t.text); {
		case lower == "inf" || lower == "nan":
			p.next()
			return value{kind: kScalar}
		case isAggregation(t.text):
			return p.aggregation()
		case p.peekAt(1).is(tPunct, "("):
			return p.call()
		case keywords[t.text]:
			p.syntax("unexpected keyword %s", t)
		}
		p.next()
		return p.selector(t.text)
	}
	p.syntax("unexpected %s", t)
	return value{}
}

var keywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "atan2": true, "offset": true,
}

// labelList parses (label, ...).
func (p *parser) labelList() []string {
	p.expect(tPunct, "(")
	var out []string
	for !p.peek().is(tPunct, ")") {
		t := p.next()
		switch t.kind {
		case tIdent:
			out = append(out, t.text)
		case tString:
			out = append(out, t.val)
		default:
			p.syntax("expected a label name, found %s", t)
		}
		if p.peek().is(tPunct, ",") {
			p.next()
		} else if !p.peek().is(tPunct, ")") {
			p.syntax("expected \",\" or \")\" in a label list, found %s", p.peek())
		}
	}
	p.next()
	return out
}

type matcher struct{ label, op, value string }

var matchOps = map[string]bool{"=": true, "!=": true, "=~": true, "!~": true}

func hasVariable(s string) bool { return strings.Contains(s, "$") || strings.Contains(s, "[[") }

// selector parses the matchers after a metric name, if any, and checks them.
func (p *parser) selector(name string) value {
	var ms []matcher
	if p.peek().is(tPunct, "{") {
		p.next()
		for !p.peek().is(tPunct, "}") {
			t := p.next()
			var label string
			switch {
			case t.kind == tIdent:
				label = t.text
			case t.kind == tString && (p.peek().is(tPunct, ",") || p.peek().is(tPunct, "}")):
				if name != "" {
					p.syntax("a second metric name %s", t)
				}
				name = t.val // {"metric.name"}, as Prometheus 3 allows
			case t.kind == tString:
				label = t.val
			default:
				p.syntax("expected a label matcher, found %s", t)
			}
			if label != "" {
				op := p.next()
				if op.kind != tOp || !matchOps[op.text] {
					p.syntax("expected =, !=, =~ or !~ after %s, found %s", label, op)
				}
				val := p.next()
				if val.kind != tString {
					p.syntax("expected a quoted label value after %s%s, found %s", label, op.text, val)
				}
				if label == "__name__" && op.text == "=" && name == "" {
					name = val.val
				}
				ms = append(ms, matcher{label, op.text, val.val})
			}
			if p.peek().is(tPunct, ",") {
				p.next()
			} else if !p.peek().is(tPunct, "}") {
				p.syntax("expected \",\" or \"}\" in a selector, found %s", p.peek())
			}
		}
		p.next()
	}
	if name == "" {
		p.errorf("a selector without a metric name cannot be checked against the proxy's metrics")
		return value{kind: kVector, sel: true}
	}
	p.used[name] = true
	s, err := p.ex.lookup(name)
	if err != nil {
		p.errs = append(p.errs, err)
		return value{kind: kVector, sel: true, metric: name}
	}
	for _, m := range ms {
		if m.label == "__name__" {
			continue
		}
		if !s.labels[m.label] {
			p.errorf("%s{%s%s%q}: %s has no label %q (it has %s)", name, m.label, m.op, m.value, name, m.label, list(s.labels))
			continue
		}
		switch {
		case hasVariable(m.value):
		case m.op == "=" && m.value != "" && s.values[m.label] != nil && !s.values[m.label][m.value]:
			p.errorf("%s{%s=%q}: no series of %s has %s=%q (the proxy exported %s)", name, m.label, m.value, s.family, m.label, m.value, list(s.values[m.label]))
		case m.op == "=~" || m.op == "!~":
			if _, err := regexp.Compile("^(?:" + m.value + ")$"); err != nil {
				p.errorf("%s{%s%s%q}: %v", name, m.label, m.op, m.value, err)
			}
		}
	}
	return value{kind: kVector, labels: s.labels, metric: name, counter: s.counter, sel: true}
}

// args parses a call's parenthesised arguments.
func (p *parser) args() []value {
	p.expect(tPunct, "(")
	var out []value
	for !p.peek().is(tPunct, ")") {
		out = append(out, p.expr(0))
		if p.peek().is(tPunct, ",") {
			p.next()
		} else if !p.peek().is(tPunct, ")") {
			p.syntax("expected \",\" or \")\" in arguments, found %s", p.peek())
		}
	}
	p.next()
	return out
}

// aggregations, by the kind of their parameter (kVector for none).
var aggregations = map[string]kind{
	"sum": kVector, "avg": kVector, "min": kVector, "max": kVector, "count": kVector,
	"group": kVector, "stddev": kVector, "stdvar": kVector,
	"topk": kScalar, "bottomk": kScalar, "limitk": kScalar, "limit_ratio": kScalar, "quantile": kScalar,
	"count_values": kString,
}

func isAggregation(name string) bool { _, ok := aggregations[name]; return ok }

func (p *parser) aggregation() value {
	name := p.next().text
	var grouping []string
	var clause string
	if t := p.peek(); t.is(tIdent, "by") || t.is(tIdent, "without") {
		p.next()
		clause, grouping = t.text, p.labelList()
	}
	args := p.args()
	if t := p.peek(); clause == "" && (t.is(tIdent, "by") || t.is(tIdent, "without")) {
		p.next()
		clause, grouping = t.text, p.labelList()
	}
	param := aggregations[name]
	want := 1
	if param != kVector {
		want = 2
	}
	if len(args) != want {
		p.errorf("%s() takes %d argument(s), got %d", name, want, len(args))
		return value{kind: kVector}
	}
	if want == 2 && args[0].kind != param {
		p.errorf("%s(): its parameter is %s, want %s", name, args[0].kind, param)
	}
	v := args[want-1]
	if v.kind != kVector {
		p.errorf("%s() aggregates an instant vector, not %s", name, v.kind)
		return value{kind: kVector}
	}
	p.consume(v)
	if v.labels == nil {
		return value{kind: kVector}
	}
	for _, l := range grouping {
		if !v.labels[l] {
			p.errorf("%s %s (%s): the aggregated series have no label %q (they have %s)", name, clause, strings.Join(grouping, ", "), l, list(v.labels))
		}
	}
	out := map[string]bool{}
	switch {
	case param == kScalar && name != "quantile": // topk and kin keep their series
		out = v.labels
	case clause == "by":
		for _, l := range grouping {
			out[l] = true
		}
	case clause == "without":
		for l := range v.labels {
			if !slices.Contains(grouping, l) {
				out[l] = true
			}
		}
	}
	if name == "count_values" {
		out[args[0].str] = true
	}
	return value{kind: kVector, labels: out}
}

// binary checks a binary operation and works out its result's labels.
func (p *parser) binary(op string, l, r value, m matching) value {
	for _, v := range []value{l, r} {
		if v.kind == kMatrix || v.kind == kString {
			p.errorf("%s: an operand is %s", op, v.kind)
			return value{kind: kVector}
		}
	}
	p.consume(l)
	p.consume(r)
	if isSetOp(op) && (l.kind == kScalar || r.kind == kScalar) {
		p.errorf("%s works on instant vectors, not scalars", op)
		return value{kind: kVector}
	}
	switch {
	case l.kind == kScalar && r.kind == kScalar:
		return value{kind: kScalar}
	case l.kind == kScalar:
		return value{kind: kVector, labels: r.labels}
	case r.kind == kScalar:
		return value{kind: kVector, labels: l.labels}
	case l.labels == nil || r.labels == nil:
		return value{kind: kVector}
	}
	before := len(p.errs)
	for _, lb := range m.labels {
		switch {
		case m.on && !l.labels[lb]:
			p.errorf("%s on (%s): the left-hand series have no label %q (they have %s)", op, strings.Join(m.labels, ", "), lb, list(l.labels))
		case m.on && !r.labels[lb]:
			p.errorf("%s on (%s): the right-hand series have no label %q (they have %s)", op, strings.Join(m.labels, ", "), lb, list(r.labels))
		case m.ignoring && !l.labels[lb] && !r.labels[lb]:
			p.errorf("%s ignoring (%s): neither side has a label %q", op, strings.Join(m.labels, ", "), lb)
		}
	}
	one := r.labels // the "one" side of a many-to-one match, whose labels may be included
	if m.group == "group_right" {
		one = l.labels
	}
	for _, lb := range m.include {
		if !one[lb] {
			p.errorf("%s %s (%s): the series on the other side have no label %q (they have %s)", op, m.group, strings.Join(m.include, ", "), lb, list(one))
		}
	}
	if len(p.errs) > before {
		return value{kind: kVector} // the matching is wrong: say nothing more of it
	}
	if isSetOp(op) {
		if op == "or" {
			return value{kind: kVector, labels: union(l.labels, r.labels)}
		}
		return value{kind: kVector, labels: l.labels}
	}
	matchLabels := func(v map[string]bool) map[string]bool {
		out := map[string]bool{}
		for lb := range v {
			if m.on == slices.Contains(m.labels, lb) {
				out[lb] = true
			}
		}
		return out
	}
	if m.group == "" && !equal(matchLabels(l.labels), matchLabels(r.labels)) {
		p.errorf("%s between series labelled %s and %s: they never match, as their label sets differ; aggregate both sides by the same labels, or match on (...)", op, list(l.labels), list(r.labels))
	} else {
		// A side matched one-to-one, or the "one" side of group_left or
		// group_right, must have a single series per match: the labels
		// left out of the match would make several.
		for _, side := range []struct {
			name   string
			labels map[string]bool
			many   bool
		}{{"left-hand", l.labels, m.group == "group_left"}, {"right-hand", r.labels, m.group == "group_right"}} {
			if kept := matchLabels(side.labels); !side.many && !equal(kept, side.labels) {
				p.errorf("%s matching on %s: the %s series are also labelled by %s, so one match can find several of them, which Prometheus refuses; aggregate those labels away or use group_left/group_right",
					op, list(kept), side.name, list(minus(side.labels, kept)))
			}
		}
	}
	switch {
	case m.group == "group_right":
		return value{kind: kVector, labels: union(r.labels, setOf(m.include...))}
	case m.group == "group_left":
		return value{kind: kVector, labels: union(l.labels, setOf(m.include...))}
	case isComparison(op) && !m.boolean:
		return value{kind: kVector, labels: l.labels} // a filter keeps the left-hand series
	}
	return value{kind: kVector, labels: matchLabels(l.labels)}
}

// Functions.

type signature struct {
	args     []kind
	optional int  // trailing arguments that may be left out
	variadic bool // the last argument may repeat
	rawOK    bool // takes raw counters: rate and kin
	ret      func(p *parser, args []value) value
}

// sameLabels returns an instant vector with the labels of its first vector or range argument.
func sameLabels(_ *parser, args []value) value {
	for _, a := range args {
		if a.kind == kVector || a.kind == kMatrix {
			return value{kind: kVector, labels: a.labels}
		}
	}
	return value{kind: kVector, labels: map[string]bool{}}
}

func constant(k kind) func(*parser, []value) value {
	return func(*parser, []value) value {
		if k == kVector {
			return value{kind: k, labels: map[string]bool{}}
		}
		return value{kind: k}
	}
}

// rateOf is rate, irate and increase: the per-second or total increase of a counter.
func rateOf(p *parser, args []value) value {
	if a := args[0]; a.metric != "" && a.labels != nil && !a.counter {
		p.errorf("rate() or increase() of %s, which is not a counter: use deriv() or delta() for a gauge", a.metric)
	}
	return value{kind: kVector, labels: args[0].labels}
}

func histogramQuantile(p *parser, args []value) value {
	v := args[1]
	if v.labels == nil {
		return value{kind: kVector}
	}
	if !v.labels["le"] {
		p.errorf("histogram_quantile() of series without an le label (they have %s): aggregate _bucket rates keeping le, as in sum by (le) (rate(x_bucket[$__rate_interval]))", list(v.labels))
	}
	out := map[string]bool{}
	for l := range v.labels {
		if l != "le" {
			out[l] = true
		}
	}
	return value{kind: kVector, labels: out}
}

// labelReplace is label_replace(v, dst, replacement, src, regex).
func labelReplace(p *parser, args []value) value {
	if _, err := regexp.Compile("^(?:" + args[4].str + ")$"); err != nil {
		p.errorf("label_replace(): regex %q: %v", args[4].str, err)
	}
	return newLabel(p, "label_replace", args[0], args[1].str, args[3])
}

// labelJoin is label_join(v, dst, separator, src...).
func labelJoin(p *parser, args []value) value {
	return newLabel(p, "label_join", args[0], args[1].str, args[3:]...)
}

// newLabel checks the source labels of label_replace and label_join and adds dst.
func newLabel(p *parser, fn string, v value, dst string, srcs ...value) value {
	if v.labels == nil {
		return value{kind: kVector}
	}
	for _, s := range srcs {
		if !v.labels[s.str] {
			p.errorf("%s() reads label %q, which the series do not have (they have %s)", fn, s.str, list(v.labels))
		}
	}
	return value{kind: kVector, labels: union(v.labels, setOf(dst))}
}

func sortByLabel(p *parser, args []value) value {
	for _, a := range args[1:] {
		if args[0].labels != nil && !args[0].labels[a.str] {
			p.errorf("sort_by_label(): the series have no label %q (they have %s)", a.str, list(args[0].labels))
		}
	}
	return value{kind: kVector, labels: args[0].labels}
}

var functions = map[string]signature{}

func init() {
	v, m, s, str := kVector, kMatrix, kScalar, kString
	for _, f := range []string{"rate", "irate", "increase"} {
		functions[f] = signature{args: []kind{m}, rawOK: true, ret: rateOf}
	}
	for _, f := range []string{"resets", "changes", "count_over_time", "present_over_time", "last_over_time"} {
		functions[f] = signature{args: []kind{m}, rawOK: true, ret: sameLabels}
	}
	for _, f := range []string{"delta", "idelta", "deriv", "avg_over_time", "min_over_time", "max_over_time",
		"sum_over_time", "stddev_over_time", "stdvar_over_time", "mad_over_time"} {
		functions[f] = signature{args: []kind{m}, ret: sameLabels}
	}
	functions["quantile_over_time"] = signature{args: []kind{s, m}, ret: sameLabels}
	functions["predict_linear"] = signature{args: []kind{m, s}, ret: sameLabels}
	functions["holt_winters"] = signature{args: []kind{m, s, s}, ret: sameLabels}
	functions["double_exponential_smoothing"] = functions["holt_winters"]
	functions["absent"] = signature{args: []kind{v}, rawOK: true, ret: constant(v)}
	functions["absent_over_time"] = signature{args: []kind{m}, rawOK: true, ret: constant(v)}
	functions["timestamp"] = signature{args: []kind{v}, rawOK: true, ret: sameLabels}
	for _, f := range []string{"abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "sort", "sort_desc",
		"acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad"} {
		functions[f] = signature{args: []kind{v}, ret: sameLabels}
	}
	functions["round"] = signature{args: []kind{v, s}, optional: 1, ret: sameLabels}
	functions["clamp"] = signature{args: []kind{v, s, s}, ret: sameLabels}
	functions["clamp_min"] = signature{args: []kind{v, s}, ret: sameLabels}
	functions["clamp_max"] = signature{args: []kind{v, s}, ret: sameLabels}
	for _, f := range []string{"day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"} {
		functions[f] = signature{args: []kind{v}, optional: 1, ret: sameLabels}
	}
	functions["histogram_quantile"] = signature{args: []kind{s, v}, ret: histogramQuantile}
	functions["label_replace"] = signature{args: []kind{v, str, str, str, str}, ret: labelReplace}
	functions["label_join"] = signature{args: []kind{v, str, str, str}, optional: 1, variadic: true, ret: labelJoin}
	functions["sort_by_label"] = signature{args: []kind{v, str}, variadic: true, ret: sortByLabel}
	functions["sort_by_label_desc"] = functions["sort_by_label"]
	functions["vector"] = signature{args: []kind{s}, ret: constant(v)}
	functions["scalar"] = signature{args: []kind{v}, ret: constant(s)}
	functions["time"] = signature{ret: constant(s)}
	functions["pi"] = signature{ret: constant(s)}
}

// nativeOnly are functions of native histograms, which the proxy does not export.
var nativeOnly = map[string]bool{"histogram_count": true, "histogram_sum": true, "histogram_avg": true,
	"histogram_fraction": true, "histogram_stddev": true, "histogram_stdvar": true}

func (p *parser) call() value {
	name := p.next().text
	args := p.args()
	sig, ok := functions[name]
	switch {
	case nativeOnly[name]:
		p.errorf("%s() reads native histograms; the proxy exports classic ones (_bucket series with le)", name)
		return value{kind: kVector}
	case !ok:
		p.errorf("unknown function %s()", name)
		return value{kind: kVector}
	}
	lo, hi := len(sig.args)-sig.optional, len(sig.args)
	if sig.variadic {
		hi = 1 << 30
	}
	if len(args) < lo || len(args) > hi {
		p.errorf("%s() takes %d to %d arguments, got %d", name, lo, min(hi, 99), len(args))
		return value{kind: kVector}
	}
	for i, a := range args {
		want := sig.args[min(i, len(sig.args)-1)]
		if a.kind != want {
			hint := ""
			if want == kMatrix && a.kind == kVector {
				hint = " (add [$__rate_interval])"
			}
			p.errorf("%s(): argument %d is %s, want %s%s", name, i+1, a.kind, want, hint)
			return value{kind: kVector}
		}
		if !sig.rawOK {
			p.consume(a)
		}
	}
	return sig.ret(p, args)
}

// Label sets.

func setOf(ls ...string) map[string]bool {
	out := map[string]bool{}
	for _, l := range ls {
		out[l] = true
	}
	return out
}

func union(a, b map[string]bool) map[string]bool {
	if a == nil || b == nil {
		return nil
	}
	out := map[string]bool{}
	for l := range a {
		out[l] = true
	}
	for l := range b {
		out[l] = true
	}
	return out
}

func minus(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for l := range a {
		if !b[l] {
			out[l] = true
		}
	}
	return out
}

func equal[V any](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// list prints a label or value set: {a, b}.
func list[V any](set map[string]V) string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return "{" + strings.Join(keys, ", ") + "}"
}
