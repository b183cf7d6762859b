-- 30_channels.sql: per-user messages, presence, instance liveness, retention.
-- Re-applied by every `sparkd migrate`: must stay idempotent.
--
-- Presence joins and leaves are room messages of kind 'presence' whose
-- payload is a diff in the shape Phoenix Presence users know:
--   {"type":"presence_diff","joins":{"<user>":{"name":..,"metas":[..]}},"leaves":{..}}
-- Being messages, they are ordered with the room's other messages and reach
-- every instance the same way.

-- Send to every connection of one user, on every instance (and every tab).
CREATE OR REPLACE FUNCTION spark.notify_user(user_id text, payload jsonb)
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT spark.broadcast('user:' || notify_user.user_id, notify_user.payload);
$$;

COMMENT ON FUNCTION spark.notify_user(text, jsonb) IS
    'Sends payload to every connection of the user (room "user:<user_id>"), on every instance; returns its seq.';

-- Send to every connection of every channel on every instance: each
-- instance serves the room 'spark:all' to all of its connections (channel
-- clients get the payload with its seq, /spark clients the {"t":"msg"}
-- envelope), as spark_broadcast_all does from C.
CREATE OR REPLACE FUNCTION spark.broadcast_all(payload jsonb)
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT spark.broadcast('spark:all', broadcast_all.payload);
$$;

COMMENT ON FUNCTION spark.broadcast_all(jsonb) IS
    'Sends payload to every connection on every instance (room "spark:all"); returns its seq.';

-- One presence entry as clients see it: the tracked meta plus its ref.
-- No SET clause, so that the planner inlines it (presence_state calls it
-- once per connection in the room); its callers set search_path.
CREATE OR REPLACE FUNCTION spark._presence_meta(p spark.presence)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT p.meta || jsonb_build_object('ref', p.instance || '/' || p.conn,
                                        'online_at', floor(extract(epoch FROM p.joined_at)));
$$;

-- Posts one presence_diff per room for the given rows, grouped by user as
-- presence_state is: as joins, or as leaves. Returns the rooms told.
CREATE OR REPLACE FUNCTION spark._post_presence_diffs(p_rows spark.presence[], p_joins boolean)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        WITH by_user AS (
            SELECT p.room, p.user_id,
                   jsonb_build_object('name', max(p.name),
                                      'metas', jsonb_agg(spark._presence_meta(p) ORDER BY p.conn)) AS entry
              FROM unnest(p_rows) AS p
             GROUP BY p.room, p.user_id)
        SELECT b.room, jsonb_object_agg(b.user_id, b.entry) AS entries
          FROM by_user b
         GROUP BY b.room
         ORDER BY b.room
    LOOP
        PERFORM spark.broadcast(r.room,
            jsonb_build_object('type', 'presence_diff',
                               'joins', CASE WHEN p_joins THEN r.entries ELSE '{}'::jsonb END,
                               'leaves', CASE WHEN p_joins THEN '{}'::jsonb ELSE r.entries END),
            'presence', NULL);
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;

-- One track: a batch of one (spark.presence_track_many, below). Its diff is
-- the last message of the room, since the room's lock is held until commit.
CREATE OR REPLACE FUNCTION spark.presence_track(p_instance text, p_conn bigint, p_room text,
                                                p_user text, p_name text, p_meta jsonb)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    PERFORM spark.presence_track_many(p_instance,
        jsonb_build_array(jsonb_build_object('conn', p_conn, 'room', p_room, 'user', p_user,
                                             'name', p_name, 'meta', coalesce(p_meta, '{}'))));
    RETURN (SELECT max(m.seq) FROM spark.messages m WHERE m.room = p_room);
END;
$$;

COMMENT ON FUNCTION spark.presence_track(text, bigint, text, text, text, jsonb) IS
    'Records that connection p_conn of instance p_instance is in p_room as p_user, and posts the join '
    'to the room; returns the seq of that presence message.';

