// Package charset converts mail text to UTF-8: charset names as mail
// spells them (WHATWG and IANA names, common aliases and misspellings),
// and detection for text that declares no usable charset.
package charset

import (
	"fmt"
	"strings"
	stdunicode "unicode"
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

// Name returns the WHATWG name of enc (for problem details).
func Name(enc encoding.Encoding) string { return name(enc) }

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

// HeaderEncoding returns the encoding of a raw 8-bit header value that is
// not UTF-8, given the charset the mail's top-level entity declares: the
// declared charset, except that a value that reads cleanly as East Asian
// text in a multi-byte charset (GBK/GB18030, Big5, Shift_JIS, EUC-KR) is
// read as that when the declaration is a single-byte charset or none.
// Mail clients that write raw headers write them in the sender's locale,
// whatever the body declares, and a Latin-1 reading of GBK is mojibake
// nobody can read. Statistical detectors fail on a subject's few bytes,
// so the test is structural: every byte decodes, every non-ASCII
// character is CJK, kana or Hangul; kana means Shift_JIS, Hangul EUC-KR,
// and between GBK and Big5 the reading with more of the language's most
// frequent characters wins. detected reports that the declaration was
// overridden.
func HeaderEncoding(value []byte, declared string) (enc encoding.Encoding, detected bool) {
	decl := Lookup(declared)
	if decl == nil || IsUTF8(declared) {
		decl = charmap.Windows1252
	}
	if _, single := decl.(*charmap.Charmap); !single {
		return decl, false // a multi-byte declaration is taken at its word
	}
	type reading struct {
		enc   encoding.Encoding
		text  string
		score int
	}
	var best *reading
	for _, c := range []struct {
		enc    encoding.Encoding
		script func(rune) bool
		common string
	}{
		{simplifiedchinese.GB18030, isHan, commonSimplified},
		{traditionalchinese.Big5, isHan, commonTraditional},
		{japanese.ShiftJIS, isJapanese, commonJapanese},
		{korean.EUCKR, isKorean, commonKorean},
	} {
		d, err := c.enc.NewDecoder().Bytes(value)
		if err != nil || !utf8.Valid(d) {
			continue
		}
		text, ok := string(d), true
		wide, hits := 0, 0
		for _, r := range text {
			if r < utf8.RuneSelf {
				continue
			}
			if r == utf8.RuneError || !(c.script(r) || isCJKPunct(r)) {
				ok = false
				break
			}
			wide++
			if strings.ContainsRune(c.common, r) || (c.enc == japanese.ShiftJIS && isKana(r)) {
				hits++
			}
		}
		if !ok || wide < 2 {
			continue
		}
		score := hits
		if best == nil || score > best.score {
			best = &reading{c.enc, text, score}
		}
	}
	if best == nil || best.score == 0 {
		return decl, false
	}
	return best.enc, true
}

func isHan(r rune) bool { return stdunicode.Is(stdunicode.Han, r) }

// isKana is full-width kana: the half-width forms are what the bytes of
// other charsets look like when read as Shift_JIS.
func isKana(r rune) bool {
	return (r < 0xff61 || r > 0xff9f) && stdunicode.In(r, stdunicode.Hiragana, stdunicode.Katakana)
}
func isHangul(r rune) bool   { return stdunicode.Is(stdunicode.Hangul, r) }
func isJapanese(r rune) bool { return isHan(r) || isKana(r) || r == 'ー' }
func isKorean(r rune) bool   { return isHangul(r) || isHan(r) }

// isCJKPunct reports CJK symbols and punctuation and full-width forms.
func isCJKPunct(r rune) bool {
	return (r >= 0x3000 && r <= 0x303f) || (r >= 0xff00 && r <= 0xff60)
}

// The most frequent characters of written Chinese (simplified and
// traditional), Japanese (with every full-width kana) and Korean: of the
// readings of the same bytes, the real one is full of them and the others
// are not.
const (
	commonSimplified  = "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从问题请回复订单收到帐户发票关系快邮件谢您号码客服务处理尽资料支付款货价格产品信息联电话时间请求帮助协"
	commonTraditional = "的一是不了人我在有他這為之大來以個中上們到說國和地也子時道出而要於就下得可你年生自會那後能對著事其裡所去行過家十用發天如然作方成者多日都三小軍二無同麼經法當起與好看學進種將還分此心前面又定見只主沒公從問題請回覆訂單收到帳戶發票關係快郵件謝您號碼客服務處理盡資料支付款貨價格產品信息聯電話時間請求幫助協"
	commonJapanese    = "日本人一国会中長出時行見月分後前生五間上東四今金九入学高円子外八六下来気小七山話女北午百書先名川千水半男西電校語土木聞食車何南万毎白天母火右読友左休父雨請求問合注文送料確認返品支払届予約変更"
	commonKorean      = "이의가에는을를다하고있지서한도로사기요니습어해나그대게아리시수우저입합안제자정보용문드립확인주세오결계좌환불배송상품전화번호메일감사님께"
)
