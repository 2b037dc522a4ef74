-- emailcrm sqlstore schema v7: the references of filed mails (their
-- In-Reply-To and References, as driver.IndexedReferences bounds them),
-- indexed by hash so that two replies to a mail the mailbox never received
-- meet on one case (driver.ReferenceFinder). Mails filed before this version
-- are not indexed. A row's case is its interaction's.
CREATE TABLE interaction_refs (
  ref_hash TEXT NOT NULL,
  interaction_id INTEGER NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
  PRIMARY KEY (ref_hash, interaction_id)
);
