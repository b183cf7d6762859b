-- 30_channels.sql: per-user messages, presence, instance liveness, retention.
-- Re-applied by every `sparkd migrate`: must stay idempotent.
--
-- Presence joins and leaves are room messages of kind 'presence' whose
-- payload is a diff in the shape Phoenix Presence users know:
--   {"type":"presence_diff","joins":{"<user>":{"name":..,"metas":[..]}},"leaves":{..}}
-- Being messages, they are ordered with the room's other messages and reach
-- every instance the same way. Every presence message also says how many
-- users are present ("count"); in a crowded room (more than p_most
-- connections, SPARK_CROWDED_ROOM) it says only that: "crowded":true and
-- no list (see spark._post_presence_diffs).
--
-- p_most, the threshold, is an argument of every function that posts
-- presence (0: never crowded). Adding it changed their signatures: the old
-- ones are dropped first, so that a call without it is not ambiguous.
DROP FUNCTION IF EXISTS spark._post_presence_diffs(spark.presence[], boolean);
DROP FUNCTION IF EXISTS spark.presence_track(text, bigint, text, text, text, jsonb);
DROP FUNCTION IF EXISTS spark.presence_track_many(text, jsonb);
DROP FUNCTION IF EXISTS spark.presence_untrack_many(text, bigint[], text);
DROP FUNCTION IF EXISTS spark.presence_untrack(text, bigint, text);
DROP FUNCTION IF EXISTS spark.instance_start(text);
DROP FUNCTION IF EXISTS spark.instance_stop(text);
DROP FUNCTION IF EXISTS spark.reap_instances(interval);

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

-- Distinct users present in a room, on every instance: what "count" says.
-- Read off presence_room_idx (room, user_id), one entry per connection.
CREATE OR REPLACE FUNCTION spark.presence_users(p_room text)
RETURNS integer
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT count(*)::integer
      FROM (SELECT DISTINCT p.user_id FROM spark.presence p WHERE p.room = p_room) u;
$$;

COMMENT ON FUNCTION spark.presence_users(text) IS
    'How many distinct users are present in the room (every instance): the "count" of presence messages.';

-- Posts one presence message per room for the given rows (joins, or
-- leaves), judged by the rows present once the room's lock is held:
--   not crowded: a presence_diff with the rows grouped by user, as
--     presence_state is, and the count of users;
--   crowded (more than p_most connections): a presence_diff with no
--     entries, "crowded":true and the count: a join storm costs each
--     member a few bytes per batch, not the joiners' metas;
--   no longer crowded (leaves took it to p_most or fewer): the room's
--     whole presence_state, so that every member gets its list back.
-- The lock is the one the room's next message takes anyway (0002's seq
-- trigger); taken before counting, it makes each count include every
-- change committed before this message, so that every instance judges a
-- room by the same rows and the last presence message of a room is right.
-- Rooms are locked in name order. Returns the rooms told.
CREATE OR REPLACE FUNCTION spark._post_presence_diffs(p_rows spark.presence[], p_joins boolean,
                                                      p_most integer)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    r record;
    n integer := 0;
    v_payload jsonb;
BEGIN
    FOR r IN
        WITH by_user AS (
            SELECT p.room, p.user_id, count(*) AS conns,
                   jsonb_build_object('name', max(p.name),
                                      'metas', jsonb_agg(spark._presence_meta(p) ORDER BY p.conn)) AS entry
              FROM unnest(p_rows) AS p
             GROUP BY p.room, p.user_id)
        SELECT b.room, jsonb_object_agg(b.user_id, b.entry) AS entries, sum(b.conns)::integer AS conns
          FROM by_user b
         GROUP BY b.room
         ORDER BY b.room
    LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('spark.room:' || r.room, 0));
        IF p_most > 0 AND spark.room_crowded(r.room, p_most) THEN
            v_payload := jsonb_build_object('type', 'presence_diff', 'joins', '{}'::jsonb,
                                            'leaves', '{}'::jsonb, 'crowded', true,
                                            'count', spark.presence_users(r.room));
        ELSIF p_most > 0 AND NOT p_joins
              AND (r.conns > p_most OR spark.room_crowded(r.room, p_most - r.conns)) THEN
            -- crowded with the leavers, not without them
            v_payload := spark.presence_message(r.room, p_most)::jsonb;
        ELSE
            v_payload := jsonb_build_object('type', 'presence_diff',
                                            'joins', CASE WHEN p_joins THEN r.entries ELSE '{}'::jsonb END,
                                            'leaves', CASE WHEN p_joins THEN '{}'::jsonb ELSE r.entries END,
                                            'count', spark.presence_users(r.room));
        END IF;
        PERFORM spark.broadcast(r.room, v_payload, 'presence', NULL);
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;

