-- emailcrm sqlstore schema v13 (PostgreSQL): the lease of an alert claim not yet
-- confirmed (driver.SLATimer.WarnLease and BreachLease), in Unix
-- microseconds; 0 means the claim is permanent (confirmed, or claimed
-- without a lease) or there is none. A claim whose lease ran out is
-- claimable again. Claims stored before this version are permanent.
ALTER TABLE sla_timers ADD COLUMN warn_lease BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sla_timers ADD COLUMN breach_lease BIGINT NOT NULL DEFAULT 0;
-- Claims look for expired leases by range (warn_lease > 0 AND warn_lease <= now).
CREATE INDEX sla_warn_lease ON sla_timers(warn_lease);
CREATE INDEX sla_breach_lease ON sla_timers(breach_lease);
