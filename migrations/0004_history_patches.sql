-- 0004_history_patches.sql: history storage grows with the size of the
-- changes, not of the state. A spark.events row holds either the full state
-- after its version (a snapshot: the first version, the first after a
-- delete, every spark.snapshot_every-th version (default 32), a state of
-- at most 256 bytes, and whenever the patch would not be smaller) or a
-- patch from the previous version's state (state null, patch set). A
-- delete has neither. spark.state_at rebuilds any version from the nearest
-- snapshot at or before it. Rows written before this migration are
-- snapshots.
--
-- The patch format is exact (unlike an RFC 7396 merge patch it can set a key
-- to JSON null, and it keeps numbers as written):
--   object -> object: {"s": {key: new value}, "d": [removed key],
--                      "p": {key: patch of that key's value}}
--     (each part only when non-empty; "p" only for a key whose old and new
--      values are both objects or both arrays)
--   array -> array:   {"a": [head, tail, [middle]]}: the first head and the
--     last tail elements of the old array are kept, [middle] goes between.
--
-- Forward-only, like every migration: never edit once released.

ALTER TABLE spark.events ADD COLUMN patch jsonb;

COMMENT ON COLUMN spark.events.state IS
    'The state after the change when this row is a snapshot; null for a patch row (see patch) and for a delete. '
    'Read states with spark.state_at or the view spark.component_history.';
COMMENT ON COLUMN spark.events.patch IS
    '(0004) For a patch row: the change from the previous version''s state (format in migrations/0004); '
    'null for a snapshot or a delete.';

-- The patch turning old into new (both objects or both arrays).
CREATE FUNCTION spark._state_patch(old jsonb, new jsonb) RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    n_old integer;
    n_new integer;
    head  integer := 0;
    tail  integer := 0;
    v_s   jsonb;
    v_d   jsonb;
    v_p   jsonb;
    v_out jsonb := '{}';
BEGIN
    IF jsonb_typeof(old) = 'array' AND jsonb_typeof(new) = 'array' THEN
        n_old := jsonb_array_length(old);
        n_new := jsonb_array_length(new);
        WHILE head < n_old AND head < n_new AND (old -> head)::text = (new -> head)::text LOOP
            head := head + 1;
        END LOOP;
        WHILE tail < n_old - head AND tail < n_new - head
              AND (old -> (n_old - 1 - tail))::text = (new -> (n_new - 1 - tail))::text LOOP
            tail := tail + 1;
        END LOOP;
        RETURN jsonb_build_object('a', jsonb_build_array(head, tail,
            coalesce((SELECT jsonb_agg(x.v ORDER BY x.o)
                        FROM jsonb_array_elements(new) WITH ORDINALITY AS x(v, o)
                       WHERE x.o > head AND x.o <= n_new - tail), '[]')));
    END IF;

    -- Objects. Values compare as text: exact, so 1 -> 1.0 is a change.
    SELECT jsonb_object_agg(n.key, n.value)
               FILTER (WHERE NOT old ? n.key
                          OR ((old -> n.key)::text <> n.value::text
                              AND NOT (jsonb_typeof(old -> n.key) = jsonb_typeof(n.value)
                                       AND jsonb_typeof(n.value) IN ('object', 'array')))),
           jsonb_object_agg(n.key,
                            CASE WHEN old ? n.key
                                  AND (old -> n.key)::text <> n.value::text
                                  AND jsonb_typeof(old -> n.key) = jsonb_typeof(n.value)
                                  AND jsonb_typeof(n.value) IN ('object', 'array')
                                 THEN spark._state_patch(old -> n.key, n.value) END)
               FILTER (WHERE old ? n.key
                         AND (old -> n.key)::text <> n.value::text
                         AND jsonb_typeof(old -> n.key) = jsonb_typeof(n.value)
                         AND jsonb_typeof(n.value) IN ('object', 'array'))
      INTO v_s, v_p
      FROM jsonb_each(new) AS n(key, value);
    SELECT jsonb_agg(o.key ORDER BY o.key) INTO v_d
      FROM jsonb_object_keys(old) AS o(key)
     WHERE NOT new ? o.key;
    IF v_s IS NOT NULL THEN v_out := v_out || jsonb_build_object('s', v_s); END IF;
    IF v_d IS NOT NULL THEN v_out := v_out || jsonb_build_object('d', v_d); END IF;
    IF v_p IS NOT NULL THEN v_out := v_out || jsonb_build_object('p', v_p); END IF;
    RETURN v_out;
END;
$$;

COMMENT ON FUNCTION spark._state_patch(jsonb, jsonb) IS
    'Internal: the exact history patch turning old into new (both objects or both arrays); format in migrations/0004.';

-- Applies a patch made by spark._state_patch.
CREATE FUNCTION spark._state_apply(doc jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    head integer;
    tail integer;
    mid  jsonb;
    n    integer;
    k    text;
    sub  jsonb;
BEGIN
    IF patch ? 'a' THEN
        head := (patch -> 'a' ->> 0)::integer;
        tail := (patch -> 'a' ->> 1)::integer;
        mid := patch -> 'a' -> 2;
        n := jsonb_array_length(doc);
        RETURN (CASE WHEN head = 0 THEN '[]'::jsonb
                     WHEN head >= n THEN doc
                     ELSE jsonb_path_query_array(doc, format('$[0 to %s]', head - 1)::jsonpath) END)
               || mid
               || (CASE WHEN tail = 0 THEN '[]'::jsonb
                        WHEN tail >= n THEN doc
                        ELSE jsonb_path_query_array(doc, format('$[%s to last]', n - tail)::jsonpath) END);
    END IF;
    IF patch ? 'd' THEN
        doc := doc - ARRAY(SELECT jsonb_array_elements_text(patch -> 'd'));
    END IF;
    IF patch ? 's' THEN
        doc := doc || (patch -> 's');
    END IF;
    IF patch ? 'p' THEN
        FOR k, sub IN SELECT e.key, e.value FROM jsonb_each(patch -> 'p') AS e(key, value) LOOP
            doc := jsonb_set(doc, ARRAY[k], spark._state_apply(doc -> k, sub));
        END LOOP;
    END IF;
    RETURN doc;
END;
$$;

COMMENT ON FUNCTION spark._state_apply(jsonb, jsonb) IS
    'Internal: applies a history patch of spark._state_patch to doc.';

-- AFTER INSERT/UPDATE/DELETE on components: append history (a snapshot or a
-- patch), notify.
CREATE OR REPLACE FUNCTION spark.components_after_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_id       text;
    v_version  bigint;
    v_state    jsonb;
    v_patch    jsonb;
    v_every    integer := coalesce(nullif(current_setting('spark.snapshot_every', true), '')::integer, 32);
    v_event    text := nullif(current_setting('spark.event', true), '');
    v_data     jsonb := nullif(current_setting('spark.event_data', true), '')::jsonb;
    v_actor    text := coalesce(nullif(current_setting('spark.actor', true), ''), session_user::text);
    v_instance text := nullif(current_setting('spark.instance', true), '');
BEGIN
    IF TG_OP = 'DELETE' THEN
        v_id := OLD.id;
        v_version := OLD.version + 1;
        v_state := NULL;
    ELSE
        v_id := NEW.id;
        v_version := NEW.version;
        v_state := NEW.state;
        -- A small state (up to 256 bytes) is stored whole: a patch would
        -- save next to nothing.
        IF TG_OP = 'UPDATE' AND v_every > 1 AND v_version % v_every <> 0
           AND pg_column_size(NEW.state) > 256 THEN
            v_patch := spark._state_patch(OLD.state, NEW.state);
            IF pg_column_size(v_patch) < pg_column_size(NEW.state) THEN
                v_state := NULL;
            ELSE
                v_patch := NULL;
            END IF;
        END IF;
    END IF;

    INSERT INTO spark.events (component_id, version, event, data, actor, instance, state, patch)
    VALUES (v_id, v_version,
            coalesce(v_event, 'sql.' || lower(TG_OP)),
            v_data, v_actor, v_instance, v_state, v_patch);

    PERFORM pg_notify('spark', 'c|' || v_version || '|' || v_id);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION spark.components_after_change() IS
    'AFTER INSERT/UPDATE/DELETE on spark.components: appends a spark.events row (from the settings spark.event, spark.event_data, '
    'spark.actor, spark.instance), holding the full state (insert, every spark.snapshot_every-th version, default 32) '
    'or a patch from the previous state, and sends NOTIFY spark ''c|<version>|<id>''.';
