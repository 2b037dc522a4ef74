// Package xmlapi implements structured email: a mail whose body is an
// XML request in the emailcrm namespace runs API actions (create a case or
// contact, add a note, set status or priority, dispatch to a queue, assign,
// close) instead of opening an unstructured case.
//
// # Wire format
//
// The root element is request in namespace urn:emailcrm:mailcase:v1
// (Namespace), version 1. Actions run in document order:
//
//	<request xmlns="urn:emailcrm:mailcase:v1" version="1" webform="rma">
//	  <secret>shared-secret</secret>
//	  <timestamp>2026-12-07T10:00:00Z</timestamp><nonce>7f3c9a0e</nonce>
//	  <createContact email="ann@example.com" name="Ann"/>
//	  <createCase contact="ann@example.com" priority="high" queue="billing">
//	    <subject>Invoice 42 is wrong</subject>
//	    <body>Please check.</body>
//	  </createCase>
//	  <addNote case="1042"><body>Called the customer.</body></addNote>
//	  <setStatus case="1042" status="in_progress"/>
//	  <setPriority case="1042" priority="urgent"/>
//	  <dispatch case="1042" queue="tier2"/>
//	  <assign case="1042" owner="agent-7"/>
//	  <close case="1042"/>
//	</request>
//
// Unknown elements are ignored for forward compatibility; required
// attributes are validated after decoding with the action's position in
// the error. Wire types are separate from mailcase types.
//
// A request may ask for an automated reply with a reply element naming a
// template and its variables (ReplyElement):
//
//	<reply template="case-opened"><var name="alert">A-77</var></reply>
//
// The Handler puts it in StructuredResult.Reply; outbox.StructuredReplier,
// a pipeline Responder, renders and queues it, threaded to the request,
// with the loop protection and per-address limits of automatic mail.
//
// # ERMS webforms
//
// With HandlerOptions.Forms set, a mail is also structured when it is a
// webform of PeopleSoft's ERMS: its body holds both the XML declaration
// (<?xml version="1.0"?>) and the <WEBFORM_TEMPL_ID> tag (IsWebform; the
// declaration may be left out when the body starts with an element after
// leading whitespace). Only the plain-text body is read, as in ERMS,
// which keeps plain text and files other parts as attachments: an
// HTML-only mail is not a webform. The form is read by ParseForm, which
// keeps every field in document order, repeated fields and nested groups
// included, under the same limits as the own format.
//
//	<?xml version="1.0"?>
//	<WEBFORM>
//	  <WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID>
//	  <EMAIL>ann@example.com</EMAIL>
//	  <QUESTION>Where is my order?</QUESTION>
//	</WEBFORM>
//
// The template ID selects a FormHandler (a Go handler, or the built-in
// CaseForm: create a case in a queue with chosen fields as its
// description, reply with a template). It gets the fields, the sender,
// the sender's contact and how the sender was authenticated, and returns
// actions (run like a request's) and the reply to send. A top-level
// secret element carries the shared secret and is not a field.
//
// # Records
//
// Accounts, contacts and assets are created and updated with createAccount,
// updateAccount, createContact, updateContact, createAsset and updateAsset
// (attributes in RecordAttrs). createContact finds or creates: a known
// address creates nothing. The record actions of a request run before its
// case actions, as one batch: on a store that applies batches in one
// transaction (mailcase.Store.CanBatchRecords: sqlstore, memstore) a failing
// record action leaves nothing of the batch, and on other stores the actions
// before it stay applied and the admin note lists them. Names an action
// refers to (an account by name or "@domain", a contact by address) resolve
// to records created earlier in the request, or to stored ones as they were
// before the request (an account renamed by the request is still found by
// its old name within it); an unknown name fails the request before
// anything is applied. Creations are keyed by the mail and the action's
// position, so a redelivered request creates nothing twice.
//
// # Security
//
// Actions are trusted only from authorised senders: the From address
// must be on the allow list, and the sender must be authenticated. The
// pipeline's sender authentication (mailcase.Delivery.Auth: an aligned
// DKIM signature verified in process, or a pass in the Authentication-Results
// field of a trusted receiving server; see package mailauth) suffices;
// otherwise the request must carry the shared secret together with
// <timestamp> (RFC 3339) and <nonce>:
//
//	<secret>shared-secret</secret>
//	<timestamp>2026-12-07T10:00:00Z</timestamp>
//	<nonce>7f3c9a0e</nonce>
//
// The timestamp must be within HandlerOptions.ReplayWindow of now (15
// minutes by default, either way) and the nonce must not have been used by
// another mail within it: nonces are remembered in the store when it keeps
// state, otherwise in a bounded in-memory set (see StateStore and
// HandlerOptions.MaxNonces). The secret
// travels in the mail: whoever can read one request can forge others, so
// the secret path suits a confidential transport (a submission port with
// TLS to our own MX); the replay defence stops resent copies. A refusal
// records why, including the sender authentication's reason; the secret
// never appears in it. Webforms follow the same rule: the webform server
// sending them is the sender to allow, and a form authorised by the secret
// carries top-level <secret>, <timestamp> and <nonce> fields. The decoder
// refuses DOCTYPE declarations (so no entity can be defined or expanded),
// bounds the document size, the nesting depth, the number of tokens and the
// number of actions; a webform is read as a stream and refused once it
// passes the size bound.
//
// # Failures
//
// A structured mail that cannot run (malformed XML, an unknown webform or
// template ID, a refused sender, a failing action) is never lost: it is filed as a new case
// in the mailbox's admin queue with the reason as a note, so an
// administrator sees it.
package xmlapi
