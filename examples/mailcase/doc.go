// Command mailcase is the example command line of the emailcrm SDK: it runs
// the mailcase pipeline against built-in sample mail (demo), explains the
// decisions taken for one mail (explain), files a backlog into a store
// (import) and lists what a store holds (cases).
//
// The commands live in package cli (examples/mailcase/cli); this command is
// its five-line main, linking the project's store drivers. A program with
// its own driver blank-imports it instead and gets every command against
// --store theircrm:// (see package cli).
//
// Usage:
//
//	mailcase <command> [flags] [args]
//	mailcase help [command]
//
// Every command that touches a store takes --store URL; mem:// is the
// in-memory store (gone when the command exits). A bare path (data/cases.db,
// /var/lib/mailcase/cases.db) is the SQLite file at that path, as are
// sqlite:///absolute/path.db and sqlite:relative/path.db; sqlite://name.db is
// refused, since name would read as a host. The default is the file
// mailcase.db in the working directory. The commands that only read a store
// (cases, explain --store, quarantine) never create one: a missing SQLite
// file is an error.
//
// Every command takes --log-level (debug, info, warn, error; default info,
// or $MAILCASE_LOG_LEVEL) and --log-format (json, the default, or text) for
// its log on stderr. At info, run logs one line per mailbox poll with every
// counter and its duration as text, and one line when an IMAP connection is
// lost and one when it is re-established; the line per mail is at debug.
//
// Counters: every fetched mail is counted once as filtered, created,
// appended, reopened, recorded (filed on the sender's record, no case),
// rejected, structured, duplicate, quarantined or deferred (left for
// redelivery), so these add up to fetched; auto (automatic mail and
// bounces), retried and errors count some of them again. import and demo
// print them all; run prints them as JSON.
//
// cases --recorded also lists the mail recorded on no case. quarantine list,
// quarantine show ID [--raw], quarantine retry ID and quarantine delete ID
// work on the mail the store keeps in its quarantine: retry runs the raw
// mail through the pipeline of its mailbox again (with --config, wired as
// run wires it: that mailbox's policies and plugins, the events and the
// service-level clocks) and removes it from the quarantine once filed.
// outbox list [--status S] [--case ID], outbox show ID [--raw], outbox retry
// ID and outbox cancel ID work on the outgoing mail the store queued: retry
// makes a failed, cancelled or bounced message (or a pending one waiting
// for its backoff) due now; cancel withdraws a message not yet sent.
// events tail [--follow] [--after SEQ] [--kind PATTERN] prints the store's
// lifecycle events as JSON lines (the webhook envelope); events deliveries
// [--sink webhook:NAME] [--status failed] shows their delivery to each
// webhook and NATS sink of the configuration's events section, which run
// delivers. run, pipe, lmtp, import --live --config and quarantine retry
// record the events of the mail they file and start its service-level
// clocks, all wired alike (only run connects to the sinks and sends what
// the others recorded; import --live's backlog mail is sent nothing, but
// its cases' clocks run and their alerts go to the owners; import without
// --live is an archive: no event, no clock, so old threads alert nobody);
// reply and worklist reply record reply.queued and stop the response
// clocks that ran when the reply was first queued; the other worklist changes
// record theirs (case.accepted, case.assigned, case.status_changed), the
// events of one change in one append; the bounce of a reply run sent is
// reply.bounced.
//
// worklist list [--queue Q] [--owner ADDR] [--unowned] [--status S] [--all]
// shows the work items (every case is one, on its group queue); worklist
// open, accept, release, reassign --queue Q [--member ADDR], close
// [--cancel], status CASE STATUS, handled and reply [--template NAME]
// [--status S] act as the agent --agent ADDR under the worklist rules: only
// a member of the queue accepts, only the owner modifies or replies, and an
// item with open mail (a received mail not yet answered or marked handled)
// cannot close. open shows the item as the agent opens it; with
// worklists.auto_accept: true, opening an unowned item of a queue the agent
// is a member of accepts it for the agent (a case.accepted event with
// "auto": true), and config check refuses auto_accept when no declared
// queue has members. They read the worklists: section of --config FILE
// (queues with their owner and members, kept in the store by every
// worklist command, auto_accept, and reply templates):
//
//	worklists:
//	  auto_accept: true              # opening an unowned item takes it
//	  queues:
//	    - {name: tier1, owner: lead@example.com, members: [bob@example.com, amy@example.com]}
//	  templates:
//	    drum: {subject: "About your printer", text_file: drum.txt}
//
// Mail is routed to group queues only: a queue that is a mail
// address is refused when the file is loaded, and with worklists declared
// every queue a mailbox or its rules name must be one of them.
//
// Everything printed for a person (progress, cases, explain, quarantine,
// errors) shows control characters, DEL, C1 controls and bidirectional
// overrides escaped (\x1b, \u202e), so a hostile mail cannot drive the
// terminal; JSON output is escaped by its encoder.
//
// Exit codes: 0 success, 1 failure, 2 usage error; commands may return other
// codes with exitError (pipe uses the sendmail codes).
//
// # Mailboxes from a configuration file: run, pipe, lmtp, import, explain
//
// The run, pipe and lmtp commands read a YAML file (--config) naming the
// store and the mailboxes; import, explain and demo take the same file and
// --mailbox NAME. mailcase config check FILE loads it the same way and
// reports the first mistake, or "ok". Every value is checked when the file loads: an
// unknown key, a duration without a unit, a value outside its list or a
// missing companion (a move without its folder) is reported as
// "config FILE:LINE: ..." with the valid keys or values, before anything
// connects. Every mailcase.Mailbox field (name, address,
// default_queue, unknown_sender, max_size, block lists...) is a key of its
// mailbox; secrets come from the environment (password_env,
// oauth2_token_env) and are never required inline:
//
//	store: sqlite:///var/lib/mailcase/cases.db
//	# a server store: postgres://crm:${PGPASSWORD}@db/crm, or
//	# postgres://crm@db/crm with store_password_env: PGPASSWORD
//	trusted_authserv_ids: [mx.example.com]   # employees trusted only from mail
//	                                         # authenticated by your MX (RFC 8601)
//	dkim: {verify: true, alignment: relaxed, dns_timeout: 5s}   # or DKIM-signed
//	                                         # by the From domain, checked here
//	lmtp:
//	  listen: 127.0.0.1:2424
//	mailboxes:
//	  - name: support
//	    address: support@example.com
//	    default_queue: tier1
//	    interval: 2m                 # polling period
//	    recipients: [support@example.com, help@example.com]   # LMTP
//	    source:
//	      type: imap                 # imap, pop3, maildir, mbox, dir
//	      addr: imap.example.com:993
//	      security: tls              # tls (implicit TLS, 993), starttls (143),
//	                                 # or insecure: plain text, password
//	                                 # included; loopback and tests only
//	      watch: false               # true: wait for new mail with IDLE
//	                                 # (polling every poll_interval when
//	                                 # the server has no IDLE) instead of
//	                                 # polling at the interval, which may
//	                                 # then be left out
//	      username: support@example.com
//	      password_env: SUPPORT_IMAP_PASSWORD
//	      after: {kind: move, folder: Filed}   # flag (default: keep, mark $EmailcrmFiled), delete, move
//	      quarantine_folder: Quarantine
//
// # A CRM store and its local store
//
// A CRM store (salesforce://, dynamics://) keeps cases, contacts and the
// mail filed on them, but no outbox, source state, quarantine, leases or
// raw mail. Every command (run, pipe, lmtp, import, reply, outbox,
// quarantine) then pairs it with a local store that keeps those roles:
// local_store names it (a store URL, or a SQLite path relative to the
// file), by default the SQLite file NAME.local.db next to the
// configuration file NAME.yaml (mailcase-local.db in the working directory
// for a command run without a file). A store that keeps every role (SQLite,
// PostgreSQL, MariaDB) is used alone. mailcase config check prints where
// each role comes from:
//
//	store: salesforce://acme.my.salesforce.com?auto_assign=FALSE
//	local_store: /var/lib/mailcase/local.db
//
// The filing in the CRM and the reply queued in the local outbox are not
// one transaction (the local store cannot join the CRM's); a reply queued
// twice is kept once (the outbox's keys). The raw mail is kept locally
// before the CRM files it.
//
// # Threading, routing and structured mail in the file
//
// Three sections configure the pipeline's plugins. At the top level they
// are the defaults of every mailbox; in a mailbox they override the
// defaults key by key, so two mailboxes of one file can have their own
// closed-case policy, rules file and XML senders:
//
//	threading:
//	  key_env: MAILCASE_THREAD_KEY   # HMAC key (hex, or 16+ bytes of text);
//	                                 # or key_file: FILE. Without a key, signed
//	                                 # Message-IDs and tokens are not recognised
//	  domain: example.com            # domain of generated Message-IDs
//	  closed_policy: reopen          # reopen, reopen_within, new, new_linked, reject
//	  reopen_within: 336h            # only with closed_policy: reopen_within
//	  own_addresses: [info@example.com]   # aliases of ours
//	routing:
//	  rules: rules.yaml              # routing rules (package routing); relative
//	                                 # to the configuration file
//	structured:
//	  senders: [erp@ops.example.com, "@forms.example.com"]   # may run API actions
//	  secret_env: MAILCASE_XML_SECRET   # or secret_file: FILE
//	  admin_queue: admin             # structured mail that cannot run
//	  replay_window: 15m             # secret requests need <timestamp>, <nonce>
//	mailboxes:
//	  - name: billing
//	    address: billing@example.com
//	    threading: {closed_policy: new_linked}
//	    routing: {rules: billing-rules.yaml}
//	    structured: {senders: ["@erp.example.com"]}
//
// The own addresses of a mailbox, which never count as case participants
// (anti-hijack), are the address and recipients of every mailbox of the
// file plus own_addresses: a mail from one mailbox's address naming another
// mailbox's case does not thread onto it as a participant's would.
//
// These settings come from the configuration file only. The environment
// holds only secrets (the variables the file names with *_env, and
// MAILCASE_THREAD_KEY, the thread key of a command run without a file)
// and the log level (MAILCASE_LOG_LEVEL). A command run without a file (demo, explain, import)
// has no routing rules (demo: its embedded ones) and no structured mail.
// demo --config FILE [--mailbox NAME] applies the file's threading,
// routing and structured settings to the demo's own mailbox and store (a
// rules file of the file replaces the demo's rules). demo --crm salesforce
// files the same mails into an in-process fake Salesforce org
// (salesforcetest, no network) through the salesforce driver, with the
// outgoing mail in a temporary SQLite outbox paired with it, and prints the
// REST calls each mail cost, split into the filing (the Case, EmailMessage
// and files in one composite request) and the pipeline's lookups.
//
// mailcase run --config FILE polls every mailbox with a source at its
// interval (polls falling due together share one wake-up; a slow or failing
// mailbox never delays the others), logs per-run statistics and prints the
// totals as JSON when it stops on SIGTERM, after finishing the mail in
// flight. --once reads every mailbox once and exits (cron), watch: true
// included: the IMAP source then reads what the folder holds and ends.
//
// mailcase import --config FILE [--mailbox NAME] DIR files a backlog into
// the store of the file (unless --store says otherwise) under a mailbox of
// the file (the only one when --mailbox is left out), with its address and
// policies as run applies them: the mailbox's own address is then never a
// participant of its cases, so a mail From: it with a bare [#N] does not
// thread onto case N. Without --config, --mailbox only names the mailbox
// and no address is known.
//
// # Delivery from the MTA: pipe
//
// mailcase pipe --config FILE [--mailbox NAME] files one mail read on
// stdin and exits with a sendmail code: 0 when the mail is filed (or was
// filed before: redelivery is safe), 75 (EX_TEMPFAIL) for any temporary
// failure (store down, bad configuration) so that the MTA keeps the mail
// and retries, and 65 (EX_DATAERR) only for mail that can never be filed
// and is kept in the store's quarantine with its reason (or that the
// mailbox size policy refuses). A transient failure that outlasts the
// pipeline's attempts, and a permanent one when the store keeps no
// quarantine, exit 75: the MTA keeps the mail.
//
// Postfix, in master.cf (the pipe(8) daemon maps 75 to "deferred" and 65 to
// a bounce):
//
//	mailcase  unix  -  n  n  -  4  pipe
//	  flags=Rq user=mailcase argv=/usr/local/bin/mailcase pipe
//	  --config /etc/mailcase/mailcase.yaml --mailbox support
//
// and in main.cf route the support address to it:
//
//	transport_maps = hash:/etc/postfix/transport
//	# /etc/postfix/transport:
//	#   support@example.com  mailcase:
//	mailcase_destination_recipient_limit = 1
//
// procmail, in the support account's ~/.procmailrc (the "w" flag makes
// procmail wait for the exit code; on 75 procmail returns EX_TEMPFAIL to the
// MTA, which retries; the lock file serialises deliveries):
//
//	:0 w: mailcase.lock
//	| /usr/local/bin/mailcase pipe --config $HOME/mailcase.yaml
//
// A .forward works the same way:
//
//	"|/usr/local/bin/mailcase pipe --config /home/support/mailcase.yaml"
//
// # Parsing filed mail again: reparse
//
// Stores that keep the original raw mail of filed mails (sqlstore, by
// default; keep_raw=false in the store URL turns that off) let a parser fix
// reach mail filed before it: mailcase reparse [--store URL] [--dry-run]
// parses the kept raw mail of every filed mail again, or of the mails
// selected with --case N, --message-id ID and --key KEY (each repeatable),
// and replaces the stored subject, text, HTML, attachments and parse
// problems of each mail whose parse changed, printing what changed
// (--json: one array). The case, addresses and Message-IDs are left alone;
// summaries filed in place of a mail are skipped. --dry-run shows the
// changes and writes nothing.
//
// # Delivery from the MTA: LMTP
//
// mailcase lmtp --config FILE [--listen ADDR] answers each recipient 250
// only after the mail is durably filed in its mailbox, 451 on a transient
// failure and 554 with the reason when the mail can never be filed. In
// Postfix: virtual_transport = lmtp:inet:127.0.0.1:2424 (or mailbox_transport).
package main