-- One track: a batch of one (spark.presence_track_many, below). Its diff is
-- the last message of the room, since the room's lock is held until commit.
CREATE OR REPLACE FUNCTION spark.presence_track(p_instance text, p_conn bigint, p_room text,
                                                p_user text, p_name text, p_meta jsonb,
                                                p_most integer DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    PERFORM spark.presence_track_many(p_instance,
        jsonb_build_array(jsonb_build_object('conn', p_conn, 'room', p_room, 'user', p_user,
                                             'name', p_name, 'meta', coalesce(p_meta, '{}'))),
        p_most);
    RETURN (SELECT max(m.seq) FROM spark.messages m WHERE m.room = p_room);
END;
$$;

COMMENT ON FUNCTION spark.presence_track(text, bigint, text, text, text, jsonb, integer) IS
    'Records that connection p_conn of instance p_instance is in p_room as p_user, and posts the join '
    'to the room (a count only when it has more than p_most connections, 0: never); returns the seq of '
    'that presence message.';

-- Removes the presences of many connections of an instance (NULL: all of
-- them; p_room: in that room only) and posts one leave diff per room.
-- Connections that closed together go in one call, as presence_track_many
-- writes joins: an instance whose clients all go at once would otherwise
-- post a diff per connection to every member left.
-- The rows go first, in a statement of their own: the diffs count what is
-- left after them.
CREATE OR REPLACE FUNCTION spark.presence_untrack_many(p_instance text, p_conns bigint[],
                                                       p_room text DEFAULT NULL,
                                                       p_most integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_gone spark.presence[];
BEGIN
    WITH gone AS (
        DELETE FROM spark.presence p
         WHERE p.instance = p_instance
           AND (p_conns IS NULL OR p.conn = ANY (p_conns))
           AND (p_room IS NULL OR p.room = p_room)
        RETURNING p.*)
    SELECT coalesce(array_agg(g::spark.presence), '{}') INTO v_gone FROM gone g;
    RETURN spark._post_presence_diffs(v_gone, false, p_most);
END;
$$;

COMMENT ON FUNCTION spark.presence_untrack_many(text, bigint[], text, integer) IS
    'Removes the presences of the given connections of an instance (all when NULL; in one room when '
    'p_room is given) and posts one leave diff per room (crowded above p_most connections, 0: never); '
    'returns the number of rooms told.';

-- Removes presences and posts one leave diff per room. NULL conn means every
-- connection of the instance, NULL room every room.
CREATE OR REPLACE FUNCTION spark.presence_untrack(p_instance text, p_conn bigint DEFAULT NULL,
                                                  p_room text DEFAULT NULL,
                                                  p_most integer DEFAULT 0)
RETURNS integer
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT spark.presence_untrack_many(p_instance,
                                       CASE WHEN p_conn IS NULL THEN NULL ELSE ARRAY[p_conn] END,
                                       p_room, p_most);
$$;

COMMENT ON FUNCTION spark.presence_untrack(text, bigint, text, integer) IS
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

-- A room's presence as a member is given it: the presence_state frame,
-- {"type":"presence_state","room":R,"state":S,"count":U}, or in a crowded
-- room (more than p_most connections; 0: never) {"state":{}, "crowded":
-- true, "count":U}, no list. As json, its keys in this order: the runtime
-- re-encodes it compactly, and clients may look for the "type" first.
CREATE OR REPLACE FUNCTION spark.presence_message(p_room text, p_most integer DEFAULT 0)
RETURNS json
LANGUAGE sql
STABLE
SET search_path = pg_catalog, spark, pg_temp
AS $$
    SELECT CASE WHEN x.crowded
                THEN json_build_object('type', 'presence_state', 'room', p_room, 'state', '{}'::json,
                                       'crowded', true, 'count', x.users)
                ELSE json_build_object('type', 'presence_state', 'room', p_room,
                                       'state', spark.presence_state(p_room), 'count', x.users)
           END
      FROM (SELECT p_most > 0 AND spark.room_crowded(p_room, p_most) AS crowded,
                   spark.presence_users(p_room) AS users) x;
$$;

COMMENT ON FUNCTION spark.presence_message(text, integer) IS
    'The presence_state frame of a room: its state and count of users, or only the count and '
    '"crowded":true when it has more than p_most connections (0: never).';

-- ---------------------------------------------------------------------------
-- Instance liveness
-- ---------------------------------------------------------------------------

-- A (re)starting instance first removes what a previous life left behind.
CREATE OR REPLACE FUNCTION spark.instance_start(p_id text, p_most integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    PERFORM spark.presence_untrack(p_id, NULL, NULL, p_most);
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

CREATE OR REPLACE FUNCTION spark.instance_stop(p_id text, p_most integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
BEGIN
    PERFORM spark.presence_untrack(p_id, NULL, NULL, p_most);
    DELETE FROM spark.instances WHERE id = p_id;
END;
$$;

-- Run by every instance periodically: removes instances silent for longer
-- than p_timeout, with their presences (posting the leaves). SKIP LOCKED lets
-- survivors share the work without waiting for one another.
CREATE OR REPLACE FUNCTION spark.reap_instances(p_timeout interval, p_most integer DEFAULT 0)
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
        PERFORM spark.presence_untrack(v_id, NULL, NULL, p_most);
        DELETE FROM spark.instances WHERE id = v_id;
        RETURN NEXT v_id;
    END LOOP;
    -- Presences of an instance that has no row at all (removed by hand).
    FOR v_id IN
        SELECT DISTINCT p.instance FROM spark.presence p
         WHERE NOT EXISTS (SELECT 1 FROM spark.instances i WHERE i.id = p.instance)
    LOOP
        PERFORM spark.presence_untrack(v_id, NULL, NULL, p_most);
        RETURN NEXT v_id;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION spark.reap_instances(interval, integer) IS
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
CREATE OR REPLACE FUNCTION spark.presence_track_many(p_instance text, p_items jsonb,
                                                     p_most integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_tracked spark.presence[];
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
    SELECT coalesce(array_agg(t::spark.presence), '{}') INTO v_tracked FROM tracked t;
    RETURN spark._post_presence_diffs(v_tracked, true, p_most);
END;
$$;

COMMENT ON FUNCTION spark.presence_track_many(text, jsonb, integer) IS
    'Records many presences of instance p_instance at once ([{"conn","room","user","name","meta"}]) and posts '
    'one presence_diff per room with all of their joins (a count only above p_most connections, 0: never); '
    'returns the number of rooms told.';
