package mailcase_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/emailcrm/emailcrm/mailcase"
)

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "alice@example.com", want: "alice@example.com"},
		{name: "upper case", in: "Alice@EXAMPLE.Com", want: "alice@example.com"},
		{name: "brackets and space", in: "  <bob@example.org>  ", want: "bob@example.org"},
		{name: "trailing dot", in: "bob@example.org.", want: "bob@example.org"},
		{name: "plus tag kept", in: "bob+tag@example.org", want: "bob+tag@example.org"},
		{name: "quote in local part", in: "o'brien@example.ie", want: "o'brien@example.ie"},
		{name: "IDN domain", in: "kunde@Bücher.example", want: "kunde@xn--bcher-kva.example"},
		{name: "IDN upper case", in: "kunde@BÜCHER.EXAMPLE", want: "kunde@xn--bcher-kva.example"},
		{name: "punycode input", in: "kunde@xn--bcher-kva.example", want: "kunde@xn--bcher-kva.example"},
		{name: "CJK domain", in: "a@例え.jp", want: "a@xn--r8jz45g.jp"},
		{name: "unicode local part", in: "Jörg@example.de", want: "jörg@example.de"},
		{name: "address literal", in: "root@[192.0.2.1]", want: "root@[192.0.2.1]"},
		{name: "empty", in: "", want: ""},
		{name: "no at", in: "alice.example.com", want: ""},
		{name: "no local part", in: "@example.com", want: ""},
		{name: "no domain", in: "alice@", want: ""},
		{name: "display name", in: "Alice <alice@example.com>", want: ""},
		{name: "space in local part", in: "al ice@example.com", want: ""},
		{name: "CRLF injection", in: "a@example.com\r\nBcc: x@evil.example", want: ""},
		{name: "empty label", in: "a@example..com", want: ""},
		{name: "leading dot domain", in: "a@.example.com", want: ""},
		{name: "over-long label", in: "a@" + strings.Repeat("x", 64) + ".com", want: ""},
		{name: "comma smuggles a recipient", in: "a@evil.example,b@x.example", want: ""},
		{name: "semicolon", in: "a;b@example.com", want: ""},
		{name: "quoted local part", in: `"john doe"@example.com`, want: ""},
		{name: "NUL in local part", in: "a\x00b@example.com", want: ""},
		{name: "NUL in domain", in: "a@exa\x00mple.com", want: ""},
		{name: "NUL in IDN domain", in: "a@ü\x00.de", want: ""},
		{name: "invalid UTF-8 domain", in: "a@\xff.de", want: ""},
		{name: "invalid UTF-8 local part", in: "\xffa@example.com", want: ""},
		{name: "punctuation in domain", in: "a@exam!ple.com", want: ""},
		{name: "underscore in domain", in: "a@my_host.example", want: "a@my_host.example"},
		{name: "IPv6 literal", in: "a@[IPv6:2001:db8::1]", want: "a@[ipv6:2001:db8::1]"},
		{name: "bad literal", in: "a@[evil]", want: ""},
		{name: "empty literal", in: "a@[]", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mailcase.NormalizeAddress(tc.in)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, got, mailcase.NormalizeAddress(got), "normalisation is idempotent")
		})
	}
}

func TestNormalizeAddress_UnicodeAndPunycodeCompareEqual(t *testing.T) {
	forms := []string{"info@münchen.de", "INFO@MÜNCHEN.DE", "info@xn--mnchen-3ya.de", "<Info@München.De.>"}
	for _, f := range forms {
		assert.Equal(t, "info@xn--mnchen-3ya.de", mailcase.NormalizeAddress(f), f)
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "lower", in: "example.com", want: "example.com"},
		{name: "upper", in: "EXAMPLE.COM", want: "example.com"},
		{name: "trailing dot and space", in: " Example.com. ", want: "example.com"},
		{name: "IDN", in: "bücher.example", want: "xn--bcher-kva.example"},
		{name: "IDN mixed case", in: "BüCHER.Example", want: "xn--bcher-kva.example"},
		{name: "emoji", in: "☃.net", want: "xn--n3h.net"},
		{name: "single label", in: "localhost", want: "localhost"},
		{name: "empty", in: "", want: ""},
		{name: "dot only", in: ".", want: ""},
		{name: "space", in: "exa mple.com", want: ""},
		{name: "at sign", in: "a@example.com", want: ""},
		{name: "double dot", in: "example..com", want: ""},
		{name: "newline", in: "example.com\n", want: "example.com"},
		{name: "embedded newline", in: "exa\nmple.com", want: ""},
		{name: "IDN rejected by lookup profile, kept by punycode", in: "bü_cher.de", want: "xn--b_cher-3ya.de"},
		{name: "mangled punycode", in: "xn--ü.de", want: ""},
		{name: "control character in IDN", in: "ü\x01.de", want: ""},
		{name: "invalid UTF-8", in: "\xff.de", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, mailcase.NormalizeDomain(tc.in))
		})
	}
}

