-- 0002_channels.sql: what channels need beyond 0001: per-room order,
-- retention watermarks, instance heartbeats and presence.
--
-- Forward-only, like every migration: never edit once released.

-- ---------------------------------------------------------------------------
-- Per-room order: within one room, sequence order is commit order.
-- ---------------------------------------------------------------------------
-- Instances fetch a room's messages with "seq > last delivered". That is
-- exact only if no transaction can commit a smaller seq after a larger one
-- became visible. Two concurrent inserts into one room could do just that
-- (seq is drawn at insert, visibility comes at commit), so every insert
-- first takes a per-room lock held to commit, and only then draws its seq.
-- Writers to different rooms never wait for each other.

CREATE FUNCTION spark.messages_before_insert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('spark.room:' || NEW.room, 0));
    NEW.seq := nextval(pg_get_serial_sequence('spark.messages', 'seq'));
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION spark.messages_before_insert() IS
    'BEFORE INSERT on spark.messages: takes the room''s lock (to commit) and then draws seq, '
    'so that within a room seq order is commit order.';

CREATE TRIGGER messages_before_insert
    BEFORE INSERT ON spark.messages
    FOR EACH ROW EXECUTE FUNCTION spark.messages_before_insert();

ALTER TABLE spark.messages ADD COLUMN origin text;
COMMENT ON COLUMN spark.messages.origin IS
    'The connection that sent the message ("instance/connection"), when it asked not to receive it back; else null.';

-- ---------------------------------------------------------------------------
-- Retention: how far each room's history has been pruned.
-- ---------------------------------------------------------------------------

CREATE TABLE spark.rooms (
    room            text   PRIMARY KEY,
    pruned_through  bigint NOT NULL DEFAULT 0
);

COMMENT ON TABLE spark.rooms IS
    'Per-room retention watermark, written by spark.prune_messages().';
COMMENT ON COLUMN spark.rooms.pruned_through IS
    'Every message of the room with seq <= this has been pruned: a client that last saw an '
    'earlier seq cannot be given what it missed, and is told so.';

-- ---------------------------------------------------------------------------
-- Instances and presence.
-- ---------------------------------------------------------------------------

CREATE TABLE spark.instances (
    id            text        PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE spark.instances IS
    'Running sparkd instances. Each refreshes heartbeat_at; one silent for longer than the presence '
    'timeout is presumed dead, and its presences are removed by a survivor.';

CREATE TABLE spark.presence (
    instance   text        NOT NULL,
    conn       bigint      NOT NULL,
    room       text        NOT NULL,
    user_id    text        NOT NULL,
    name       text,
    meta       jsonb       NOT NULL DEFAULT '{}',
    joined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, conn, room)
);

CREATE INDEX presence_room_idx ON spark.presence (room, user_id);

COMMENT ON TABLE spark.presence IS
    'Who is in which room: one row per tracked connection and room. A user with two tabs has two rows '
    '(two metas). Joins and leaves are posted to the room as messages of kind presence.';
COMMENT ON COLUMN spark.presence.conn IS
    'The connection''s number within its instance.';
COMMENT ON COLUMN spark.presence.meta IS
    'What the channel tracked for this connection (JSON object).';
