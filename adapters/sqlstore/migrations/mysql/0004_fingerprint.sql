-- emailcrm sqlstore schema v4: every idempotency key keeps the content
-- fingerprint of the mail filed under it (mailcase.ContentFingerprint), so
-- a different mail reusing a Message-ID is told from a redelivery. Keys
-- filed before this version have none (NULL); the pipeline treats them as
-- matching, that is as before.
ALTER TABLE processed ADD COLUMN fingerprint VARCHAR(80) NULL;
