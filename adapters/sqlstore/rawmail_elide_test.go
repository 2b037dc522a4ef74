package sqlstore

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Whatever the mail and its attachments, elide and rebuild give back the
// mail byte for byte, and a header readRefs accepts never makes rebuild
// read out of bounds.
func FuzzElideRebuild(f *testing.F) {
	data := bytes.Repeat([]byte("attachment bytes \x00\xff"), 40)
	enc := base64.StdEncoding.EncodeToString(data)
	f.Add([]byte("Subject: x\r\n\r\n"+enc[:76]+"\r\n"+enc[76:]+"\r\n--b--\r\n"), data, uint8(76))
	f.Add([]byte("head\n"+enc+"\n"), data, uint8(0))
	f.Fuzz(func(t *testing.T, raw, att []byte, lineLen uint8) {
		if lineLen > 0 { // put att into raw, wrapped, so that some inputs match
			e := base64.StdEncoding.EncodeToString(att)
			for i := 0; i < len(e); i += int(lineLen) {
				raw = append(raw, e[i:min(i+int(lineLen), len(e))]...)
				raw = append(raw, '\r', '\n')
			}
		}
		atts := []driver.Attachment{{Data: att, Size: int64(len(att))}}
		rest, refs := elide(raw, atts)
		got, err := rebuild(rest, refs, map[int][]byte{0: att}, int64(len(raw)))
		require.NoError(t, err)
		require.Equal(t, raw, got)

		hdr := appendRefs(nil, refs)
		back, flag, tail, err := readRefs(append(append(hdr, 0), rest...))
		require.NoError(t, err)
		require.Equal(t, byte(0), flag)
		require.Equal(t, rest, tail)
		if len(refs) > 0 {
			require.Equal(t, refs, back)
		}
		// Hostile headers: an error or a bounded result, never a panic.
		if refs, _, tail, err := readRefs(raw); err == nil {
			_, _ = rebuild(tail, refs, map[int][]byte{0: att}, int64(len(raw)))
		}
	})
}
