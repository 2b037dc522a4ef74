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
// must be on the allow list, and the mail must either carry the shared
// secret or be authenticated (DKIM/SPF pass, judged by
// HandlerOptions.Authenticated). The decoder refuses DOCTYPE declarations (so
// no entity can be defined or expanded), bounds the document size, the
// nesting depth, the number of tokens and the number of actions.
//
// # Failures
//
// A structured mail that cannot run (malformed XML, an unknown webform ID, a
// refused sender, a failing action) is never lost: it is filed as a new case
// in the mailbox's admin queue with the reason as a note, so an
// administrator sees it.
package xmlapi
