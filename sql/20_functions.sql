-- 20_functions.sql: functions to inspect, write and replay spark state.
-- Re-applied by every `sparkd migrate`: must stay idempotent. CREATE OR
-- REPLACE cannot change a function's argument names or result type: to do
-- that, add a DROP FUNCTION IF EXISTS for the old signature before it.

-- spark.state_at is in 10_history.sql (the view spark.component_history uses it).

-- History of a component, oldest first, between two versions (inclusive).
CREATE OR REPLACE FUNCTION spark.history(component_id text,
                                         from_version bigint DEFAULT 1,
                                         to_version bigint DEFAULT NULL)
RETURNS SETOF spark.events
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT e.seq, e.component_id, e.version, e.event, e.data, e.actor, e.instance,
           s.state, e.at, e.patch
      FROM spark.events e
      JOIN spark._states(history.component_id, history.from_version, history.to_version) s
        ON s.version = e.version
     WHERE e.component_id = history.component_id
       AND e.version >= coalesce(history.from_version, 1)
       AND (history.to_version IS NULL OR e.version <= history.to_version)
     ORDER BY e.version;
$$;

COMMENT ON FUNCTION spark.history(text, bigint, bigint) IS
    'History rows (spark.events) of a component with from_version <= version <= to_version (null: no upper bound), ordered by version; '
    'state is the full state after each version (rebuilt for patch rows), null for a delete.';

-- Post a message to a room; returns its seq. The insert notifies 'm|<seq>|<room>'.
CREATE OR REPLACE FUNCTION spark.broadcast(room text,
                                           payload jsonb,
                                           kind text DEFAULT 'message',
                                           actor text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_seq bigint;
BEGIN
    INSERT INTO spark.messages AS m (room, kind, payload, actor)
    VALUES (broadcast.room,
            coalesce(broadcast.kind, 'message'),
            broadcast.payload,
            coalesce(broadcast.actor,
                     nullif(current_setting('spark.actor', true), ''),
                     session_user::text))
    RETURNING m.seq INTO v_seq;
    RETURN v_seq;
END;
$$;

COMMENT ON FUNCTION spark.broadcast(text, jsonb, text, text) IS
    'Posts a message to a room (insert into spark.messages, notified live); returns its seq. '
    'actor defaults to the setting spark.actor, else the session user.';

-- Internal: upsert a component's state, recording the given event, data and
-- actor in its history row. The settings are restored afterwards, so that
-- later statements of the caller's transaction are not mislabelled.
CREATE OR REPLACE FUNCTION spark._write_state(p_id text, p_state jsonb, p_event text,
                                              p_data jsonb, p_actor text)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_old_event text := current_setting('spark.event', true);
    v_old_data  text := current_setting('spark.event_data', true);
    v_old_actor text := current_setting('spark.actor', true);
    v_version   bigint;
BEGIN
    PERFORM set_config('spark.event', p_event, true);
    PERFORM set_config('spark.event_data', coalesce(p_data::text, ''), true);
    IF p_actor IS NOT NULL THEN
        PERFORM set_config('spark.actor', p_actor, true);
    END IF;

    INSERT INTO spark.components AS c (id, state)
    VALUES (p_id, p_state)
    ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state
    RETURNING c.version INTO v_version;

    PERFORM set_config('spark.event', coalesce(v_old_event, ''), true);
    PERFORM set_config('spark.event_data', coalesce(v_old_data, ''), true);
    PERFORM set_config('spark.actor', coalesce(v_old_actor, ''), true);
    RETURN v_version;
END;
$$;

COMMENT ON FUNCTION spark._write_state(text, jsonb, text, jsonb, text) IS
    'Internal helper of spark.set_state and spark.revert.';

-- Set (upsert) a component's state; returns its version afterwards. Writing
-- the state it already has changes nothing and returns the current version.
-- (The first form had no data argument.)
DROP FUNCTION IF EXISTS spark.set_state(text, jsonb, text, text);
CREATE OR REPLACE FUNCTION spark.set_state(component_id text,
                                           state jsonb,
                                           event text DEFAULT 'sql.set_state',
                                           actor text DEFAULT NULL,
                                           data jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    RETURN spark._write_state(set_state.component_id,
                              set_state.state,
                              coalesce(nullif(set_state.event, ''), 'sql.set_state'),
                              set_state.data,
                              set_state.actor);
END;
$$;

COMMENT ON FUNCTION spark.set_state(text, jsonb, text, text, jsonb) IS
    'Upserts a component''s state (history event name = event, data = data, actor = actor or the setting '
    'spark.actor or the session user); returns the version after the write. Notified live like any write.';

-- Revert a component to the state it had after an earlier version, as a new
-- version (event 'revert', data {"to_version": N}); returns that version.
-- Recreates the component if it was deleted.
CREATE OR REPLACE FUNCTION spark.revert(component_id text,
                                        to_version bigint,
                                        actor text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_found boolean;
    v_state jsonb;
BEGIN
    SELECT true, spark.state_at(e.component_id, e.version)
      INTO v_found, v_state
      FROM spark.events e
     WHERE e.component_id = revert.component_id
       AND e.version = revert.to_version;

    IF v_found IS NULL THEN
        RAISE EXCEPTION 'component % has no version %', revert.component_id, revert.to_version
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v_state IS NULL THEN
        RAISE EXCEPTION 'version % of component % is its deletion; there is no state to revert to',
                        revert.to_version, revert.component_id
            USING ERRCODE = 'no_data_found';
    END IF;

    RETURN spark._write_state(revert.component_id,
                              v_state,
                              'revert',
                              jsonb_build_object('to_version', revert.to_version),
                              revert.actor);
END;
$$;

COMMENT ON FUNCTION spark.revert(text, bigint, text) IS
    'Writes the state a component had after to_version as a new version (event revert, data {"to_version": N}), '
    'recreating it if deleted; returns the new version (the current one if the state is already equal). Notified live.';
