package auth

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	type p = map[string]string
	tests := []struct {
		name    string
		headers []string
		want    []Challenge
	}{
		{"NoHeaders", nil, nil},
		{"EmptyHeader", []string{""}, nil},
		{"OnlySeparators", []string{" , ,\t"}, nil},
		{"DistributionBearer",
			[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"`},
			[]Challenge{{Scheme: "bearer", Params: p{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/debian:pull"}}}},
		{"BasicRealm", []string{`Basic realm="Registry Realm"`},
			[]Challenge{{Scheme: "basic", Params: p{"realm": "Registry Realm"}}}},
		{"SchemeAndNamesAreCaseInsensitive", []string{`BEARER Realm="R", SERVICE="S"`},
			[]Challenge{{Scheme: "bearer", Params: p{"realm": "R", "service": "S"}}}},
		{"ValueCaseIsKept", []string{`Bearer realm="HTTPS://Auth/Token"`},
			[]Challenge{{Scheme: "bearer", Params: p{"realm": "HTTPS://Auth/Token"}}}},
		{"QuotedValueHoldsCommaAndEquals", []string{`Bearer scope="repository:a/b:pull,push",x="a=b, c=d"`},
			[]Challenge{{Scheme: "bearer", Params: p{"scope": "repository:a/b:pull,push", "x": "a=b, c=d"}}}},
		{"EscapedQuoteAndBackslash", []string{`Bearer error_description="say \"hi\" \\ \o/"`},
			[]Challenge{{Scheme: "bearer", Params: p{"error_description": `say "hi" \ o/`}}}},
		{"EmptyQuotedValue", []string{`Basic realm=""`},
			[]Challenge{{Scheme: "basic", Params: p{"realm": ""}}}},
		{"UnquotedValues", []string{`Bearer realm=https://auth.example/token?a=b,service=reg`},
			[]Challenge{{Scheme: "bearer", Params: p{"realm": "https://auth.example/token?a=b", "service": "reg"}}}},
		{"WhitespaceEverywhere", []string{"  Bearer \t realm = \"r\" ,\tservice\t=\ts ,  "},
			[]Challenge{{Scheme: "bearer", Params: p{"realm": "r", "service": "s"}}}},
		{"TwoChallengesInOneHeader", []string{`Basic realm="a", Bearer realm="b",service="c"`},
			[]Challenge{
				{Scheme: "basic", Params: p{"realm": "a"}},
				{Scheme: "bearer", Params: p{"realm": "b", "service": "c"}},
			}},
		{"ChallengeWithoutParamsBeforeAnother", []string{`Negotiate, Basic realm="x"`},
			[]Challenge{{Scheme: "negotiate", Params: p{}}, {Scheme: "basic", Params: p{"realm": "x"}}}},
		{"EmptyListElements", []string{`,Basic realm="a",, ,Bearer realm="b",`},
			[]Challenge{{Scheme: "basic", Params: p{"realm": "a"}}, {Scheme: "bearer", Params: p{"realm": "b"}}}},
		{"Token68", []string{`Negotiate YWJjZA==`},
			[]Challenge{{Scheme: "negotiate", Params: p{}, Token68: "YWJjZA=="}}},
		{"Token68ThenChallenge", []string{`Negotiate a+b/c=, Basic realm="r"`},
			[]Challenge{{Scheme: "negotiate", Params: p{}, Token68: "a+b/c="}, {Scheme: "basic", Params: p{"realm": "r"}}}},
		{"Token68WithoutPadding", []string{`NTLM abc`},
			[]Challenge{{Scheme: "ntlm", Params: p{}, Token68: "abc"}}},
		{"NameAndEqualsAloneIsToken68", []string{`Bearer realm=`},
			[]Challenge{{Scheme: "bearer", Params: p{}, Token68: "realm="}}},
		{"SeveralHeaderValues", []string{`Basic realm="a"`, `Bearer realm="b"`},
			[]Challenge{{Scheme: "basic", Params: p{"realm": "a"}}, {Scheme: "bearer", Params: p{"realm": "b"}}}},
		{"ObsTextInQuotedValue", []string{"Basic realm=\"caf\xc3\xa9\""},
			[]Challenge{{Scheme: "basic", Params: p{"realm": "caf\xc3\xa9"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenges(tt.headers)
			if err != nil {
				t.Fatalf("ParseChallenges(%q): %v", tt.headers, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseChallenges(%q)\n got %#v\nwant %#v", tt.headers, got, tt.want)
			}
		})
	}
}

func TestParseChallengesRejects(t *testing.T) {
	tests := []struct {
		name   string
		header string
	}{
		{"UnterminatedQuote", `Bearer realm="https://auth`},
		{"UnterminatedAfterEscape", `Bearer realm="abc\`},
		{"MissingValue", `Bearer service="s", realm=`},
		{"MissingValueBeforeComma", `Bearer realm=,service="s"`},
		{"MissingName", `Bearer ="x"`},
		{"ParamWithoutScheme", `realm="x"`},
		{"Token68ThenParam", `Negotiate abc==, realm="x"`},
		{"GarbageAfterValue", `Bearer realm="a" service="b"`},
		{"GarbageAfterToken", `Bearer realm=a b`},
		{"DuplicateParam", `Bearer realm="a", REALM="b"`},
		{"SchemeFollowedByQuote", `Bearer"realm"`},
		{"ControlCharInQuoted", "Bearer realm=\"a\x01b\""},
		{"NewlineInQuoted", "Bearer realm=\"a\nb\""},
		{"LeadingEquals", `=`},
		{"LeadingQuote", `"Bearer"`},
		{"TwoTokensNoEquals", `Bearer foo bar`},
		{"NonTokenScheme", `Bea(rer realm="x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenges([]string{tt.header})
			if !errors.Is(err, ErrMalformedChallenge) {
				t.Fatalf("ParseChallenges(%q) = %#v, %v; want an error wrapping ErrMalformedChallenge", tt.header, got, err)
			}
		})
	}
}

func TestChallengeStringRoundTrips(t *testing.T) {
	tests := []Challenge{
		{Scheme: "bearer", Params: map[string]string{"realm": `a "quoted" \ value`, "scope": "repository:a/b:pull,push"}},
		{Scheme: "basic", Params: map[string]string{}},
		{Scheme: "negotiate", Params: map[string]string{}, Token68: "YWJj=="},
	}
	for _, c := range tests {
		t.Run(c.Scheme, func(t *testing.T) {
			got, err := ParseChallenges([]string{c.String()})
			if err != nil {
				t.Fatalf("parse %q: %v", c.String(), err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], c) {
				t.Fatalf("parse %q = %#v, want %#v", c.String(), got, c)
			}
		})
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, seed := range []string{
		`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"`,
		`Basic realm="Registry Realm"`,
		`Bearer scope="repository:a/b:pull,push", error="insufficient_scope"`,
		`Basic realm="a", Bearer realm="b",service="c"`,
		`Negotiate YWJjZA==, Basic realm="x"`,
		`Bearer realm=https://a/b?c=d,service=s`,
		`Bearer error_description="say \"hi\" \\"`,
		` , ,Basic ,, `,
		`Bearer realm="unterminated`,
		`=`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		cs, err := ParseChallenges([]string{header})
		if err != nil {
			if !errors.Is(err, ErrMalformedChallenge) {
				t.Fatalf("error does not wrap ErrMalformedChallenge: %v", err)
			}
			return
		}
		rendered := make([]string, len(cs))
		for i, c := range cs {
			if c.Scheme == "" || c.Scheme != strings.ToLower(c.Scheme) {
				t.Fatalf("scheme %q: empty or not lower case", c.Scheme)
			}
			if c.Params == nil {
				t.Fatalf("challenge %q has nil Params", c.Scheme)
			}
			if c.Token68 != "" && len(c.Params) > 0 {
				t.Fatalf("challenge %q has both token68 and params", c.Scheme)
			}
			for k := range c.Params {
				if k == "" || k != strings.ToLower(k) {
					t.Fatalf("param name %q: empty or not lower case", k)
				}
			}
			rendered[i] = c.String()
		}
		// Canonical rendering parses back to the same challenges.
		again, err := ParseChallenges([]string{strings.Join(rendered, ", ")})
		if err != nil {
			t.Fatalf("re-parse %q: %v", rendered, err)
		}
		if len(cs) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(cs, again) {
			t.Fatalf("round trip of %q\n got %#v\nwant %#v", header, again, cs)
		}
	})
}
