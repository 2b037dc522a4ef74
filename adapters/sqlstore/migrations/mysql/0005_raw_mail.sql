-- emailcrm sqlstore schema v4 (MySQL, MariaDB): the original raw mail of
-- every filed mail, kept once under its idempotency key so that it can be
-- parsed again after a parser fix, and the parse problems of each filed
-- mail. encoding is '' (data is the raw mail) or 'deflate' (data is the raw
-- mail compressed with DEFLATE, RFC 1951); size is the raw mail's length.
-- interaction_id is the filed interaction (no foreign key: the raw mail is
-- kept even if the record is deleted). seq orders the keys as kept.
CREATE TABLE raw_mail (
  seq BIGINT AUTO_INCREMENT PRIMARY KEY,
  key_hash CHAR(64) NOT NULL,
  idem_key LONGBLOB NOT NULL,
  interaction_id BIGINT,
  encoding VARCHAR(16) NOT NULL DEFAULT '',
  size BIGINT NOT NULL,
  data LONGBLOB NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE KEY raw_mail_by_key (key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
ALTER TABLE interactions ADD COLUMN problems MEDIUMTEXT NULL;
