package mailcase_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

func requireUnparseable(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var e *mailcase.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, mailcase.InvalidArgument, e.Code)
	assert.ErrorIs(t, err, mailcase.ErrUnparseable)
	assert.ErrorIs(t, err, mailcase.ErrInvalidArgument)
}

// allocDuring returns the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestParseBadInput(t *testing.T) {
	garbage := make([]byte, 64<<10)
	x := uint32(2463534242)
	for i := range garbage {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		garbage[i] = byte(x)
	}
	tests := []struct {
		name string
		raw  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"white space", []byte(" \r\n\t\r\n")},
		{"binary garbage", garbage},
		{"NUL bytes", make([]byte, 4096)},
		{"text without header", []byte("Hello, this is not a mail at all.\nJust text.\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mailcase.ParseMessage(tt.raw, nil)
			assert.Nil(t, m)
			requireUnparseable(t, err)
		})
	}
}

// TestParseHugeHeaderLine feeds a 100 MB header line: ParseMessage must fail
// clearly after scanning at most MaxHeaderBytes, allocating almost nothing.
func TestParseHugeHeaderLine(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a 100 MB input")
	}
	const size = 100 << 20
	raw := make([]byte, 0, size)
	raw = append(raw, "From: a@example.com\r\nX-Huge: "...)
	raw = raw[:size-4]
	for i := len("From: a@example.com\r\nX-Huge: "); i < len(raw); i++ {
		raw[i] = 'a'
	}
	raw = append(raw, "\r\n\r\n"...)
	var err error
	alloc := allocDuring(func() { _, err = mailcase.ParseMessage(raw, nil) })
	requireUnparseable(t, err)
	assert.Contains(t, err.Error(), "header section exceeds the limit")
	assert.Less(t, alloc, uint64(1<<20), "work is bounded by the header limit, not the line")
	t.Logf("100 MB header line: %d bytes allocated", alloc)

	// A huge line in a part header fails the same way.
	part := []byte("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Long: " +
		strings.Repeat("x", 2<<20) + "\r\n\r\nbody\r\n--b--\r\n")
	_, err = mailcase.ParseMessage(part, nil)
	requireUnparseable(t, err)

	// A smaller limit applies.
	_, err = mailcase.ParseMessage([]byte("From: a@example.com\r\nSubject: "+strings.Repeat("s", 200)+"\r\n\r\nbody"),
		&mailcase.ParseOptions{MaxHeaderBytes: 100})
	requireUnparseable(t, err)
}

func nested(depth int, closeAll bool) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nMessage-ID: <deep@x>\r\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeep text\r\n")
	if closeAll {
		for i := depth - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
	}
	return b.Bytes()
}

func TestParseDeepNesting(t *testing.T) {
	for _, closeAll := range []bool{true, false} {
		t.Run(fmt.Sprintf("closed=%v", closeAll), func(t *testing.T) {
			raw := nested(1000, closeAll)
			m, err := mailcase.ParseMessage(raw, nil)
			require.NoError(t, err)
			assert.Equal(t, raw, m.Raw)
			assert.Contains(t, problemNames(m), mailcase.ProblemNestingTooDeep)
			require.Len(t, m.Attachments, 1, "the part below the depth limit is kept whole")
			assert.True(t, strings.HasPrefix(m.Attachments[0].ContentType, "multipart/"))
			assert.Contains(t, string(m.Attachments[0].Data), "deep text")
		})
	}
	t.Run("within limit", func(t *testing.T) {
		m, err := mailcase.ParseMessage(nested(10, true), nil)
		require.NoError(t, err)
		assert.Equal(t, "deep text", m.Text)
		assert.Empty(t, m.Problems)
	})
	t.Run("custom limit", func(t *testing.T) {
		m, err := mailcase.ParseMessage(nested(10, true), &mailcase.ParseOptions{MaxDepth: 3})
		require.NoError(t, err)
		assert.Contains(t, problemNames(m), mailcase.ProblemNestingTooDeep)
	})
}

func TestParseTooManyParts(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nMessage-ID: <many@x>\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--p--\r\n")
	m, err := mailcase.ParseMessage(b.Bytes(), &mailcase.ParseOptions{MaxParts: 10})
	require.NoError(t, err)
	assert.Contains(t, problemNames(m), mailcase.ProblemTooManyParts)
	assert.Contains(t, m.Text, "part 0")
	assert.Contains(t, m.Text, "part 49", "the rest stays in the last part, not dropped")
}

// TestParseLargeMailMemory checks the 25 MB budget: parsing one 25 MB mail
// allocates at most 3x its size in total (an upper bound of the peak heap
// growth), on the fast path and on the broken-mail path.
func TestParseLargeMailMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 25 MB mail")
	}
	for _, broken := range []bool{false, true} {
		t.Run(fmt.Sprintf("broken=%v", broken), func(t *testing.T) {
			raw := largeMail(25<<20, broken)
			var m *mailcase.Message
			var err error
			alloc := allocDuring(func() { m, err = mailcase.ParseMessage(raw, nil) })
			require.NoError(t, err)
			require.Len(t, m.Attachments, 1)
			assert.Greater(t, m.Attachments[0].Size, int64(18<<20))
			ratio := float64(alloc) / float64(len(raw))
			t.Logf("25 MB mail (broken=%v): %.1f MB allocated, %.2fx the mail", broken, float64(alloc)/(1<<20), ratio)
			assert.LessOrEqual(t, ratio, 3.0)
			if broken {
				assert.Contains(t, problemNames(m), mailcase.ProblemMissingBoundary)
			}
		})
	}
}

// largeMail builds a mail of about size bytes: a short text and one base64
// attachment.
func largeMail(size int, broken bool) []byte {
	var b bytes.Buffer
	b.Grow(size + 4096)
	b.WriteString("From: a@example.com\r\nTo: support@example.com\r\nMessage-ID: <large@x>\r\nSubject: big\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"LB\"\r\n\r\n--LB\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n" +
		"--LB\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	line := []byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n")
	for b.Len() < size-100 {
		b.Write(line)
	}
	if !broken {
		b.WriteString("--LB--\r\n")
	}
	return b.Bytes()
}

func TestParseErrorsAreTyped(t *testing.T) {
	_, err := mailcase.ParseMessage(nil, nil)
	var e *mailcase.Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, "parse", e.Op)
}
