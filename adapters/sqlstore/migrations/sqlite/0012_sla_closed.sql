-- emailcrm sqlstore schema v12 (SQLite): a service-level timer stopped by
-- the closing of its case (driver.SLATimer.Closed, 0 or 1) runs again when
-- the case is reopened; one stopped by its target (an agent reply) does
-- not. Timers stored before this version count as stopped by their target.
ALTER TABLE sla_timers ADD COLUMN stopped_closed INTEGER NOT NULL DEFAULT 0;
