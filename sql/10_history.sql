-- 10_history.sql: read-only views over the history tables.
-- Re-applied by every `sparkd migrate`: must stay idempotent
-- (CREATE OR REPLACE VIEW may only append columns; to change or drop a
-- column, add a DROP VIEW IF EXISTS before it).

CREATE OR REPLACE VIEW spark.component_history AS
SELECT e.component_id,
       e.version,
       e.event,
       e.data,
       e.actor,
       e.instance,
       e.state,
       e.at,
       e.seq
  FROM spark.events e;

COMMENT ON VIEW spark.component_history IS
    'History of every component: one row per version (state = state after it, null for a delete; seq = the '
    'global order of changes across components). Query with WHERE component_id = ... ORDER BY version.';

CREATE OR REPLACE VIEW spark.room_history AS
SELECT m.room,
       m.seq,
       m.kind,
       m.payload,
       m.actor,
       m.at
  FROM spark.messages m;

COMMENT ON VIEW spark.room_history IS
    'Messages of every room. Query with WHERE room = ... ORDER BY seq.';
