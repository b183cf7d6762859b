-- 50_inspect.sql: what an operator needs in psql beyond 10_history and
-- 20_functions: who is connected where, time travel by timestamp, diffs,
-- step-by-step replay, forks and retention of component history.
-- Re-applied by every `sparkd migrate`: must stay idempotent (CREATE OR
-- REPLACE; a DROP ... IF EXISTS before any change of columns or signature).

-- ---------------------------------------------------------------------------
-- Views: instances and presence
-- ---------------------------------------------------------------------------

CREATE OR REPLACE VIEW spark.live_instances AS
SELECT i.id AS instance,
       i.started_at,
       i.heartbeat_at,
       now() - i.heartbeat_at AS silent_for,
       coalesce(p.connections, 0) AS connections,
       coalesce(p.rooms, 0) AS rooms,
       coalesce(p.users, 0) AS users
  FROM spark.instances i
  LEFT JOIN (SELECT pr.instance,
                    count(DISTINCT pr.conn) AS connections,
                    count(DISTINCT pr.room) AS rooms,
                    count(DISTINCT pr.user_id) AS users
               FROM spark.presence pr
              GROUP BY pr.instance) p ON p.instance = i.id;

COMMENT ON VIEW spark.live_instances IS
    'Running sparkd instances: start, last heartbeat, how long they have been silent, and the connections, '
    'rooms and distinct users they track in spark.presence. An instance silent for longer than the presence '
    'timeout is presumed dead and is removed by a survivor.';

CREATE OR REPLACE VIEW spark.room_presence AS
SELECT p.room,
       p.user_id,
       max(p.name) AS name,
       count(*) AS connections,
       array_agg(DISTINCT p.instance ORDER BY p.instance) AS instances,
       min(p.joined_at) AS joined_at,
       jsonb_agg(p.meta ORDER BY p.joined_at, p.instance, p.conn) AS metas
  FROM spark.presence p
 GROUP BY p.room, p.user_id;

COMMENT ON VIEW spark.room_presence IS
    'Who is in which room: one row per room and user, with the number of connections (tabs), the instances '
    'serving them, the first join and the tracked metas. Query with WHERE room = ... ORDER BY user_id.';

-- ---------------------------------------------------------------------------
-- Time travel by timestamp
-- ---------------------------------------------------------------------------

-- The version a component had at a given time: the last version committed
-- by a transaction that started at or before it.
CREATE OR REPLACE FUNCTION spark.version_at(component_id text, at timestamptz)
RETURNS bigint
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT max(e.version)
      FROM spark.events e
     WHERE e.component_id = version_at.component_id
       AND e.at <= version_at.at;
$$;

COMMENT ON FUNCTION spark.version_at(text, timestamptz) IS
    'The version of a component at a time (the last version recorded at or before it, by transaction start time); '
    'null if the component had no kept history by then.';

CREATE OR REPLACE FUNCTION spark.state_at_time(component_id text, at timestamptz)
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT spark.state_at(state_at_time.component_id,
                          spark.version_at(state_at_time.component_id, state_at_time.at));
$$;

COMMENT ON FUNCTION spark.state_at_time(text, timestamptz) IS
    'State of a component at a time: state_at(component_id, version_at(component_id, at)); null if it did not '
    'exist then, was deleted, or that part of its history was pruned.';

-- ---------------------------------------------------------------------------
-- Diffs: JSON Patch (RFC 6902) operations from one state to another
-- ---------------------------------------------------------------------------

