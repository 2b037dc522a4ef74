package charset

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// Raw 8-bit subjects in the sender's East Asian charset are read as that
// charset although the body declares Latin-1; Latin-1 text stays Latin-1.
func TestHeaderEncoding(t *testing.T) {
	for _, c := range []struct {
		enc      encoding.Encoding
		text     string
		detected bool
	}{
		{simplifiedchinese.GBK, "明天下午三点开会讨论新项目", true},
		{simplifiedchinese.GBK, "密码重置失败", true},
		{simplifiedchinese.GBK, "网站无法登录，急！", true},
		{traditionalchinese.Big5, "密碼重設失敗", true},
		{traditionalchinese.Big5, "網站無法登入", true},
		{japanese.ShiftJIS, "パスワードの再設定", true},
		{japanese.ShiftJIS, "会議室予約", true},
		{korean.EUCKR, "주문 배송 문의드립니다", true},
		{korean.EUCKR, "비밀번호 재설정", true},
		{charmap.ISO8859_1, "Problème de facturation numéro 12", false},
		{charmap.ISO8859_1, "Grüße aus Köln – Rückfrage", false},
		// Missed, and said so: rare characters only, no reading wins, the
		// declared charset is kept (mojibake, never a wrong language).
		{traditionalchinese.Big5, "系統升級通知：週末維護", false},
	} {
		raw, err := c.enc.NewEncoder().String(c.text)
		if err != nil {
			raw, _ = charmap.Windows1252.NewEncoder().String(c.text)
		}
		enc, detected := HeaderEncoding([]byte(raw), "iso-8859-1")
		assert.Equal(t, c.detected, detected, c.text)
		if c.detected {
			got, err := enc.NewDecoder().String(raw)
			assert.NoError(t, err)
			assert.Equal(t, c.text, got)
		}
	}
	enc, detected := HeaderEncoding([]byte("\xb2\xe2\xca\xd4"), "gb2312")
	assert.False(t, detected, "a multi-byte declaration is taken at its word")
	got, err := enc.NewDecoder().String("\xb2\xe2\xca\xd4")
	assert.NoError(t, err)
	assert.Equal(t, "测试", got)
}
