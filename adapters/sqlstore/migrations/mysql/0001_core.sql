-- emailcrm sqlstore schema v1 (MySQL, MariaDB): directory, cases, interactions,
-- idempotency keys, quarantine, outbox, source state.
-- Times are Unix nanoseconds (UTC); *_hash columns are hex SHA-256 of the
-- exact value, so lookups of hostile strings of any length stay indexed.
CREATE TABLE accounts (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  name MEDIUMTEXT NOT NULL,
  support_level MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE account_domains (
  account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  position BIGINT NOT NULL,
  domain MEDIUMTEXT NOT NULL,
  domain_hash CHAR(64) NOT NULL,
  PRIMARY KEY (account_id, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX account_domains_by_hash ON account_domains(domain_hash);
CREATE TABLE contacts (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  name MEDIUMTEXT NOT NULL,
  email MEDIUMTEXT NOT NULL,
  email_hash CHAR(64) NOT NULL,
  account_id MEDIUMTEXT NOT NULL,
  placeholder BIGINT NOT NULL DEFAULT 0,
  internal BIGINT NOT NULL DEFAULT 0,
  support_level MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX contacts_by_email ON contacts(email_hash);
CREATE TABLE employees (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  name MEDIUMTEXT NOT NULL,
  email MEDIUMTEXT NOT NULL,
  email_hash CHAR(64) NOT NULL UNIQUE,
  active BIGINT NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE queues (
  name VARCHAR(255) PRIMARY KEY,
  owner MEDIUMTEXT NOT NULL,
  address MEDIUMTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE cases (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  subject MEDIUMTEXT NOT NULL,
  status MEDIUMTEXT NOT NULL,
  priority MEDIUMTEXT NOT NULL,
  queue MEDIUMTEXT NOT NULL,
  owner MEDIUMTEXT NOT NULL,
  origin MEDIUMTEXT NOT NULL,
  category MEDIUMTEXT NOT NULL,
  contact_id MEDIUMTEXT NOT NULL,
  account_id MEDIUMTEXT NOT NULL,
  parent_id MEDIUMTEXT NOT NULL,
  linked_id MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  closed_at BIGINT NOT NULL DEFAULT 0
) AUTO_INCREMENT=1000 ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- The human case number is the case ID; the sequence starts at 1000.
CREATE INDEX cases_by_status ON cases(status(64));
CREATE INDEX cases_by_queue ON cases(queue(191));
CREATE TABLE case_participants (
  case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  address_hash CHAR(64) NOT NULL,
  address MEDIUMTEXT NOT NULL,
  PRIMARY KEY (case_id, address_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE interactions (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  kind MEDIUMTEXT NOT NULL,
  case_id BIGINT REFERENCES cases(id) ON DELETE CASCADE,
  contact_id MEDIUMTEXT NOT NULL,
  account_id MEDIUMTEXT NOT NULL,
  idem_key LONGBLOB,
  mailbox MEDIUMTEXT NOT NULL,
  direction MEDIUMTEXT NOT NULL,
  message_id MEDIUMTEXT NOT NULL,
  message_id_hash CHAR(64),
  in_reply_to MEDIUMTEXT NOT NULL,
  refs MEDIUMTEXT NOT NULL,
  from_name MEDIUMTEXT NOT NULL,
  from_email MEDIUMTEXT NOT NULL,
  to_addrs MEDIUMTEXT NOT NULL,
  cc_addrs MEDIUMTEXT NOT NULL,
  subject MEDIUMTEXT NOT NULL,
  sent_at MEDIUMTEXT NOT NULL,
  body_text MEDIUMTEXT NOT NULL,
  reply_text MEDIUMTEXT,
  body_html MEDIUMTEXT NOT NULL,
  auto BIGINT NOT NULL DEFAULT 0,
  summary BIGINT NOT NULL DEFAULT 0,
  note_author MEDIUMTEXT NOT NULL,
  note_body MEDIUMTEXT NOT NULL,
  note_public BIGINT NOT NULL DEFAULT 0,
  note_at BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX interactions_by_case ON interactions(case_id, id);
CREATE INDEX interactions_by_message_id ON interactions(message_id_hash);
CREATE TABLE attachments (
  interaction_id BIGINT NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
  position BIGINT NOT NULL,
  filename MEDIUMTEXT NOT NULL,
  content_type MEDIUMTEXT NOT NULL,
  content_id MEDIUMTEXT NOT NULL,
  inline BIGINT NOT NULL DEFAULT 0,
  size BIGINT NOT NULL DEFAULT 0,
  data LONGBLOB,
  PRIMARY KEY (interaction_id, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE processed (
  key_hash CHAR(64) PRIMARY KEY,
  idem_key LONGBLOB NOT NULL,
  case_id BIGINT,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE quarantine (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  mailbox MEDIUMTEXT NOT NULL,
  idem_key LONGBLOB,
  reason MEDIUMTEXT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  raw LONGBLOB,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE outbox (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  key_hash CHAR(64) UNIQUE,
  case_id BIGINT,
  mail_from MEDIUMTEXT NOT NULL,
  rcpt_to MEDIUMTEXT NOT NULL,
  raw LONGBLOB NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending',
  attempts BIGINT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL DEFAULT 0,
  last_error MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL,
  sent_at BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX outbox_by_due ON outbox(status, next_attempt_at);
CREATE TABLE source_state (
  key_hash CHAR(64) PRIMARY KEY,
  state_key LONGBLOB NOT NULL,
  value LONGBLOB NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
