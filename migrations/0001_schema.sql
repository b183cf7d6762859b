-- 0001_schema.sql: the spark schema: components, their history, room messages.
--
-- Applied once by `sparkd migrate`, inside one transaction. Forward-only:
-- never edit this file once released; add a new numbered migration instead.
--
-- Every write path (sparkd, psql, any client) goes through the triggers
-- below, which keep versions, append history and NOTIFY channel 'spark'.
-- The NOTIFY payload contract is described in docs/schema.md:
--   c|<version>|<component id>    a component changed (or was deleted)
--   m|<seq>|<room>                a message was posted to a room

CREATE SCHEMA IF NOT EXISTS spark;

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

CREATE TABLE spark.components (
    id          text        PRIMARY KEY,
    type        text        NOT NULL,
    state       jsonb       NOT NULL DEFAULT '{}',
    version     bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT components_id_format
        CHECK (id ~ '^[a-z][a-z0-9_]*:.+$' AND octet_length(id) <= 255),
    CONSTRAINT components_type_from_id
        CHECK (type = split_part(id, ':', 1)),
    CONSTRAINT components_state_object
        CHECK (jsonb_typeof(state) = 'object'),
    CONSTRAINT components_version_positive
        CHECK (version > 0)
);

COMMENT ON TABLE spark.components IS
    'Shared state of every live component instance: one JSON document per id, versioned. '
    'Writes are versioned, recorded in spark.events and notified on channel spark by triggers.';
COMMENT ON COLUMN spark.components.id IS
    'Component id "type:key": type matches ^[a-z][a-z0-9_]*$, key is non-empty (may contain ":" or "|"), at most 255 bytes in all.';
COMMENT ON COLUMN spark.components.type IS
    'The registered component type: the part of id before the first ":". Set by trigger; any value written is replaced.';
COMMENT ON COLUMN spark.components.state IS
    'The shared state, a JSON object.';
COMMENT ON COLUMN spark.components.version IS
    'Version of the state, set by trigger: an insert continues after the last version in spark.events for this id (1 for a new id); '
    'an update that changes state adds 1; an update that does not change state keeps it.';
COMMENT ON COLUMN spark.components.updated_at IS
    'Time (transaction start) of the last state change.';

CREATE TABLE spark.events (
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    component_id  text        NOT NULL,
    version       bigint      NOT NULL,
    event         text        NOT NULL,
    data          jsonb,
    actor         text,
    instance      text,
    state         jsonb,
    at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_component_version_key UNIQUE (component_id, version)
);

COMMENT ON TABLE spark.events IS
    'History of component state: one row per change (insert, state-changing update, delete), written by triggers on spark.components. '
    'Append-only. No foreign key: history outlives the component.';
COMMENT ON COLUMN spark.events.seq IS
    'Global sequence of changes, across all components.';
COMMENT ON COLUMN spark.events.component_id IS
    'The component id (spark.components.id) that changed.';
COMMENT ON COLUMN spark.events.version IS
    'The component version this change produced. For a delete: the version after the last state.';
COMMENT ON COLUMN spark.events.event IS
    'Event name: the setting spark.event of the writing transaction, else sql.insert / sql.update / sql.delete.';
COMMENT ON COLUMN spark.events.data IS
    'Event data: the setting spark.event_data (JSON) of the writing transaction, else null.';
COMMENT ON COLUMN spark.events.actor IS
    'Who made the change: the setting spark.actor of the writing transaction, else the session user.';
COMMENT ON COLUMN spark.events.instance IS
    'Which sparkd instance made the change: the setting spark.instance, else null.';
COMMENT ON COLUMN spark.events.state IS
    'The state after the change; null for a delete.';
COMMENT ON COLUMN spark.events.at IS
    'Time (transaction start) of the change.';

CREATE TABLE spark.messages (
    seq      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room     text        NOT NULL,
    kind     text        NOT NULL DEFAULT 'message',
    payload  jsonb       NOT NULL,
    actor    text,
    at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_room_length
        CHECK (octet_length(room) BETWEEN 1 AND 255)
);

CREATE INDEX messages_room_seq_idx ON spark.messages (room, seq);

COMMENT ON TABLE spark.messages IS
    'Room messages (channels, chat): one row per message, append-only. Each insert is notified on channel spark.';
COMMENT ON COLUMN spark.messages.seq IS
    'Global sequence of messages, across all rooms; catch up with seq > last seen.';
COMMENT ON COLUMN spark.messages.room IS
    'Room name, 1 to 255 bytes.';
COMMENT ON COLUMN spark.messages.kind IS
    'Message kind (default "message"); its meaning belongs to the room''s channel.';
