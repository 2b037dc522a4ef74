-- emailcrm sqlstore schema v9 (SQLite): worklists (driver.Queues and
-- driver.Worklist). The group queues are the queues table of v1; a work
-- item is a case (its queue, owner and status columns). queue_members
-- lists who may accept a queue's items (agent_hash is the SHA-256 of the
-- normalised address); worklist_marks keeps, per case, the last
-- interaction ID when its owner marked the open mail handled.
CREATE TABLE queue_members (
  queue_name TEXT NOT NULL REFERENCES queues(name) ON DELETE CASCADE,
  agent_hash TEXT NOT NULL,
  agent TEXT NOT NULL,
  PRIMARY KEY (queue_name, agent_hash)
) WITHOUT ROWID;
CREATE TABLE worklist_marks (
  case_id INTEGER PRIMARY KEY REFERENCES cases(id) ON DELETE CASCADE,
  handled_through INTEGER NOT NULL
);
