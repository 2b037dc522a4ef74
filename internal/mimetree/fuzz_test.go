package mimetree

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzRead: Read never panics, returns a tree with header fields or one of
// its errors, and leaves raw unmodified.
func FuzzRead(f *testing.F) {
	f.Add([]byte("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nx\r\n--B--\r\n"))
	f.Add([]byte("From: a@b.example\rSubject: s\r\rbody\r"))
	f.Add([]byte("not a header\nFrom: a@b\n x\n\nbody"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := bytes.Clone(raw)
		l := Limits{MaxHeaderBytes: 4096, MaxDepth: 8, MaxParts: 64}
		for _, force := range []bool{false, true} {
			root, _, err := Read(raw, l, force)
			if err != nil {
				if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrNoFields) && !errors.Is(err, ErrHeaderTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if root == nil || len(root.Fields) == 0 {
				t.Fatalf("no error and no header fields")
			}
		}
		if !bytes.Equal(raw, orig) {
			t.Fatalf("raw modified")
		}
	})
}

// FuzzTransferDecode: the decoders never panic and never grow the data
// beyond what the encoding allows.
func FuzzTransferDecode(f *testing.F) {
	f.Add([]byte("aGVsbG8=\r\nd29y bGQ\r\n=="))
	f.Add([]byte("caf=E9 =\r\n=ZZ end=\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, cte := range []string{"base64", "quoted-printable", "x-unknown", ""} {
			e := &Entity{Fields: []Field{{Name: "Content-Transfer-Encoding", Value: cte}}, Body: body}
			out, _ := TransferDecode(e)
			if max := 2*len(body) + 4; len(out) > max { // QP makes a bare LF CRLF
				t.Fatalf("%s: %d bytes decoded from %d", cte, len(out), len(body))
			}
		}
	})
}
