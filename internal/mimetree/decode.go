package mimetree

import (
	"bytes"
	"encoding/base64"
	"mime"
	"strings"

	"github.com/jhillyerd/enmime/v2/mediatype"
)

// ParseMediaType parses a Content-Type or Content-Disposition value
// tolerantly; the media type is lower-case, "" when absent or unusable.
func ParseMediaType(v string) (string, map[string]string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if mt, params, err := mime.ParseMediaType(v); err == nil {
		return mt, params
	}
	mt, params, _, err := mediatype.Parse(v)
	if err != nil {
		t, _, _ := strings.Cut(v, ";")
		t = strings.ToLower(strings.TrimSpace(t))
		if strings.Count(t, "/") != 1 && t != "inline" && t != "attachment" {
			return "", nil
		}
		return t, nil
	}
	return strings.ToLower(mt), params
}

// TransferDecode decodes the Content-Transfer-Encoding of a leaf. The
// second result names a problem met, "" for none. A body that needs no
// decoding is returned as is, with its capacity capped.
func TransferDecode(e *Entity) ([]byte, string) {
	cte := strings.ToLower(strings.TrimSpace(e.Get("Content-Transfer-Encoding")))
	switch cte {
	case "base64":
		return decodeBase64(e.Body)
	case "quoted-printable":
		return decodeQP(e.Body)
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit":
		return e.Body[:len(e.Body):len(e.Body)], ""
	}
	return e.Body[:len(e.Body):len(e.Body)], ProblemContentEncoding
}

var b64Table = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	// URL-safe alphabet, seen from broken encoders.
	t['-'], t['_'] = 62, 63
	return t
}()

// decodeBase64 decodes base64 tolerantly: lines of a multiple of four
// characters go through the standard decoder; anything else (odd line
// lengths, stray characters, padding in the middle) through a forgiving
// slow path that skips invalid characters.
func decodeBase64(in []byte) ([]byte, string) {
	out := make([]byte, 0, len(in)/4*3+3)
	var quad [4]byte
	nq := 0
	bad := false
	slow := func(line []byte) {
		for _, c := range line {
			if c == '=' {
				// Padding: flush a partial quantum.
				if nq >= 2 {
					out = append(out, quad[0]<<2|quad[1]>>4)
					if nq == 3 {
						out = append(out, quad[1]<<4|quad[2]>>2)
					}
				} else if nq == 1 {
					bad = true
				}
				nq = 0
				continue
			}
			v := b64Table[c]
			if v == 0xff {
				if c != ' ' && c != '\t' && c != '\r' {
					bad = true
				}
				continue
			}
			quad[nq] = v
			nq++
			if nq == 4 {
				out = append(out, quad[0]<<2|quad[1]>>4, quad[1]<<4|quad[2]>>2, quad[2]<<6|quad[3])
				nq = 0
			}
		}
	}
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\n')
		var line []byte
		if i < 0 {
			line, in = in, nil
		} else {
			line, in = in[:i], in[i+1:]
		}
		line = bytes.TrimRight(line, " \t\r")
		if len(line) == 0 {
			continue
		}
		if nq == 0 && len(line)%4 == 0 {
			n, err := base64.StdEncoding.Decode(out[len(out):cap(out)], line)
			if err == nil {
				out = out[:len(out)+n]
				continue
			}
		}
		slow(line)
	}
	if nq == 1 {
		bad = true
	} else if nq > 1 {
		slow([]byte{'='})
	}
	if bad {
		return out, ProblemMalformedBase64
	}
	return out, ""
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// decodeQP decodes quoted-printable tolerantly: an invalid escape is kept
// literally, trailing white space is removed, soft line breaks are joined.
func decodeQP(in []byte) ([]byte, string) {
	out := make([]byte, 0, len(in))
	bad := false
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\n')
		var line []byte
		hasNL := i >= 0
		if hasNL {
			line, in = in[:i], in[i+1:]
		} else {
			line, in = in, nil
		}
		line = bytes.TrimRight(line, " \t\r")
		soft := false
		if len(line) > 0 && line[len(line)-1] == '=' {
			soft = true
			line = line[:len(line)-1]
		}
		for len(line) > 0 {
			j := bytes.IndexByte(line, '=')
			if j < 0 {
				out = append(out, line...)
				break
			}
			out = append(out, line[:j]...)
			line = line[j:]
			if len(line) >= 3 {
				if h, ok1 := unhex(line[1]); ok1 {
					if l, ok2 := unhex(line[2]); ok2 {
						out = append(out, h<<4|l)
						line = line[3:]
						continue
					}
				}
			}
			bad = true
			out = append(out, '=')
			line = line[1:]
		}
		if hasNL && !soft {
			out = append(out, '\r', '\n')
		}
	}
	if bad {
		return out, ProblemMalformedQP
	}
	return out, ""
}

// ---------------------------------------------------------------------------
// Charsets
