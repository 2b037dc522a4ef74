package xmlapi_test

import (
	"strings"
	"testing"

	"github.com/emailcrm/emailcrm/xmlapi"
)

// BenchmarkParseForm parses the seed-shaped contact form (11 fields, one
// group).
func BenchmarkParseForm(b *testing.B) {
	doc := contactUs[strings.Index(contactUs, "<?xml"):]
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := xmlapi.ParseForm(strings.NewReader(doc), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseForm_Oversized is the cost of refusing a document larger
// than the 1 MiB bound (it is read up to the bound, never whole).
func BenchmarkParseForm_Oversized(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := &bigReader{head: `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID><Q>`, n: 100 << 20}
		if _, err := xmlapi.ParseForm(r, nil); err == nil {
			b.Fatal("accepted")
		}
	}
}
