// Package salesforce is the Salesforce driver of mailcase: support mail
// filed as Cases, EmailMessages and Files over the Salesforce REST API,
// contacts, accounts and users as the Directory. It implements
// driver.CaseStore, driver.Directory, driver.DirectoryWriter, driver.Lister
// and driver.Aser. Programs open it with OpenStore (a *mailcase.Store) or by
// URL; the fake org in package salesforcetest serves the tests, the
// examples and `mailcase demo --crm salesforce`.
//
// # URLs
//
//	salesforce://my-domain.my.salesforce.com?auto_assign=FALSE
//
// The host is the org's My Domain. Credentials never appear in the URL:
// they come from the environment, SALESFORCE_CLIENT_ID and
// SALESFORCE_CLIENT_SECRET (client-credentials flow) or
// SALESFORCE_CLIENT_ID, SALESFORCE_USERNAME and
// SALESFORCE_PRIVATE_KEY_FILE (JWT bearer flow), or from URLOpener.Config.
// Query parameters:
//
//	api=v62.0             REST API version (default v62.0)
//	auto_assign=FALSE     Sforce-Auto-Assign: TRUE, FALSE or an AssignmentRule Id; required
//	login=URL             token endpoint base (default: the My Domain; https://test.salesforce.com for sandboxes with JWT)
//	audience=URL          JWT aud (default: login)
//	origin=Email          Case.Origin of cases without one
//	domain_field=Website  Account field holding the mail domains
//	cache=10m             reuse Directory lookups for a duration (default 0: fresh lookups)
//	resolve_owners=true   set OwnerId from queue and owner names
//	slow_down_at=0.9      API-usage fraction past which calls are slowed (negative: never)
//	no_notes, no_transcript, no_attachments, no_summary=true   push switches
//	insecure_http=1       plain http, only to loopback hosts (tests and the demo fake)
//
// # Authentication
//
// OAuth 2.0 through golang.org/x/oauth2: the client-credentials flow
// (clientcredentials.Config, grant_type=client_credentials at
// https://<my-domain>/services/oauth2/token; the connected app names a
// run-as user) or the JWT bearer flow (an RS256 assertion with iss = the
// consumer key, sub = the username, aud = the login URL, exp 3 minutes
// ahead, posted as grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer).
// Tokens are cached (oauth2.ReuseTokenSource); a 401 INVALID_SESSION_ID
// drops the cached token and repeats the request once with a new one,
// the only request the driver ever repeats. Tokens, secrets and private
// keys never reach logs or error texts.
//
// The integration user needs API Enabled, Read/Create/Edit on Case,
// EmailMessage, CaseComment, ContentVersion, Contact, Account and Task,
// Read on User and Group, and field-level access to the fields below.
//
// # Objects and fields
//
// A new case (CreateCase) is one Case, one EmailMessage (the first mail),
// a CaseComment for NewCase.Description and a ContentVersion per
// attachment, linked to the case by FirstPublishLocationId. AppendEmail
// adds an EmailMessage and its files. RecordInteraction (mail filed on no
// case) files a completed Task of subtype Email on the contact (WhoId) and
// account (WhatId). Standard fields used:
//
//   - Case: Subject, Description (the summary), Origin, Priority, Status,
//     ContactId, AccountId, ParentId, OwnerId (with ResolveOwners),
//     SuppliedEmail, SuppliedName, CaseNumber, ClosedDate, IsClosed and the
//     Config.CaseFields and Config.CategoryField.
//   - EmailMessage: ParentId, Incoming, Status ("0" New for inbound, "3"
//     Sent for outbound), Subject, FromAddress, FromName, ToAddress,
//     CcAddress, MessageDate, Headers, TextBody, HtmlBody,
//     MessageIdentifier (the Message-ID in angle brackets, as Salesforce
//     stores it, so Lightning threading matches replies to our mail and we
//     match replies to mail sent from Salesforce) and ThreadIdentifier (the
//     thread root).
//   - ContentVersion: Title, PathOnClient, VersionData,
//     FirstPublishLocationId, Description (a tag "emailcrm:<key hash>:<n>"
//     tying the file to its mail, so the Lister reads mails back whole).
//   - CaseComment: ParentId, CommentBody, IsPublished (Note.Public). The
//     driver ends every comment it writes with a trailer line
//     `[emailcrm-note <key marker or -> "<author>"]`; a note longer than
//     4,000 characters becomes several comments.
//   - Task: Subject, Description, Status (Completed), TaskSubtype (Email),
//     ActivityDate, WhoId, WhatId.
//   - Contact: FirstName, LastName, Email, AccountId; Account: Name and the
//     domain field; User: FirstName, LastName, Email, IsActive, Username.
//
// Custom fields the org admin creates (API names as listed):
//
//   - Case.EmailcrmKey__c: Text(80), External ID, Unique. The idempotency
//     key of the case's first mail (see Idempotency).
//   - Case.EmailcrmStatus__c: Text(40). The exact driver status (two driver
//     statuses may share a picklist value).
//   - Case.EmailcrmQueue__c, Case.EmailcrmOwner__c: Text(255). The queue
//     and owner names given by the pipeline (also resolved to OwnerId with
//     ResolveOwners).
//   - Case.EmailcrmData__c: Long Text Area(131072). JSON: the whole subject
//     when longer than Subject's 255 characters, the category, the linked
//     case, the contact's address at creation.
//   - EmailMessage.EmailcrmKey__c and Task.EmailcrmKey__c (Activity):
//     Text(80), External ID, Unique.
//   - EmailMessage.EmailcrmData__c and Task.EmailcrmData__c: Long Text
//     Area(131072). JSON: the exact idempotency key (base64), the content
//     fingerprint, the mailbox, the addresses the mail adds to the case's
//     participants, the auto/summary marks and the fields truncated.
//   - Contact.EmailcrmFlags__c: Text(255) ("placeholder", "internal").
//
// The JSON fields must stay under 131,072 characters: a mail with a very
// long reply text keeps it as the file email-reply.txt instead; a mail
// whose address lists alone exceed that is refused with InvalidArgument
// (and quarantined by the pipeline).
//   - Contact and Account EmailcrmSupportLevel__c: Text(255) (or
//     Config.SupportLevelField).
//
// # Idempotency
//
// Keys are opaque bytes (with NUL). Each filing stores the first 64 hex
// digits of the key's SHA-256 in EmailcrmKey__c, a unique external ID of
// the EmailMessage (or Task), and the exact key, base64, in
// EmailcrmData__c, so LookupProcessed returns it byte for byte. The case
// itself carries its first mail's hash in Case.EmailcrmKey__c.
//
// CreateCase is one composite request with allOrNone=true: a query guarding
// the Task key space, the Case insert, the EmailMessage insert (ParentId
// "@{newCase.id}"), the description note, up to 21 ContentVersions (at
// most 24 MB of file data, the JSON body limit) and a read of the new case. A retried create (a redelivered mail, a crash
// between filing and acknowledging) makes the Case or EmailMessage insert
// fail with DUPLICATE_VALUE on the unique key, which rolls the whole
// request back; the driver then reads and returns the case filed under the
// key. Concurrent creates with one key are decided by the same unique
// index. The insert-then-read design is chosen over an upsert on the
// external ID because an upsert of an existing case would overwrite what
// agents changed since (status, owner). Failure modes: attachments beyond
// one composite request (more than 21, or larger than MaxJSONAttachment,
// uploaded one by one as multipart) are filed after the case and are not
// retried by a redelivery, which finds the case and stops; a key filed as
// a Task (RecordInteraction) is guarded by a query in the same request
// and the case is deleted again when it shows up, so for that rare
// conflict a case exists for an instant.
//
// AppendEmail is one composite request: the case's existence, the Task
// guard and the EmailMessage with its files. RecordInteraction is one
// composite request (the EmailMessage guard and the Task). Notes with an
// idempotency key carry a marker line "[emailcrm-note:<hash>]" in the
// comment (CaseComment takes no custom fields) and the case's comments are
// read before adding one.
//
// # Threads and participants
//
// LookupThread is one SOQL query: EmailMessage.MessageIdentifier IN the
// Message-IDs, oldest first; for each Message-ID its first filing wins,
// and among the IDs the last known one wins. Participants are derived when
// a case is read: the contact's address (kept at creation unless the
// contact is a placeholder) plus the addresses each EmailMessage of the
// case recorded in its EmailcrmData__c (none for NoParticipants). A case's
// UpdatedAt is the later of its LastModifiedDate and its newest mail.
//
// # Listing
//
// Query answers are read page by page (nextRecordsUrl), also those of
// composite subrequests: Salesforce returns up to 2,000 records a page,
// fewer for records with long text fields. A page URL outside the API or
// read twice is an error.
//
// ListCases is a SOQL query on the cases (EmailcrmQueue__c, Status),
// newest first, and one query for their mails. ListInteractions is one
// composite request (the case, its EmailMessages, CaseComments and
// ContentVersions) and one request per file. Records created in the same
// second are ordered by Id, which grows with creation inside an org.
//
// # Bodies and files
//
// TextBody and HtmlBody hold 131,072 characters, Headers 32,000. A longer
// body is cut, ends with a line naming the file, and is kept whole as a
// file (email-body.txt, email-body.html) on the case. Attachments up to
// MaxJSONAttachment (4 MiB) go base64 inside composite requests; larger
// ones as multipart/form-data ContentVersion uploads (up to 2 GB). Empty
// attachments are skipped (Salesforce refuses empty files).
//
// # Directory
//
// FindContacts: SOQL on Contact.Email. FindAccounts: SOQL LIKE on the
// domain field, then an exact comparison of its normalised entries
// (scheme, "www.", path and port dropped). FindEmployee: SOQL on
// User.Email, active users first. CreateContact, CreateAccount and
// CreateEmployee insert records. With LookupCacheTTL > 0 the answers are
// reused for that long; writes through the driver invalidate them.
// Store.Lookup runs the advanced lookup (LookupConfig): a WHERE template
// with {{sender}}, {{domain}}, {{name}}, {{subject}} and {{header:Name}},
// each value escaped inside the quoted literal it stands in (a template
// that puts a variable outside quotes is refused when the driver is
// made), with none / single / multiple outcomes and "first" or "all".
//
// # SOQL
//
// Every value reaches SOQL through QuoteSOQL or QuoteSOQLLike, which
// follow Salesforce's escape rules for quoted strings (\' \" \\ \n \r \t
// \b \f, \uXXXX for other control characters, and \_ \% in LIKE).
//
// # Errors and limits
//
// Errors are *APIError (the status and Salesforce's error entries) or
// *AuthError, classified by ErrorCode: NOT_FOUND and 404 → NotFound;
// REQUIRED_FIELD_MISSING, STRING_TOO_LONG,
// FIELD_CUSTOM_VALIDATION_EXCEPTION, INVALID_FIELD and other input errors →
// InvalidArgument, with the field names in the message; DUPLICATE_VALUE →
// AlreadyExists; REQUEST_LIMIT_EXCEEDED → ResourceExhausted; 5xx,
// UNABLE_TO_LOCK_ROW and connection errors → Unavailable; authentication
// failures → PermissionDenied; context errors → Canceled and
// DeadlineExceeded. The driver does not retry (mailcase.Store retries
// Unavailable and ResourceExhausted with back-off); only the 401 refresh
// repeats a request. Salesforce sends no Retry-After. Answers are read
// up to a bound (256 MiB of JSON, 2 GB of file bytes); a longer one is an
// Internal error, never read whole. An access token a gateway echoes in
// its error page is replaced by "[access token]" in the error text.
//
// Every answer's Sforce-Limit-Info (api-usage=N/M) is parsed;
// Store.Limits returns the last figures. Past Config.SlowDownAt of the
// daily limit (default 90%) every call waits first, from 0 at the
// threshold growing linearly to SlowDownMax (default 2s) at the limit, so
// a busy mailbox spreads its calls instead of exhausting the org's quota
// for every other integration.
//
// # As
//
// Store.As: **Store (this driver, for Limits and Calls) and **http.Client.
// Store.ErrorAs: **APIError and **AuthError.
package salesforce
