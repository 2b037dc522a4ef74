package drivertest

import (
	"strconv"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

func (f *fixture) refs() driver.ReferenceFinder { return f.d.(driver.ReferenceFinder) }

// wantRefCase checks that LookupReference(ids) finds case want.
func (f *fixture) wantRefCase(ids []string, want driver.CaseID, what string) {
	f.t.Helper()
	c, err := f.refs().LookupReference(f.ctx, ids)
	if err != nil {
		f.t.Errorf("%s: LookupReference: %v", what, err)
		return
	}
	if c.ID != want {
		f.t.Errorf("%s: LookupReference found case %q, want %q", what, c.ID, want)
	}
}

// wantRefNotFound checks that LookupReference(ids) is NotFound.
func (f *fixture) wantRefNotFound(ids []string, what string) {
	f.t.Helper()
	c, err := f.refs().LookupReference(f.ctx, ids)
	if code := f.d.ErrorCode(err); code != driver.NotFound {
		f.t.Errorf("%s: LookupReference = case %q, err %v (%s), want NotFound", what, c.ID, err, code)
	}
}

// The references of mails filed on a case are found; their own Message-IDs
// are not references; the first filing wins; the last ID is preferred;
// RecordInteraction and no-op filings index nothing.
func testReferencesFound(f *fixture) {
	root := "root." + f.tag + "@elsewhere.example"
	first := f.mail()
	first.InReplyTo = []string{root}
	first.References = []string{root}
	c := f.createCase(first)
	f.wantRefCase([]string{root}, c.ID, "the root both replies refer to")
	f.wantRefNotFound([]string{first.MessageID}, "a mail's own Message-ID")
	f.wantRefNotFound([]string{"never." + f.tag + "@elsewhere.example"}, "an ID no mail refers to")

	// A second case whose mail refers to the same root: the first filing
	// still wins. Its own, more specific reference is preferred when it
	// comes last.
	other := "other." + f.tag + "@elsewhere.example"
	second := f.mail()
	second.InReplyTo = []string{other}
	second.References = []string{root, other}
	c2 := f.createCase(second)
	f.wantRefCase([]string{root}, c.ID, "first filing wins")
	f.wantRefCase([]string{root, other}, c2.ID, "the last ID is preferred")
	f.wantRefCase([]string{other, root}, c.ID, "the last ID is preferred (reversed)")

	// AppendEmail indexes too.
	parent := "parent." + f.tag + "@elsewhere.example"
	appended := f.mail()
	appended.InReplyTo = []string{parent}
	f.noErr(f.d.AppendEmail(f.ctx, c2.ID, appended), "AppendEmail")
	f.wantRefCase([]string{parent}, c2.ID, "a reference of an appended mail")

	// A redelivery (same key) on another case indexes nothing there.
	again := *appended
	again.InReplyTo = []string{"redelivered." + f.tag + "@elsewhere.example"}
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, &again), "AppendEmail of a key filed before")
	f.wantRefNotFound([]string{"redelivered." + f.tag + "@elsewhere.example"}, "a no-op filing")

	// A mail filed on no case indexes nothing.
	loose := f.mail()
	loose.InReplyTo = []string{"loose." + f.tag + "@elsewhere.example"}
	f.noErr(f.d.RecordInteraction(f.ctx, &driver.Interaction{Kind: driver.KindEmail, Email: loose}), "RecordInteraction")
	f.wantRefNotFound([]string{"loose." + f.tag + "@elsewhere.example"}, "RecordInteraction")
}

// Long References lists are indexed within driver.MaxIndexedReferences:
// the root and the most specific IDs; hostile IDs of any length and any
// number of lookup IDs work.
func testReferencesBounded(f *fixture) {
	refs := make([]string, 300)
	for i := range refs {
		refs[i] = "r" + strconv.Itoa(i) + "." + f.tag + "@elsewhere.example"
	}
	long := strings.Repeat("x", 4000) + "'\"; DROP TABLE cases; --" + f.tag + "@elsewhere.example"
	refs[299] = long
	e := f.mail()
	e.References = refs
	c := f.createCase(e)
	f.wantRefCase([]string{refs[0]}, c.ID, "the root of a long References list")
	f.wantRefCase([]string{long}, c.ID, "the last (hostile, 4 KB) reference")
	f.wantRefCase([]string{refs[250]}, c.ID, "a recent reference")
	f.wantRefNotFound([]string{refs[100]}, "a middle reference beyond the bound")
	many := make([]string, 0, 2000)
	for i := range 2000 {
		many = append(many, "miss"+strconv.Itoa(i)+"."+f.tag+"@elsewhere.example")
	}
	f.wantRefCase(append(many, refs[0]), c.ID, "2,001 lookup IDs")
}
