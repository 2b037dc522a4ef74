-- emailcrm sqlstore schema v9 (MySQL, MariaDB): worklists (driver.Queues
-- and driver.Worklist). The group queues are the queues table of v1; a
-- work item is a case (its queue, owner and status columns).
-- queue_members lists who may accept a queue's items (agent_hash is the
-- SHA-256 of the normalised address); worklist_marks keeps, per case, the
-- last interaction ID when its owner marked the open mail handled.
CREATE TABLE queue_members (
  queue_name VARCHAR(255) NOT NULL,
  agent_hash CHAR(64) NOT NULL,
  agent MEDIUMTEXT NOT NULL,
  PRIMARY KEY (queue_name, agent_hash),
  FOREIGN KEY (queue_name) REFERENCES queues(name) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE worklist_marks (
  case_id BIGINT PRIMARY KEY,
  handled_through BIGINT NOT NULL,
  FOREIGN KEY (case_id) REFERENCES cases(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
