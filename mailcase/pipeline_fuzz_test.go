package mailcase_test

import (
	"context"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// FuzzPipelineProcess checks that any input ends in a final disposition
// (Done or Quarantine) with a recorded reason, never a panic or a lost mail.
func FuzzPipelineProcess(f *testing.F) {
	for _, raw := range mailcasetest.GenerateCorpus(20, 3) {
		f.Add(raw)
	}
	f.Add(plBounce("x@y"))
	f.Add([]byte("From: <>\r\nReferences: <<<>>>\r\nMessage-ID: <>\r\n\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n"))
	s := plStore(f)
	p := plPipeline(f, s, &mailcase.Options{Mailbox: mailcase.Mailbox{MaxSize: 4096, BlockDomains: []string{"spam.example"}}})
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := p.Process(context.Background(), raw, nil)
		if err != nil {
			t.Fatalf("Process: %v", err)
		}
		o := res.Outcome
		switch o.Disposition {
		case mailcase.Done:
			if o.Action == "" || o.Action == mailcase.ActionQuarantined {
				t.Fatalf("Done with action %q", o.Action)
			}
		case mailcase.Quarantine:
			if o.Error == "" {
				t.Fatal("quarantined without reason")
			}
		default:
			t.Fatalf("disposition %v: %s", o.Disposition, o.Error)
		}
		if len(o.Steps) < 2 {
			t.Fatalf("only %d steps", len(o.Steps))
		}
	})
}

func FuzzThreadKey(f *testing.F) {
	f.Add([]byte("References: <a@b> <c@d>\r\n\r\n"))
	f.Add([]byte("In-Reply-To:\r\n <x@y>\r\nMessage-ID: z@w\n\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k := mailcase.ThreadKey(raw)
		if k != "" && mailcase.NormalizeMessageID(k) != k {
			t.Fatalf("key %q is not a normalised Message-ID", k)
		}
	})
}