COMMENT ON COLUMN spark.messages.payload IS
    'Message body, any JSON value.';
COMMENT ON COLUMN spark.messages.actor IS
    'Who sent the message (user id), or null.';
COMMENT ON COLUMN spark.messages.at IS
    'Time (transaction start) the message was stored.';

-- ---------------------------------------------------------------------------
-- Trigger functions
-- ---------------------------------------------------------------------------

-- BEFORE INSERT on components: derive type, assign the version.
CREATE FUNCTION spark.components_before_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    NEW.type := split_part(NEW.id, ':', 1);
    -- A deleted-then-recreated component continues its history.
    SELECT coalesce(max(e.version), 0) + 1
      INTO NEW.version
      FROM spark.events e
     WHERE e.component_id = NEW.id;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION spark.components_before_insert() IS
    'BEFORE INSERT on spark.components: type from id; version = 1 + last version in spark.events for the id; updated_at = now().';

-- BEFORE UPDATE on components: id is immutable; version moves only with state.
CREATE FUNCTION spark.components_before_update() RETURNS trigger
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
        NEW.version := OLD.version + 1;
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
    'BEFORE UPDATE on spark.components: refuses an id change; version + 1 and updated_at = now() when state changes, else keeps both.';

-- AFTER INSERT/UPDATE/DELETE on components: append history, notify.
CREATE FUNCTION spark.components_after_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_id       text;
    v_version  bigint;
    v_state    jsonb;
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
    END IF;

    INSERT INTO spark.events (component_id, version, event, data, actor, instance, state)
    VALUES (v_id, v_version,
            coalesce(v_event, 'sql.' || lower(TG_OP)),
            v_data, v_actor, v_instance, v_state);

    PERFORM pg_notify('spark', 'c|' || v_version || '|' || v_id);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION spark.components_after_change() IS
    'AFTER INSERT/UPDATE/DELETE on spark.components: appends a spark.events row (from the settings spark.event, spark.event_data, '
    'spark.actor, spark.instance) and sends NOTIFY spark ''c|<version>|<id>''.';

-- AFTER INSERT on messages: notify.
CREATE FUNCTION spark.messages_after_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('spark', 'm|' || NEW.seq || '|' || NEW.room);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION spark.messages_after_insert() IS
    'AFTER INSERT on spark.messages: sends NOTIFY spark ''m|<seq>|<room>''.';

-- History guard: UPDATE, DELETE and TRUNCATE are refused on spark.events and
-- spark.messages unless the transaction (or session) set spark.allow_prune = on.
CREATE FUNCTION spark.append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    IF current_setting('spark.allow_prune', true) = 'on' THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        ELSIF TG_OP = 'DELETE' THEN
            RETURN OLD;
        ELSE
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '%.% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              DETAIL = format('%s refused on %I.%I.', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME),
              HINT = 'Only a retention job may prune history, with set_config(''spark.allow_prune'', ''on'', true).';
END;
$$;

COMMENT ON FUNCTION spark.append_only() IS
    'Guard of spark.events and spark.messages: refuses UPDATE, DELETE and TRUNCATE unless the setting spark.allow_prune is ''on''.';

-- ---------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------

CREATE TRIGGER components_before_insert
    BEFORE INSERT ON spark.components
    FOR EACH ROW EXECUTE FUNCTION spark.components_before_insert();

CREATE TRIGGER components_before_update
    BEFORE UPDATE ON spark.components
    FOR EACH ROW EXECUTE FUNCTION spark.components_before_update();

CREATE TRIGGER components_history_insert
    AFTER INSERT ON spark.components
    FOR EACH ROW EXECUTE FUNCTION spark.components_after_change();

CREATE TRIGGER components_history_update
    AFTER UPDATE ON spark.components
    FOR EACH ROW WHEN (NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION spark.components_after_change();

CREATE TRIGGER components_history_delete
    AFTER DELETE ON spark.components
    FOR EACH ROW EXECUTE FUNCTION spark.components_after_change();

CREATE TRIGGER messages_notify
    AFTER INSERT ON spark.messages
    FOR EACH ROW EXECUTE FUNCTION spark.messages_after_insert();

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON spark.events
    FOR EACH ROW EXECUTE FUNCTION spark.append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON spark.events
    FOR EACH STATEMENT EXECUTE FUNCTION spark.append_only();

CREATE TRIGGER messages_append_only
    BEFORE UPDATE OR DELETE ON spark.messages
    FOR EACH ROW EXECUTE FUNCTION spark.append_only();

CREATE TRIGGER messages_no_truncate
    BEFORE TRUNCATE ON spark.messages
    FOR EACH STATEMENT EXECUTE FUNCTION spark.append_only();
