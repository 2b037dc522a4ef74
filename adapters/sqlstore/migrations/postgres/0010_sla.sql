-- emailcrm sqlstore schema v10 (PostgreSQL): the service-level timers of cases
-- (driver.SLAStore), one row per case, level and kind. Durations (warn,
-- due, elapsed) are microseconds; times (started_at, running_since,
-- warn_at, due_at) are Unix microseconds, 0 for none. Flags are 0 or 1.
-- A claim is a conditional UPDATE of warned or breached, so concurrent
-- alert workers never claim one alert twice.
CREATE TABLE sla_timers (
  case_id BIGINT NOT NULL,
  level TEXT NOT NULL,
  kind TEXT NOT NULL,
  scope TEXT NOT NULL,
  policy TEXT NOT NULL,
  calendar TEXT NOT NULL,
  warn BIGINT NOT NULL,
  due BIGINT NOT NULL,
  elapsed BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  running_since BIGINT NOT NULL,
  paused SMALLINT NOT NULL,
  stopped SMALLINT NOT NULL,
  overridden SMALLINT NOT NULL,
  warn_at BIGINT NOT NULL,
  due_at BIGINT NOT NULL,
  warned SMALLINT NOT NULL,
  breached SMALLINT NOT NULL,
  PRIMARY KEY (case_id, level, kind)
);
CREATE INDEX sla_warn_due ON sla_timers(warned, warn_at);
CREATE INDEX sla_breach_due ON sla_timers(breached, due_at);
