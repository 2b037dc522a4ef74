package sqlstore

// queries holds the statements of one dialect, built once at open from
// constants: no statement ever carries input, every value is a parameter.
type queries struct {
	findContacts, insertContact                                      string
	findAccounts, accountDomains, insertAccount, insertAccountDomain string
	findEmployee, insertEmployee                                     string

	caseCols, getCase, caseParticipants, caseRef, touchCase, insertCase string
	// touchCaseRef touches a case and returns its contact and account in
	// one statement (UPDATE ... RETURNING); "" on MySQL, which has no
	// RETURNING (caseRef then touchCase run instead).
	touchCaseRef, contactEmail, deleteCase string
	updateCase, insertEvent                string

	insertProcessed, processedCase, lookupProcessed       string
	insertInteraction, interactionCols                    string
	caseInteractions, caselessInteractions, attachmentsOf string

	insertRaw, getRaw, rawSeq, rawKeysAfter, rawInteraction string
	emailByID, emailByKey, updateParsed, deleteAttachments  string

	insertQuarantine, getQuarantine, listQuarantineAll, listQuarantineBox, deleteQuarantine string
	getState, putState                                                                      string

	renewLease, insertLease, releaseLease string
}

const caseCols = `id, subject, status, priority, queue, owner, origin, category, contact_id, account_id, parent_id, linked_id, created_at, updated_at, closed_at`

const interactionCols = `id, kind, case_id, contact_id, account_id, idem_key, mailbox, direction, message_id,
 in_reply_to, refs, from_name, from_email, to_addrs, cc_addrs, subject, sent_at, body_text, reply_text, body_html,
 auto, summary, note_author, note_body, note_public, note_at, created_at, problems`