-- Removes the presences of many connections of an instance (NULL: all of
-- them; p_room: in that room only) and posts one leave diff per room.
-- Connections that closed together go in one call, as presence_track_many
-- writes joins: an instance whose clients all go at once would otherwise
-- post a diff per connection to every member left.
CREATE OR REPLACE FUNCTION spark.presence_untrack_many(p_instance text, p_conns bigint[],
                                                       p_room text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    WITH gone AS (
        DELETE FROM spark.presence p
         WHERE p.instance = p_instance
           AND (p_conns IS NULL OR p.conn = ANY (p_conns))
           AND (p_room IS NULL OR p.room = p_room)
        RETURNING p.*)
    SELECT spark._post_presence_diffs(coalesce(array_agg(g::spark.presence), '{}'), false)
      INTO n
      FROM gone g;
    RETURN n;
END;
$$;

COMMENT ON FUNCTION spark.presence_untrack_many(text, bigint[], text) IS
    'Removes the presences of the given connections of an instance (all when NULL; in one room when '
    'p_room is given) and posts one leave diff per room; returns the number of rooms told.';

-- Removes presences and posts one leave diff per room. NULL conn means every
-- connection of the instance, NULL room every room.
CREATE OR REPLACE FUNCTION spark.presence_untrack(p_instance text, p_conn bigint DEFAULT NULL,
                                                  p_room text DEFAULT NULL)
RETURNS integer
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT spark.presence_untrack_many(p_instance,
                                       CASE WHEN p_conn IS NULL THEN NULL ELSE ARRAY[p_conn] END,
                                       p_room);
$$;

COMMENT ON FUNCTION spark.presence_untrack(text, bigint, text) IS
    'Removes presences of an instance (one connection when p_conn is given, one room when p_room is given) '
    'and posts the leaves to each room; returns the number of rooms told.';

-- Who is in a room: {"<user>":{"name":..,"metas":[..]}}, one key per user.
CREATE OR REPLACE FUNCTION spark.presence_state(p_room text)
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    -- Built as json and converted once: in a room of thousands, building
    -- jsonb value by value costs twice as much.
    SELECT coalesce(json_object_agg(s.user_id, s.entry)::jsonb, '{}'::jsonb)
      FROM (SELECT p.user_id,
                   json_build_object('name', max(p.name),
                                     'metas', json_agg(spark._presence_meta(p)
                                                       ORDER BY p.joined_at, p.conn)) AS entry
              FROM spark.presence p
             WHERE p.room = p_room
             GROUP BY p.user_id) s;
$$;

COMMENT ON FUNCTION spark.presence_state(text) IS
    'Presence in a room: an object keyed by user id, each with name and metas (one per connection).';

-- Whether more than p_most connections are present in a room. It reads at
-- most p_most + 1 rows of the index, so a room of thousands costs what one
-- of p_most does: the chat channel asks it for every join and leave
-- (SPARK_UNLESS_CROWDED), and a join storm is thousands of them.
CREATE OR REPLACE FUNCTION spark.room_crowded(p_room text, p_most integer)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT count(*) > p_most
      FROM (SELECT 1 FROM spark.presence p WHERE p.room = p_room LIMIT p_most + 1) x;
$$;

COMMENT ON FUNCTION spark.room_crowded(text, integer) IS
    'True when more than p_most connections are present in the room (SPARK_CROWDED_ROOM).';

-- ---------------------------------------------------------------------------
-- Instance liveness
-- ---------------------------------------------------------------------------

-- A (re)starting instance first removes what a previous life left behind.
CREATE OR REPLACE FUNCTION spark.instance_start(p_id text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    PERFORM spark.presence_untrack(p_id);
    INSERT INTO spark.instances AS i (id) VALUES (p_id)
    ON CONFLICT (id) DO UPDATE SET started_at = now(), heartbeat_at = now();
END;
$$;

-- Returns false when the instance had been presumed dead (its row reaped):
-- its presences are gone, and it must track its connections again.
CREATE OR REPLACE FUNCTION spark.instance_heartbeat(p_id text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    UPDATE spark.instances SET heartbeat_at = now() WHERE id = p_id;
    IF FOUND THEN
        RETURN true;
    END IF;
    INSERT INTO spark.instances (id) VALUES (p_id) ON CONFLICT (id) DO NOTHING;
    RETURN false;
END;
$$;

CREATE OR REPLACE FUNCTION spark.instance_stop(p_id text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    PERFORM spark.presence_untrack(p_id);
    DELETE FROM spark.instances WHERE id = p_id;
END;
$$;

-- Run by every instance periodically: removes instances silent for longer
-- than p_timeout, with their presences (posting the leaves). SKIP LOCKED lets
-- survivors share the work without waiting for one another.
CREATE OR REPLACE FUNCTION spark.reap_instances(p_timeout interval)
RETURNS SETOF text
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_id text;
BEGIN
    FOR v_id IN
        SELECT i.id FROM spark.instances i
         WHERE i.heartbeat_at < now() - p_timeout
         FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM spark.presence_untrack(v_id);
        DELETE FROM spark.instances WHERE id = v_id;
        RETURN NEXT v_id;
    END LOOP;
    -- Presences of an instance that has no row at all (removed by hand).
    FOR v_id IN
        SELECT DISTINCT p.instance FROM spark.presence p
         WHERE NOT EXISTS (SELECT 1 FROM spark.instances i WHERE i.id = p.instance)
    LOOP
        PERFORM spark.presence_untrack(v_id);
        RETURN NEXT v_id;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION spark.reap_instances(interval) IS
    'Removes instances whose heartbeat is older than p_timeout, and their presences (leaves are posted); returns their ids.';

-- ---------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------

-- Keeps at most keep_count messages per room (0: no bound) and none older
-- than keep_age (NULL: no bound); records each room's watermark so that a
-- client resuming from before it is told it missed messages.
CREATE OR REPLACE FUNCTION spark.prune_messages(keep_count integer, keep_age interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_old text := current_setting('spark.allow_prune', true);
    v_n   bigint;
BEGIN
    PERFORM set_config('spark.allow_prune', 'on', true);
    WITH ranked AS (
        SELECT m.seq, m.at,
               row_number() OVER (PARTITION BY m.room ORDER BY m.seq DESC) AS rn
          FROM spark.messages m),
    doomed AS (
        SELECT r.seq FROM ranked r
         WHERE (keep_count > 0 AND r.rn > keep_count)
            OR (keep_age IS NOT NULL AND r.at < now() - keep_age)),
    del AS (
        DELETE FROM spark.messages m USING doomed d
         WHERE m.seq = d.seq
        RETURNING m.room, m.seq),
    marks AS (
        INSERT INTO spark.rooms AS r (room, pruned_through)
        SELECT d.room, max(d.seq) FROM del d GROUP BY d.room
        ON CONFLICT (room) DO UPDATE
            SET pruned_through = greatest(r.pruned_through, EXCLUDED.pruned_through)
        RETURNING 1)
    SELECT count(*) INTO v_n FROM del;
    PERFORM set_config('spark.allow_prune', coalesce(v_old, ''), true);
    RETURN v_n;
END;
$$;

COMMENT ON FUNCTION spark.prune_messages(integer, interval) IS
    'Retention: deletes room messages beyond the newest keep_count per room (0: keep all) or older than keep_age; '
    'records spark.rooms.pruned_through; returns the number deleted.';

-- Many tracks of one instance in one statement: one transaction, and one
-- presence_diff per room with every join of the batch (grouped by user, as
-- presence_state is), instead of one row, one commit and one diff per
-- connection. p_items: [{"conn", "room", "user", "name", "meta"}]; a
-- (conn, room) given twice keeps its last entry. Returns the rooms told.
CREATE OR REPLACE FUNCTION spark.presence_track_many(p_instance text, p_items jsonb)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    WITH items AS (
        SELECT DISTINCT ON ((t.x->>'conn')::bigint, t.x->>'room')
               (t.x->>'conn')::bigint AS conn, t.x->>'room' AS room,
               t.x->>'user' AS user_id, t.x->>'name' AS name,
               coalesce(t.x->'meta', '{}'::jsonb) AS meta
          FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(x, ord)
         ORDER BY (t.x->>'conn')::bigint, t.x->>'room', t.ord DESC),
    tracked AS (
        INSERT INTO spark.presence AS p (instance, conn, room, user_id, name, meta)
        SELECT p_instance, i.conn, i.room, i.user_id, i.name, i.meta FROM items i
        ON CONFLICT (instance, conn, room)
            DO UPDATE SET user_id = EXCLUDED.user_id, name = EXCLUDED.name, meta = EXCLUDED.meta
        RETURNING p.*)
    SELECT spark._post_presence_diffs(coalesce(array_agg(t::spark.presence), '{}'), true)
      INTO n
      FROM tracked t;
    RETURN n;
END;
$$;

COMMENT ON FUNCTION spark.presence_track_many(text, jsonb) IS
    'Records many presences of instance p_instance at once ([{"conn","room","user","name","meta"}]) and posts '
    'one presence_diff per room with all of their joins; returns the number of rooms told.';