func TestDomainOf(t *testing.T) {
	assert.Equal(t, "example.com", mailcase.DomainOf("Alice@Example.COM"))
	assert.Equal(t, "xn--bcher-kva.example", mailcase.DomainOf("a@bücher.example"))
	assert.Empty(t, mailcase.DomainOf("not an address"))
}

func TestNormalizeMessageID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "brackets", in: "<abc@example.com>", want: "abc@example.com"},
		{name: "no brackets", in: "abc@example.com", want: "abc@example.com"},
		{name: "space around", in: "  <abc@example.com>\r\n", want: "abc@example.com"},
		{name: "comment after", in: "<abc@example.com> (added by relay)", want: "abc@example.com"},
		{name: "case kept", in: "<ABC.Def@Example.COM>", want: "ABC.Def@Example.COM"},
		{name: "missing closing bracket", in: "<abc@example.com", want: "abc@example.com"},
		{name: "empty brackets", in: "<>", want: ""},
		{name: "empty", in: "", want: ""},
		{name: "space inside", in: "<abc def@example.com>", want: ""},
		{name: "bare with space", in: "abc def", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, mailcase.NormalizeMessageID(tc.in))
		})
	}
}

func TestParseMessageIDList(t *testing.T) {
	many := make([]string, 500)
	var b strings.Builder
	for i := range many {
		many[i] = fmt.Sprintf("id%d.x@example.com", i)
		fmt.Fprintf(&b, "<%s>\r\n ", many[i])
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "<a@x>", want: []string{"a@x"}},
		{name: "several folded", in: "<a@x>\r\n <b@x>\t<c@x>", want: []string{"a@x", "b@x", "c@x"}},
		{name: "no separators", in: "<a@x><b@x>", want: []string{"a@x", "b@x"}},
		{name: "duplicates dropped", in: "<a@x> <b@x> <a@x>", want: []string{"a@x", "b@x"}},
		{name: "missing brackets", in: "a@x b@x", want: []string{"a@x", "b@x"}},
		{name: "comma separated", in: "a@x, b@x,c@x", want: []string{"a@x", "b@x", "c@x"}},
		{name: "mixed", in: "a@x <b@x> c@x", want: []string{"a@x", "b@x", "c@x"}},
		{name: "unclosed last", in: "<a@x> <b@x", want: []string{"a@x", "b@x"}},
		{name: "comments ignored", in: "<a@x> (sent by x@y) <b@x>", want: []string{"a@x", "b@x"}},
		{name: "bare words without at ignored", in: "hello world <a@x> garbage", want: []string{"a@x"}},
		{name: "garbage brackets", in: "<<<>>> <> < > <a b@x>", want: nil},
		{name: "binary garbage", in: "\x00\xff<\x01@\x02>", want: []string{"\x01@\x02"}},
		{name: "500 IDs", in: b.String(), want: many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, mailcase.ParseMessageIDList(tc.in))
		})
	}
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{"alice@example.com", "<A@B.C>", "x@bücher.example", "@", "a@[1.2.3.4]", "a@b..c", "\xff@\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := mailcase.NormalizeAddress(in)
		if got == "" {
			return
		}
		if again := mailcase.NormalizeAddress(got); again != got {
			t.Fatalf("NormalizeAddress not idempotent: %q -> %q -> %q", in, got, again)
		}
		if strings.ContainsAny(got, " \t\r\n<>") || strings.Count(got, "@") < 1 {
			t.Fatalf("NormalizeAddress(%q) = %q: unsafe characters", in, got)
		}
	})
}

func FuzzParseMessageIDList(f *testing.F) {
	for _, s := range []string{"<a@x> <b@x>", "a@x,b@x", "<a@x", "(c) <a@x> (d@e)", "<<>>", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ids := mailcase.ParseMessageIDList(in)
		seen := map[string]bool{}
		for _, id := range ids {
			if id == "" || strings.ContainsAny(id, " \t\r\n<>") {
				t.Fatalf("ParseMessageIDList(%q) returned unusable ID %q", in, id)
			}
			if seen[id] {
				t.Fatalf("ParseMessageIDList(%q) returned %q twice", in, id)
			}
			seen[id] = true
			if mailcase.NormalizeMessageID(id) != id {
				t.Fatalf("ID %q is not normalised", id)
			}
		}
	})
}
