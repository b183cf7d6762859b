-- 10_history.sql: read-only views over the history tables.
-- Re-applied by every `sparkd migrate`: must stay idempotent
-- (CREATE OR REPLACE VIEW may only append columns; to change or drop a
-- column, add a DROP VIEW IF EXISTS before it).

-- The state of a component after a given version (null if that version does
-- not exist, or is the delete of the component). A history row holds either
-- the full state (a snapshot) or a patch from the previous version (0004):
-- start from the nearest snapshot at or before the version and apply the
-- patches after it in order. (A delete is always followed by a snapshot, and
-- retention keeps the oldest kept row of each component a snapshot.)
CREATE OR REPLACE FUNCTION spark.state_at(component_id text, version bigint)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_state jsonb;
    v_patch jsonb;
    v_snap  bigint;
BEGIN
    SELECT e.state, e.patch INTO v_state, v_patch
      FROM spark.events e
     WHERE e.component_id = state_at.component_id
       AND e.version = state_at.version;
    IF v_state IS NOT NULL OR v_patch IS NULL THEN
        RETURN v_state;
    END IF;
    SELECT e.version, e.state INTO v_snap, v_state
      FROM spark.events e
     WHERE e.component_id = state_at.component_id
       AND e.version < state_at.version
       AND e.state IS NOT NULL
     ORDER BY e.version DESC
     LIMIT 1;
    IF v_snap IS NULL THEN
        RETURN NULL;
    END IF;
    FOR v_patch IN
        SELECT e.patch
          FROM spark.events e
         WHERE e.component_id = state_at.component_id
           AND e.version > v_snap
           AND e.version <= state_at.version
         ORDER BY e.version
    LOOP
        v_state := spark._state_apply(v_state, v_patch);
    END LOOP;
    RETURN v_state;
END;
$$;

COMMENT ON FUNCTION spark.state_at(text, bigint) IS
    'State of a component after the given version, rebuilt from spark.events (the nearest snapshot at or before it '
    'and the patches after that); null if there is no such version or it is a delete.';

-- The states of a component's versions from_version..to_version (null: no
-- bound), in order, in one walk from the nearest snapshot at or before
-- from_version: what spark.history and spark.replay read.
CREATE OR REPLACE FUNCTION spark._states(component_id text, from_version bigint,
                                         to_version bigint)
RETURNS TABLE (version bigint, state jsonb)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_start bigint;
    v_cur   jsonb;
    r       record;
BEGIN
    SELECT max(e.version) INTO v_start
      FROM spark.events e
     WHERE e.component_id = _states.component_id
       AND e.version <= coalesce(_states.from_version, 1)
       AND (e.state IS NOT NULL OR e.patch IS NULL);
    FOR r IN
        SELECT e.version, e.state, e.patch
          FROM spark.events e
         WHERE e.component_id = _states.component_id
           AND e.version >= coalesce(v_start, 0)
           AND (_states.to_version IS NULL OR e.version <= _states.to_version)
         ORDER BY e.version
    LOOP
        IF r.patch IS NOT NULL AND r.state IS NULL THEN
            v_cur := CASE WHEN v_cur IS NULL THEN spark.state_at(_states.component_id, r.version)
                          ELSE spark._state_apply(v_cur, r.patch) END;
        ELSE
            v_cur := r.state;
        END IF;
        IF r.version >= coalesce(_states.from_version, 1) THEN
            version := r.version;
            state := v_cur;
            RETURN NEXT;
        END IF;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION spark._states(text, bigint, bigint) IS
    'Internal: the state after each version from_version..to_version of a component, rebuilt in one walk.';

CREATE OR REPLACE VIEW spark.component_history AS
SELECT e.component_id,
       e.version,
       e.event,
       e.data,
       e.actor,
       e.instance,
       CASE WHEN e.state IS NULL AND e.patch IS NOT NULL
            THEN spark.state_at(e.component_id, e.version) ELSE e.state END AS state,
       e.at,
       e.seq
  FROM spark.events e;

COMMENT ON VIEW spark.component_history IS
    'History of every component: one row per version (state = state after it, rebuilt from snapshots and patches, '
    'null for a delete; seq = the '
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
