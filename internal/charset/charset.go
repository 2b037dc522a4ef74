// Package charset converts mail text to UTF-8: charset names as mail
// spells them (WHATWG and IANA names, common aliases and misspellings),
// and detection for text that declares no usable charset.
package charset

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
)

// IsUTF8 reports whether text declared in charset cs can be read as UTF-8
// as it is (UTF-8, US-ASCII or no charset).
func IsUTF8(cs string) bool {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(cs), "\"'")) {
	case "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "us_ascii", "":
		return true
	}
	return false
}

// Lookup returns the decoder for a charset name (WHATWG and IANA
// names and common aliases), nil when unknown or UTF-8/ASCII.
func Lookup(cs string) encoding.Encoding {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), "\"'"))
	if cs == "" {
		return nil
	}
	switch cs {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return nil
	case "iso-2022-jp", "csiso2022jp", "iso2022jp", "iso-2022-jp-2", "iso-2022-jp-3":
		return japanese.ISO2022JP
	case "shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "cp932", "windows-31j", "ms932":
		return japanese.ShiftJIS
	case "euc-jp", "eucjp", "x-euc-jp":
		return japanese.EUCJP
	case "gb2312", "gbk", "cp936", "x-gbk", "euc-cn", "gb_2312-80", "chinese":
		return simplifiedchinese.GBK
	case "gb18030":
		return simplifiedchinese.GB18030
	case "hz-gb-2312":
		return simplifiedchinese.HZGB2312
	case "big5", "big5-hkscs", "cn-big5", "x-x-big5", "cp950":
		return traditionalchinese.Big5
	case "euc-kr", "ks_c_5601-1987", "cp949", "ks_c_5601", "korean":
		return korean.EUCKR
	case "utf-16":
		return unicode.UTF16(unicode.BigEndian, unicode.UseBOM)
	case "utf-16le":
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)
	case "utf-16be":
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM)
	case "iso-8859-1", "latin1", "latin-1", "iso8859-1", "iso_8859-1", "l1", "cp819":
		// Mail labelled Latin-1 is Windows-1252 in practice (as in HTML).
		return charmap.Windows1252
	}
	if enc, err := htmlindex.Get(cs); err == nil {
		return enc
	}
	if enc, err := ianaindex.MIME.Encoding(cs); err == nil && enc != nil {
		return enc
	}
	if enc, err := ianaindex.IANA.Encoding(cs); err == nil && enc != nil {
		return enc
	}
	// "cp1252", "windows1252", "iso8859_15" and similar spellings.
	norm := strings.NewReplacer("_", "-", " ", "-").Replace(cs)
	switch {
	case strings.HasPrefix(norm, "cp125"):
		norm = "windows-125" + norm[5:]
	case strings.HasPrefix(norm, "windows125"):
		norm = "windows-125" + norm[10:]
	case strings.HasPrefix(norm, "iso8859-"):
		norm = "iso-8859-" + norm[8:]
	case strings.HasPrefix(norm, "iso-8859") && !strings.HasPrefix(norm, "iso-8859-"):
		norm = "iso-8859-" + strings.TrimLeft(norm[8:], "-")
	}
	if norm != cs {
		if enc, err := htmlindex.Get(norm); err == nil {
			return enc
		}
	}
	return nil
}

// stateful reports charsets whose all-ASCII bytes are not ASCII text.
func stateful(cs string) bool {
	cs = strings.ToLower(cs)
	return strings.Contains(cs, "2022") || strings.Contains(cs, "utf-16") || strings.Contains(cs, "utf-32") ||
		strings.Contains(cs, "utf-7") || strings.Contains(cs, "hz-gb")
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ToUTF8 converts a text body of media type mt declared in charset cs to
// UTF-8, with CRLF line ends made LF. Problems met (an unknown charset,
// invalid UTF-8, a detected charset) are reported through problem.
// The charset is detected only for text that declares none (or an unknown
// one) and is not valid UTF-8.
func ToUTF8(data []byte, charset, mt string, problem func(name, detail string)) string {
	cs := strings.ToLower(strings.Trim(strings.TrimSpace(charset), "\"'"))
	var s string
	switch {
	case isASCII(data) && !stateful(cs):
		s = string(data)
	case IsUTF8(cs) && utf8.Valid(data):
		s = string(data)
	case cs == "utf-8" || cs == "utf8":
		problem(ProblemCharset, "invalid UTF-8 in a part declared UTF-8")
		s = strings.ToValidUTF8(string(data), "\uFFFD")
	default:
		enc := Lookup(cs)
		if enc == nil {
			if cs != "" && !IsUTF8(cs) {
				problem(ProblemCharset, fmt.Sprintf("unknown charset %q", clip(cs, 40)))
			}
			if utf8.Valid(data) {
				s = string(data)
				break
			}
			enc = detect(data, mt)
			problem(ProblemCharsetDetected, fmt.Sprintf("declared %q, read as %s", clip(cs, 40), name(enc)))
		}
		d, err := enc.NewDecoder().Bytes(data)
		if err != nil {
			problem(ProblemCharset, fmt.Sprintf("charset %q: %v", clip(cs, 40), err))
		}
		s = strings.ToValidUTF8(string(d), "\uFFFD")
	}
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	return s
}

func name(enc encoding.Encoding) string {
	if n, err := htmlindex.Name(enc); err == nil {
		return n
	}
	return fmt.Sprint(enc)
}

// detect guesses the charset of non-UTF-8 text without a usable
// declaration; Windows-1252 when unsure.
func detect(data []byte, mt string) encoding.Encoding {
	var d *chardet.Detector
	if mt == "text/html" {
		d = chardet.NewHtmlDetector()
	} else {
		d = chardet.NewTextDetector()
	}
	sample := data
	if len(sample) > 64<<10 {
		sample = sample[:64<<10]
	}
	if r, err := d.DetectBest(sample); err == nil && r.Confidence >= 50 {
		if enc := Lookup(r.Charset); enc != nil {
			return enc
		}
	}
	return charmap.Windows1252
}

// Problem names reported by ToUTF8 (mailcase exports the same names).
const (
	ProblemCharset         = "Character Set Conversion"
	ProblemCharsetDetected = "Character Set Detected"
)

// clip shortens s to n bytes (on a rune boundary) for problem details.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
