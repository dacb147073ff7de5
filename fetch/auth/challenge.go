package auth

import (
	"fmt"
	"sort"
	"strings"
)

// Challenge is one authentication challenge from a WWW-Authenticate header
// (RFC 7235 section 4.1), such as
//
//	Bearer realm="https://auth.example/token",service="registry.example"
type Challenge struct {
	Scheme string            // lower-cased: "bearer", "basic", ...
	Params map[string]string // auth-params: names lower-cased, values unquoted; never nil
	// Token68 holds the token68 form ("Negotiate YWJj=="), which a challenge uses
	// instead of auth-params; empty otherwise.
	Token68 string
}

// ParseChallenges parses every challenge in the given WWW-Authenticate header
// values, in order. One value may hold several challenges separated by commas.
//
// The parser follows RFC 7235 with one leniency: an unquoted parameter value may
// hold any visible character except comma and double quote, because real servers
// send unquoted URLs (realm=https://host/token). Anything else that does not fit
// the grammar is an error wrapping ErrMalformedChallenge.
func ParseChallenges(headers []string) ([]Challenge, error) {
	var out []Challenge
	for _, h := range headers {
		p := challengeParser{s: h}
		cs, err := p.list()
		if err != nil {
			return nil, fmt.Errorf("WWW-Authenticate %s: %w", shorten(h, 200), err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// String renders the challenge in canonical form: lower-case scheme, parameters
// sorted by name, every value quoted. ParseChallenges reads it back unchanged.
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString(c.Scheme)
	if c.Token68 != "" {
		b.WriteByte(' ')
		b.WriteString(c.Token68)
		return b.String()
	}
	names := make([]string, 0, len(c.Params))
	for k := range c.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(`="`)
		for j := 0; j < len(c.Params[k]); j++ {
			if ch := c.Params[k][j]; ch == '"' || ch == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c.Params[k][j])
		}
		b.WriteByte('"')
	}
	return b.String()
}

// challengeParser walks one header value; i is the next unread byte.
type challengeParser struct {
	s string
	i int
}

type syntaxError struct {
	msg string
	pos int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.pos) }
func (e *syntaxError) Unwrap() error { return ErrMalformedChallenge }

func (p *challengeParser) fail(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), pos: p.i}
}

func (p *challengeParser) eof() bool { return p.i >= len(p.s) }

// list parses #challenge: empty list elements (",,") are allowed, as RFC 7230 says.
func (p *challengeParser) list() ([]Challenge, error) {
	var out []Challenge
	p.skipSeparators()
	for !p.eof() {
		c, err := p.challenge()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		p.skipSeparators()
	}
	return out, nil
}

// challenge parses auth-scheme [ 1*SP ( token68 / #auth-param ) ] and stops
// before the comma that starts the next challenge.
func (p *challengeParser) challenge() (Challenge, error) {
	scheme := p.token()
	if scheme == "" {
		return Challenge{}, p.fail("expected an auth scheme, found %q", p.s[p.i])
	}
	c := Challenge{Scheme: strings.ToLower(scheme), Params: map[string]string{}}
	if p.eof() || p.s[p.i] == ',' {
		return c, nil
	}
	if p.s[p.i] != ' ' && p.s[p.i] != '\t' {
		return Challenge{}, p.fail("unexpected %q after auth scheme %q", p.s[p.i], scheme)
	}
	p.skipSpace()
	if p.eof() || p.s[p.i] == ',' {
		return c, nil
	}
	if t, ok := p.token68(); ok {
		c.Token68 = t
		return c, nil
	}
	for {
		name, value, err := p.param()
		if err != nil {
			return Challenge{}, err
		}
		if _, dup := c.Params[name]; dup {
			return Challenge{}, p.fail("parameter %q given twice", name)
		}
		c.Params[name] = value
		p.skipSpace()
		if p.eof() {
			return c, nil
		}
		if p.s[p.i] != ',' {
			return Challenge{}, p.fail("expected ',' after parameter %q, found %q", name, p.s[p.i])
		}
		// After the comma comes either another parameter of this challenge
		// (token BWS "=") or the next challenge (token SP ... or token alone).
		save := p.i
		p.skipSeparators()
		if p.eof() {
			return c, nil
		}
		if !p.atParam() {
			p.i = save
			return c, nil
		}
	}
}

// token68 reads a token68 that makes up the whole rest of the challenge, or
// leaves the position alone and reports false.
func (p *challengeParser) token68() (string, bool) {
	j := p.i
	for j < len(p.s) && isToken68Char(p.s[j]) {
		j++
	}
	if j == p.i {
		return "", false
	}
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	k := j
	for k < len(p.s) && (p.s[k] == ' ' || p.s[k] == '\t') {
		k++
	}
	if k < len(p.s) && p.s[k] != ',' {
		return "", false
	}
	t := p.s[p.i:j]
	p.i = k
	return t, true
}

// atParam reports whether an auth-param (token BWS "=") starts here.
func (p *challengeParser) atParam() bool {
	save := p.i
	defer func() { p.i = save }()
	if p.token() == "" {
		return false
	}
	p.skipSpace()
	return !p.eof() && p.s[p.i] == '='
}

// param parses token BWS "=" BWS ( token / quoted-string ).
func (p *challengeParser) param() (name, value string, err error) {
	name = p.token()
	if name == "" {
		if p.eof() {
			return "", "", p.fail("expected a parameter name, found end of header")
		}
		return "", "", p.fail("expected a parameter name, found %q", p.s[p.i])
	}
	p.skipSpace()
	if p.eof() || p.s[p.i] != '=' {
		return "", "", p.fail("expected '=' after parameter %q", name)
	}
	p.i++
	p.skipSpace()
	if p.eof() {
		return "", "", p.fail("missing value for parameter %q", name)
	}
	if p.s[p.i] == '"' {
		value, err = p.quoted()
		if err != nil {
			return "", "", err
		}
		return strings.ToLower(name), value, nil
	}
	start := p.i
	for !p.eof() && isValueChar(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return "", "", p.fail("missing value for parameter %q", name)
	}
	return strings.ToLower(name), p.s[start:p.i], nil
}

// quoted parses a quoted-string, undoing quoted-pairs.
func (p *challengeParser) quoted() (string, error) {
	open := p.i
	p.i++
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\':
			if p.i+1 >= len(p.s) {
				p.i = open
				return "", p.fail("unterminated quoted string")
			}
			n := p.s[p.i+1]
			if !isQuotedText(n) && n != '"' && n != '\\' {
				return "", p.fail("invalid escape in quoted string")
			}
			b.WriteByte(n)
			p.i += 2
		case isQuotedText(c):
			b.WriteByte(c)
			p.i++
		default:
			return "", p.fail("control character %q in quoted string", c)
		}
	}
	p.i = open
	return "", p.fail("unterminated quoted string")
}

func (p *challengeParser) token() string {
	start := p.i
	for !p.eof() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) skipSpace() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *challengeParser) skipSeparators() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

// isTokenChar reports tchar (RFC 7230 section 3.2.6).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// isQuotedText reports qdtext plus the characters a quoted-pair may escape,
// less '"' and '\\' themselves: HTAB, SP, visible ASCII and obs-text.
func isQuotedText(c byte) bool {
	return c == '\t' || (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
}

// isValueChar is the lenient unquoted value: visible characters and obs-text
// except comma and double quote.
func isValueChar(c byte) bool {
	return c > 0x20 && c != 0x7f && c != ',' && c != '"'
}

func shorten(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return fmt.Sprintf("%q", s)
}
