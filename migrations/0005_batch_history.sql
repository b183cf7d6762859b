-- 0005_batch_history.sql: the events a batch holds for one component are
-- written as one UPDATE of its row and one INSERT of their history rows,
-- instead of an UPDATE (and its two triggers) per event: at thousands of
-- events a second, PostgreSQL's time per event was the writers' limit.
--
-- spark.apply_events (sql/40_components.sql) appends the history rows of
-- the batch's versions itself (the same rows the triggers would write:
-- event, data, actor, instance, snapshot or patch), then moves the row's
-- version past all of them in one UPDATE. The BEFORE UPDATE trigger keeps
-- such a move only when every version it skips already has its history
-- row, so no write, from sparkd or from SQL, can leave a version without
-- one; any other change of state still moves the version by exactly one.
-- The AFTER trigger then only notifies, once, with the last version.
--
-- Forward-only, like every migration: never edit once released.

CREATE OR REPLACE FUNCTION spark.components_before_update() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'spark.components.id cannot change (% -> %)', OLD.id, NEW.id
            USING ERRCODE = 'restrict_violation',
                  HINT = 'Delete the component and insert it under the new id.';
    END IF;
    NEW.type := OLD.type;
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        -- Only a writer that asks for a jump pays for the count.
        IF NEW.version IS NULL OR NEW.version <= OLD.version + 1 THEN
            NEW.version := OLD.version + 1;
        ELSIF (SELECT count(*) FROM spark.events e
                WHERE e.component_id = OLD.id
                  AND e.version > OLD.version AND e.version <= NEW.version)
              <> NEW.version - OLD.version THEN
            NEW.version := OLD.version + 1;
        END IF;
        NEW.updated_at := now();
    ELSE
        -- A no-op write changes nothing and records nothing.
        NEW.version := OLD.version;
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION spark.components_before_update() IS
    'BEFORE UPDATE on spark.components: refuses an id change; when state changes, version + 1 (or, (0005), the '
    'version asked for when every version up to it already has its spark.events row) and updated_at = now(); '
    'else keeps both.';

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
    -- A version that moved by more than one: the writer (spark.apply_events)
    -- appended the history rows of every version in between itself, and
    -- the BEFORE trigger checked that they are there. Only the notification
    -- is left, one for the whole move.
    IF TG_OP = 'UPDATE' AND NEW.version > OLD.version + 1 THEN
        PERFORM pg_notify('spark', 'c|' || NEW.version || '|' || NEW.id);
        RETURN NULL;
    END IF;
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
    'or a patch from the previous state, and sends NOTIFY spark ''c|<version>|<id>''. '
    '(0005) An update that moves the version by more than one finds its history rows written by its writer, '
    'and only notifies.';
