// Package dynamics is the Microsoft Dynamics 365 Customer Service driver
// of mailcase: a driver.CaseStore, driver.Directory,
// driver.DirectoryWriter, driver.Lister and driver.Aser over the Dataverse
// Web API (v9.2). Support mail
// becomes incidents with one email activity per mail, attachments as
// activitymimeattachments and notes as annotations.
//
// # Authentication
//
// Entra ID client credentials (golang.org/x/oauth2/clientcredentials):
// POST https://login.microsoftonline.com/{Tenant}/oauth2/v2.0/token (or
// Config.TokenURL), scope "<InstanceURL>/.default". Config.AuthorizationURL
// is informational (the seed's field; this flow does not use it). Tokens
// are cached and refreshed before expiry; a 401 drops the cached token and
// repeats the request once with a new one. The client secret and tokens
// never appear in logs or errors. The application user needs a security
// role that reads and writes incidents, emails, activitymimeattachments,
// annotations, contacts and accounts, reads systemusers, and runs
// CloseIncident.
//
// # Records and columns
//
//   - incident: title (the subject, cut to 200 characters), description
//     (NewCase.Description or the first mail's text, cut to 2,000: the full
//     body lives on the email), caseorigincode 2 (Email), prioritycode
//     (1 High for high and urgent, 2 Normal, 3 Low), the customer bound as
//     customerid_contact or customerid_account, statecode/statuscode.
//   - email: subject, description (the body), messageid ("<id>"),
//     directioncode, the parties (email_activity_parties,
//     participationtypemask 1 from, 2 to, 3 cc), bound to its case through
//     regardingobjectid_incident_email (or to the sender's contact or
//     account for RecordInteraction).
//   - activitymimeattachment: filename, mimetype, base64 body,
//     attachmentcontentid, bound through objectid_activitypointer.
//   - annotation: notetext, bound through objectid_incident; its subject is
//     the author followed by the driver's bookkeeping, "[emailcrm <time>
//     [key:<sha256 hex>] [public]]" (the time orders the timeline to the
//     nanosecond, the key makes AddNote idempotent).
//   - A body longer than email.description (1,048,576 characters) keeps
//     its first 1,048,576 characters there and the rest in hidden
//     attachments emailcrm-body-N.txt; an HTML part over 256 KiB next to a
//     text part goes to emailcrm-html-N.txt. ListInteractions puts them
//     back together: every string is kept literally.
//   - contact (emailaddress1, 2, 3), account (Config.AccountDomainField,
//     default websiteurl), systemuser (internalemailaddress, isdisabled).
//
// The administrator creates these columns and keys (the driver refuses to
// guess):
//
//   - incident.emailcrm_key and email.emailcrm_key: text (100), each an
//     alternate key. They hold the SHA-256 (hex, 64 characters) of the
//     idempotency key.
//   - incident.emailcrm_data, email.emailcrm_data, contact.emailcrm_data
//     and account.emailcrm_data: multiline text (memo, 1,048,576 on email
//     and incident). JSON: the exact idempotency key (base64: keys are
//     opaque bytes with NULs), the driver's status, queue, owner, category,
//     participants (the anti-hijack list) and timestamps; on contacts and
//     accounts the placeholder flag and the support level.
//
// # Queues and owners
//
// The queue and owner names of a case are kept in emailcrm_data. With
// Config.ResolveOwners (URL resolve_owners=true) they also act in
// Dataverse: a case routed to a queue is put into the queue of that name
// with the AddToQueue action (one call after the filing's $batch; the
// queue is looked up by name once and cached; a name no queue has is
// looked up again after Config.OwnerMissTTL, 2 minutes by default, so a
// queue created after start-up is found), a case update naming a
// queue moves it there in the update's change set, and one naming an owner
// binds ownerid to the enabled systemuser with that full name or internal
// e-mail address. A new case routed to a queue no record has the name of
// is filed in no queue, with a note on the case saying so (and a warning
// logged); an update naming a missing queue or owner is InvalidArgument.
//
// # Statuses
//
// new and open are statecode 0 / statuscode 1 (In Progress), in_progress
// 0/4 (Researching), closed 1/5 (Problem Solved, through the CloseIncident
// action with an IncidentResolution), cancelled 2/6. Reopening sets
// statecode 0 / statuscode 1. The exact driver status is kept in
// emailcrm_data; a case resolved or cancelled in Dynamics reads as closed
// or cancelled, one reactivated there as open.
//
// # Idempotency
//
// CreateCase is one $batch with one change set: the incident upserted by
// its alternate key with If-None-Match: * (create only), the email with
// its own key, the attachments and the description note. A retry of a
// filed key makes Dataverse answer 412, the change set rolls back, and the
// driver reads and returns the incident filed under the key: a retried
// create never makes two incidents. AppendEmail and RecordInteraction
// create the email by its key; a known key is refused (412) and is a
// no-op. A change-set failure leaves nothing half-filed.
//
// # Round trips
//
// A new mail with its attachments is one $batch (plus a read of the
// contact when this driver has not seen it, and, once, the lookup of the
// default customer). A reply is one $batch when the case was read or
// written by this driver in the last 10 seconds (the pipeline's
// LookupThread does), else two. The participants are merged in this
// process (one lock per case); two processes appending to one case at the
// same moment can lose a participant, never a mail.
//
// # Threads
//
// LookupThread queries emails?$filter=messageid eq '<id>' or ...: the first
// filing of the last referenced Message-ID that has one wins.
// Store.TrackingResolver is a mailcase.ThreadResolver for replies to mail
// sent from Dynamics: the subject's tracking tokens (Config.
// TrackingTokenPrefix, "CRM:0001234") are looked up as email.trackingtoken
// and the incident the email is regarding is the case, only when
// mailcase.SenderOnCase accepts the sender (the token counter rolls over
// and anyone can type a token). FindCaseByNumber reads ticketnumber.
// CaseURL is <instance>/main.aspx?etn=incident&id=<guid>&pagetype=entityrecord.
//
// # Customer
//
// Dataverse requires incident.customerid. A case without a contact or
// account is bound to Config.DefaultCustomer, or to the account named
// Config.DefaultCustomerName ("Unknown senders"), created on first need.
//
// # Limits and errors
//
// OData error bodies {"error":{"code","message"}} become *APIError:
// 404 or 0x80040217 NotFound, 412 and 0x80060892 (duplicate key)
// AlreadyExists, other 400s (too long, required, bad bind)
// InvalidArgument, 401/403 PermissionDenied, 429 ResourceExhausted, 5xx
// and connection failures Unavailable, context errors Canceled and
// DeadlineExceeded. The driver does not retry (mailcase.Store does): a 429
// carries its Retry-After in APIError.RetryAfter, and the driver waits it
// out before its next call. When x-ms-ratelimit-burst-remaining-xrm-requests
// falls under Config.SlowDownAt (200), every call is delayed, up to
// Config.SlowDownMax when the budget reaches 0. An attachment whose base64
// size is over Config.MaxUploadFileSize (5 MB by default) is left out: the
// mail is filed without it and the email's Problems name it, with its size
// and the limit (the original mail, kept by the store's raw mail where it
// has one, still holds it).
//
// # OData escaping
//
// Values enter $filter only through Quote (single quotes doubled) or, in
// contains/startswith/endswith, QuoteLike (also % _ [ as [%] [_] [[]);
// addresses are compared with eq. The whole query option is URL-encoded
// (a '+' is %2B, a space %20). The advanced lookup (LookupConfig, a
// $filter Template with {{variables}}) shares its template machinery,
// outcomes (single / multiple / none, take first / all) and lookup cache
// with the Salesforce adapter.
//
// # URLs
//
//	dynamics://org.crm.dynamics.com?tenant=contoso.onmicrosoft.com
//
// Credentials come from DYNAMICS_CLIENT_ID, DYNAMICS_CLIENT_SECRET and
// DYNAMICS_TENANT, never from the URL. Parameters: api (v9.2), token_url,
// tenant, insecure_http=1 (http to loopback hosts only: tests, the demo),
// domain_field, cache (a duration), default_customer, tracking_prefix,
// slow_down_at, resolve_owners (true: Config.ResolveOwners), no_notes,
// no_transcript, no_attachments, no_summary.
//
// The CLI runs its demo against the in-process fake (package dynamicstest)
// with `mailcase demo --crm dynamics`, printing the API calls each mail
// cost.
//
// # As
//
// mailcase.Store.As: **Store, **http.Client. ErrorAs: **APIError,
// **AuthError.
package dynamics