func buildQueries(d Dialect) *queries {
	r := d.rebind
	q := &queries{
		findContacts:        r(`SELECT id, name, email, account_id, placeholder, internal, support_level FROM contacts WHERE email_hash = ? ORDER BY id`),
		insertContact:       r(`INSERT INTO contacts (name, email, email_hash, account_id, placeholder, internal, support_level, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		findAccounts:        r(`SELECT id, name, support_level FROM accounts WHERE id IN (SELECT account_id FROM account_domains WHERE domain_hash = ?) ORDER BY id`),
		accountDomains:      r(`SELECT domain FROM account_domains WHERE account_id = ? ORDER BY position`),
		insertAccount:       r(`INSERT INTO accounts (name, support_level, created_at) VALUES (?, ?, ?)`),
		insertAccountDomain: r(`INSERT INTO account_domains (account_id, position, domain, domain_hash) VALUES (?, ?, ?, ?)`),
		findEmployee:        r(`SELECT id, name, email, active FROM employees WHERE email_hash = ?`),
		insertEmployee:      r(d.insertIgnore("employees", "email_hash", "name", "email", "email_hash", "active", "created_at")),

		caseCols:         caseCols,
		getCase:          r(`SELECT ` + caseCols + ` FROM cases WHERE id = ?`),
		caseParticipants: r(`SELECT address FROM case_participants WHERE case_id = ?`),
		caseRef:          r(`SELECT contact_id, account_id, status FROM cases WHERE id = ?`),
		touchCase:        r(`UPDATE cases SET updated_at = ? WHERE id = ?`),
		insertCase: r(`INSERT INTO cases (subject, status, priority, queue, owner, origin, category, contact_id, account_id, parent_id, linked_id, created_at, updated_at, closed_at)
 VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		contactEmail: r(`SELECT email, placeholder FROM contacts WHERE id = ?`),
		deleteCase:   r(`DELETE FROM cases WHERE id = ?`),
		updateCase:   r(`UPDATE cases SET status = ?, priority = ?, queue = ?, owner = ?, updated_at = ?, closed_at = ? WHERE id = ?`),
		insertEvent:  r(`INSERT INTO events (case_id, kind, detail, created_at) VALUES (?, ?, ?, ?)`),

		insertProcessed: r(d.insertIgnore("processed", "key_hash", "key_hash", "idem_key", "case_id", "created_at", "fingerprint")),
		processedCase:   r(`SELECT case_id FROM processed WHERE key_hash = ?`),
		lookupProcessed: r(`SELECT case_id, created_at, fingerprint FROM processed WHERE key_hash = ?`),

		insertInteraction: r(`INSERT INTO interactions (kind, case_id, contact_id, account_id, idem_key, mailbox, direction, message_id, message_id_hash,
 in_reply_to, refs, from_name, from_email, to_addrs, cc_addrs, subject, sent_at, body_text, reply_text, body_html,
 auto, summary, note_author, note_body, note_public, note_at, created_at, problems)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		interactionCols:      interactionCols,
		caseInteractions:     r(`SELECT ` + interactionCols + ` FROM interactions WHERE case_id = ? ORDER BY id`),
		caselessInteractions: r(`SELECT ` + interactionCols + ` FROM interactions WHERE case_id IS NULL ORDER BY id`),
		attachmentsOf:        r(`SELECT position, filename, content_type, content_id, inline, size, data FROM attachments WHERE interaction_id = ? ORDER BY position`),

		insertRaw:      r(d.insertIgnore("raw_mail", "key_hash", "key_hash", "idem_key", "interaction_id", "encoding", "size", "data", "created_at")),
		getRaw:         r(`SELECT encoding, size, data FROM raw_mail WHERE key_hash = ?`),
		rawSeq:         r(`SELECT seq FROM raw_mail WHERE key_hash = ?`),
		rawKeysAfter:   r(`SELECT idem_key FROM raw_mail WHERE seq > ? ORDER BY seq LIMIT ?`),
		rawInteraction: r(`SELECT interaction_id FROM raw_mail WHERE key_hash = ?`),
		emailByID:      r(`SELECT ` + interactionCols + ` FROM interactions WHERE id = ? AND kind = 'email'`),
		// Mails filed without a raw mail: idem_key is not indexed (a BLOB
		// on MySQL), so this scans; only GetEmail of such mails uses it.
		emailByKey:        r(`SELECT ` + interactionCols + ` FROM interactions WHERE idem_key = ? AND kind = 'email' ORDER BY id LIMIT 1`),
		updateParsed:      r(`UPDATE interactions SET subject = ?, body_text = ?, reply_text = ?, body_html = ?, problems = ? WHERE id = ?`),
		deleteAttachments: r(`DELETE FROM attachments WHERE interaction_id = ?`),

		insertQuarantine:  r(`INSERT INTO quarantine (mailbox, idem_key, reason, attempts, raw, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		getQuarantine:     r(`SELECT id, mailbox, idem_key, reason, attempts, raw, created_at FROM quarantine WHERE id = ?`),
		listQuarantineAll: r(`SELECT id, mailbox, idem_key, reason, attempts, raw, created_at FROM quarantine ORDER BY id`),
		listQuarantineBox: r(`SELECT id, mailbox, idem_key, reason, attempts, raw, created_at FROM quarantine WHERE mailbox = ? ORDER BY id`),
		deleteQuarantine:  r(`DELETE FROM quarantine WHERE id = ?`),
		getState:          r(`SELECT value FROM source_state WHERE key_hash = ?`),
		putState:          r(d.upsert("source_state", "key_hash", []string{"key_hash", "state_key", "value", "updated_at"}, "value", "updated_at")),

		renewLease: r(`UPDATE leases SET holder = ?, expires_at = ` + d.nowMicros() + ` + ? WHERE name_hash = ? AND (holder = ? OR expires_at < ` + d.nowMicros() + `)`),
		insertLease: r(`INSERT INTO leases (name_hash, name, holder, expires_at, acquired_at) VALUES (?, ?, ?, ` + d.nowMicros() + ` + ?, ` + d.nowMicros() + `)` +
			map[bool]string{true: ` ON DUPLICATE KEY UPDATE name_hash = name_hash`, false: ` ON CONFLICT (name_hash) DO NOTHING`}[d == MySQL]),
		releaseLease: r(`DELETE FROM leases WHERE name_hash = ? AND holder = ?`),
	}
	if d != MySQL {
		q.touchCaseRef = r(`UPDATE cases SET updated_at = ? WHERE id = ? RETURNING contact_id, account_id`)
	}
	return q
}