-- One JSON Pointer (RFC 6901) reference token.
CREATE OR REPLACE FUNCTION spark._json_pointer_token(key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
STRICT
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT replace(replace(key, '~', '~0'), '/', '~1');
$$;

COMMENT ON FUNCTION spark._json_pointer_token(text) IS
    'Internal: escapes an object key as a JSON Pointer reference token (~ as ~0, / as ~1).';

CREATE OR REPLACE FUNCTION spark._jsonb_diff_at(old jsonb, new jsonb, path text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    ops    jsonb := '[]';
    k      text;
    n_old  integer;
    n_new  integer;
    head   integer := 0;
    tail   integer := 0;
    m_old  integer;
    m_new  integer;
    paired integer;
BEGIN
    IF old IS NOT DISTINCT FROM new THEN
        RETURN ops;
    ELSIF old IS NULL THEN
        RETURN jsonb_build_array(jsonb_build_object('op', 'add', 'path', path, 'value', new));
    ELSIF new IS NULL THEN
        RETURN jsonb_build_array(jsonb_build_object('op', 'remove', 'path', path));
    END IF;

    IF jsonb_typeof(old) = 'object' AND jsonb_typeof(new) = 'object' THEN
        FOR k IN SELECT o.key FROM jsonb_object_keys(old) AS o(key) ORDER BY o.key LOOP
            IF new ? k THEN
                ops := ops || spark._jsonb_diff_at(old -> k, new -> k,
                                                   path || '/' || spark._json_pointer_token(k));
            ELSE
                ops := ops || jsonb_build_object('op', 'remove',
                                                 'path', path || '/' || spark._json_pointer_token(k));
            END IF;
        END LOOP;
        FOR k IN SELECT o.key FROM jsonb_object_keys(new) AS o(key) WHERE NOT old ? o.key ORDER BY o.key LOOP
            ops := ops || jsonb_build_object('op', 'add',
                                             'path', path || '/' || spark._json_pointer_token(k),
                                             'value', new -> k);
        END LOOP;
        RETURN ops;
    END IF;

    IF jsonb_typeof(old) = 'array' AND jsonb_typeof(new) = 'array' THEN
        -- Equal elements at both ends are left alone, so that removing or
        -- inserting one item in a list is one op, not a shift of the rest.
        n_old := jsonb_array_length(old);
        n_new := jsonb_array_length(new);
        WHILE head < n_old AND head < n_new AND (old -> head) = (new -> head) LOOP
            head := head + 1;
        END LOOP;
        WHILE tail < n_old - head AND tail < n_new - head
              AND (old -> (n_old - 1 - tail)) = (new -> (n_new - 1 - tail)) LOOP
            tail := tail + 1;
        END LOOP;
        m_old := n_old - head - tail;
        m_new := n_new - head - tail;
        paired := least(m_old, m_new);
        FOR i IN 0 .. paired - 1 LOOP
            ops := ops || spark._jsonb_diff_at(old -> (head + i), new -> (head + i),
                                               path || '/' || (head + i));
        END LOOP;
        -- Removals from the highest index down, so each index is still valid.
        FOR i IN REVERSE m_old - 1 .. paired LOOP
            ops := ops || jsonb_build_object('op', 'remove', 'path', path || '/' || (head + i));
        END LOOP;
        FOR i IN paired .. m_new - 1 LOOP
            ops := ops || jsonb_build_object('op', 'add', 'path', path || '/' || (head + i),
                                             'value', new -> (head + i));
        END LOOP;
        RETURN ops;
    END IF;

    RETURN jsonb_build_array(jsonb_build_object('op', 'replace', 'path', path, 'value', new));
END;
$$;

COMMENT ON FUNCTION spark._jsonb_diff_at(jsonb, jsonb, text) IS
    'Internal: the JSON Patch operations turning old into new, with paths under path.';

CREATE OR REPLACE FUNCTION spark.jsonb_diff(old jsonb, new jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT spark._jsonb_diff_at(jsonb_diff.old, jsonb_diff.new, '');
$$;

COMMENT ON FUNCTION spark.jsonb_diff(jsonb, jsonb) IS
    'JSON Patch (RFC 6902) array of add/remove/replace operations that, applied in order, turn old into new; '
    '[] when equal. Objects are compared key by key, arrays element by element after skipping equal elements '
    'at both ends. A null old gives one add of the whole document at path ""; a null new one remove at path "".';

CREATE OR REPLACE FUNCTION spark.diff(component_id text, from_version bigint, to_version bigint)
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT spark.jsonb_diff(spark.state_at(diff.component_id, diff.from_version),
                            spark.state_at(diff.component_id, diff.to_version));
$$;

COMMENT ON FUNCTION spark.diff(text, bigint, bigint) IS
    'JSON Patch from the state after from_version to the state after to_version of a component '
    '(see spark.jsonb_diff; a missing, pruned or deleted version counts as null).';

-- ---------------------------------------------------------------------------
-- Replay: the history of a component, one step per version
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION spark.replay(component_id text,
                                        from_version bigint DEFAULT 1,
                                        to_version bigint DEFAULT NULL)
RETURNS TABLE (version bigint, event text, data jsonb, actor text, instance text,
               at timestamptz, state_before jsonb, state jsonb, diff jsonb)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT s.version, s.event, s.data, s.actor, s.instance, s.at,
           s.state_before, s.state, spark.jsonb_diff(s.state_before, s.state)
      FROM (SELECT h.version, h.event, h.data, h.actor, h.instance, h.at, h.state,
                   lag(h.state) OVER (ORDER BY h.version) AS state_before
              FROM spark.history(replay.component_id,
                                 greatest(coalesce(replay.from_version, 1) - 1, 1),
                                 replay.to_version) h) s
     WHERE s.version >= coalesce(replay.from_version, 1)
     ORDER BY s.version;
$$;

COMMENT ON FUNCTION spark.replay(text, bigint, bigint) IS
    'Steps through a component''s history from from_version to to_version (null: the latest): each version '
    'with its event, data, actor, instance and time, the state before and after it, and the JSON Patch between '
    'them (state_before is the previous kept version''s state: null for the first version, a deletion, '
    'or when earlier history was pruned).';

-- ---------------------------------------------------------------------------
-- Fork: a new component whose first state is another's at some version
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION spark.fork(component_id text,
                                      new_id text,
                                      version bigint DEFAULT NULL,
                                      actor text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_from      bigint := fork.version;
    v_state     jsonb;
    v_found     boolean;
    v_new       bigint;
    v_old_event text := current_setting('spark.event', true);
    v_old_data  text := current_setting('spark.event_data', true);
    v_old_actor text := current_setting('spark.actor', true);
BEGIN
    IF split_part(fork.new_id, ':', 1) IS DISTINCT FROM split_part(fork.component_id, ':', 1) THEN
        RAISE EXCEPTION 'a fork of % must have the same type (got %)', fork.component_id, fork.new_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Name it %s:<new key>.', split_part(fork.component_id, ':', 1));
    END IF;
    IF v_from IS NULL THEN
        SELECT true, c.version, c.state
          INTO v_found, v_from, v_state
          FROM spark.components c
         WHERE c.id = fork.component_id;
        IF v_found IS NULL THEN
            RAISE EXCEPTION 'component % does not exist', fork.component_id
                USING ERRCODE = 'no_data_found',
                      HINT = 'Name a version of its history to fork a deleted component.';
        END IF;
    ELSE
        SELECT true, spark.state_at(e.component_id, e.version)
          INTO v_found, v_state
          FROM spark.events e
         WHERE e.component_id = fork.component_id
           AND e.version = v_from;
        IF v_found IS NULL THEN
            RAISE EXCEPTION 'component % has no version %', fork.component_id, v_from
                USING ERRCODE = 'no_data_found';
        END IF;
        IF v_state IS NULL THEN
            RAISE EXCEPTION 'version % of component % is its deletion; there is no state to fork',
                            v_from, fork.component_id
                USING ERRCODE = 'no_data_found';
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM spark.components c WHERE c.id = fork.new_id) THEN
        RAISE EXCEPTION 'component % already exists', fork.new_id
            USING ERRCODE = 'unique_violation',
                  HINT = 'Fork into a new id, or use spark.set_state to overwrite.';
    END IF;

    PERFORM set_config('spark.event', 'fork', true);
    PERFORM set_config('spark.event_data',
                       jsonb_build_object('from', fork.component_id, 'version', v_from)::text, true);
    IF fork.actor IS NOT NULL THEN
        PERFORM set_config('spark.actor', fork.actor, true);
    END IF;

    INSERT INTO spark.components AS c (id, state)
    VALUES (fork.new_id, v_state)
    RETURNING c.version INTO v_new;

    PERFORM set_config('spark.event', coalesce(v_old_event, ''), true);
    PERFORM set_config('spark.event_data', coalesce(v_old_data, ''), true);
    PERFORM set_config('spark.actor', coalesce(v_old_actor, ''), true);
    RETURN v_new;
END;
$$;

COMMENT ON FUNCTION spark.fork(text, text, bigint, text) IS
    'Creates component new_id (same type) with the state component_id had after version (null: its current '
    'state), recorded as event fork with data {"from": id, "version": N}; returns the new component''s version. '
    'Refuses an existing new_id. Notified live like any write.';

-- ---------------------------------------------------------------------------
-- Retention of component history
-- ---------------------------------------------------------------------------

-- Keeps at most keep_count history rows per component (0: no bound) and none
-- older than keep_age (null: no bound), but always the newest row of every
-- component: it holds the current state (or the deletion, so that a
-- recreated component continues its versions). A kept patch row whose
-- previous version is pruned is turned into a snapshot (its full state)
-- first, so state_at, revert and fork keep working for every kept version.
CREATE OR REPLACE FUNCTION spark.prune_history(keep_count integer,
                                               keep_age interval DEFAULT NULL,
                                               component_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_old    text := current_setting('spark.allow_prune', true);
    v_n      bigint;
    v_doomed bigint[];
BEGIN
    IF keep_count IS NULL OR keep_count < 0 THEN
        RAISE EXCEPTION 'keep_count must be 0 (no bound) or more, got %', keep_count
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(array_agg(r.seq), '{}') INTO v_doomed
      FROM (SELECT e.seq, e.at,
                   row_number() OVER (PARTITION BY e.component_id ORDER BY e.version DESC) AS rn
              FROM spark.events e
             WHERE prune_history.component_id IS NULL
                OR e.component_id = prune_history.component_id) r
     WHERE r.rn > 1
       AND ((keep_count > 0 AND r.rn > keep_count)
            OR (keep_age IS NOT NULL AND r.at < now() - keep_age));
    PERFORM set_config('spark.allow_prune', 'on', true);
    -- A kept patch row whose previous version goes becomes a snapshot first,
    -- so that every kept version can still be rebuilt.
    UPDATE spark.events e
       SET state = spark.state_at(e.component_id, e.version), patch = NULL
      FROM spark.events p
     WHERE p.seq = ANY (v_doomed)
       AND e.component_id = p.component_id
       AND e.version = p.version + 1
       AND e.patch IS NOT NULL
       AND e.state IS NULL
       AND NOT e.seq = ANY (v_doomed);
    DELETE FROM spark.events e WHERE e.seq = ANY (v_doomed);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    PERFORM set_config('spark.allow_prune', coalesce(v_old, ''), true);
    RETURN v_n;
END;
$$;

COMMENT ON FUNCTION spark.prune_history(integer, interval, text) IS
    'Retention: deletes component history beyond the newest keep_count rows per component (0: keep all) or '
    'older than keep_age, for every component or only component_id, always keeping each component''s newest '
    'row; returns the number deleted. spark.allow_prune is on only during the delete.';
