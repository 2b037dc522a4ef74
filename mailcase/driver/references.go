package driver

import "context"

// MaxIndexedReferences bounds the references of one mail a ReferenceFinder
// indexes (see ReferenceFinder).
const MaxIndexedReferences = 64

// ReferenceFinder is an optional interface for stores that also index the
// Message-IDs filed mails refer to, so that a thread whose first mail was
// never received still becomes one case: two replies that reference the
// same unknown Message-ID (a mail sent to someone else, with the mailbox
// only in Cc of the answers) meet through that reference. LookupThread
// finds mails by their own Message-ID; LookupReference finds them by the
// IDs they refer to. The rules:
//
//   - What is indexed. When CreateCase or AppendEmail files an Email on a
//     case, the driver indexes, in the same transaction as the filing where
//     it can, the Email's InReplyTo and References, at most
//     MaxIndexedReferences distinct IDs: every InReplyTo ID, the first
//     References ID (the thread's root), then the last References IDs, most
//     specific last. The Email's own MessageID is not a reference of it.
//     RecordInteraction (no case) indexes nothing, and a filing that is a
//     no-op (its key was filed before) indexes nothing again.
//   - The lookup. LookupReference returns the case of the earliest filed
//     mail (on a case) that refers to one of ids, preferring the ID that
//     comes last in ids (the most specific), or a NotFound error. IDs are
//     compared exactly as filed (mailcase normalises them before a driver
//     sees them); ids may be long and hostile, and any number of them.
//   - Mails filed before a driver began indexing are not found; a driver
//     documents whether it indexes them when it is upgraded.
//
// A ReferenceFinder is not a thread signal on its own: the threading
// ladder uses it after the Message-IDs of filed mails, and only for a
// sender who is on the case (the reference is unsigned and unknown to us).
type ReferenceFinder interface {
	LookupReference(ctx context.Context, ids []string) (Case, error)
}

// IndexedReferences returns the references of e a ReferenceFinder indexes,
// in the order of its rules: InReplyTo, the References root, then the last
// References IDs, distinct, at most MaxIndexedReferences, without e's own
// MessageID and without empty IDs.
func IndexedReferences(e *Email) []string {
	seen := make(map[string]bool, min(len(e.InReplyTo)+len(e.References), MaxIndexedReferences))
	var out []string
	add := func(id string) {
		if id == "" || id == e.MessageID || seen[id] || len(out) >= MaxIndexedReferences {
			return
		}
		seen[id] = true
		out = append(out, id)
	}
	for _, id := range e.InReplyTo {
		add(id)
	}
	if len(e.References) > 0 {
		add(e.References[0])
	}
	// The most specific references are the last ones: take as many of them
	// as the bound leaves room for, in their order.
	if len(e.References) > 1 {
		room := MaxIndexedReferences - len(out)
		for _, id := range e.References[max(1, len(e.References)-room):] {
			add(id)
		}
	}
	return out
}
