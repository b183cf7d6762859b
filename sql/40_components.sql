-- 40_components.sql: the write path of live components in sparkd.
-- Re-applied by every `sparkd migrate`: must stay idempotent.
--
-- sparkd runs a component's handlers on the state it has cached, then
-- stores the results of every event that arrived together in one call of
-- spark.apply_events: one statement, so one transaction and one round
-- trip. Each event gets its own version and history row (event, data,
-- actor, instance): from the triggers of 0001, an UPDATE per event, or,
-- when two or more of a component's events change its state, from one
-- INSERT of their history rows and one UPDATE (0005), with one NOTIFY.

-- The result types changed when event ids came (0003): drop and create.
DROP FUNCTION IF EXISTS spark.apply_batch(jsonb, text);
DROP FUNCTION IF EXISTS spark.apply_events(text, bigint, jsonb, text);

-- The rows of a batch of events on a component at p_expected with state
-- p_state: each event with the state before it, whether it changes it,
-- and the version it leaves the component at (an event that changes
-- nothing makes no version, as a no-op UPDATE does).
CREATE OR REPLACE FUNCTION spark._batch_rows(p_events jsonb, p_state jsonb, p_expected bigint)
RETURNS TABLE (ord bigint, e jsonb, s jsonb, prev jsonb, changed boolean, version bigint)
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT x.ord, x.e, x.s, x.prev, x.changed,
           p_expected + sum(x.changed::integer) OVER (ORDER BY x.ord)
      FROM (SELECT y.ord, y.e, y.s, y.prev, y.s IS DISTINCT FROM y.prev AS changed
              FROM (SELECT t.ord, t.e, t.e->'s' AS s,
                           coalesce(lag(t.e->'s') OVER (ORDER BY t.ord), p_state) AS prev
                      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, ord)) y) x;
$$;

COMMENT ON FUNCTION spark._batch_rows(jsonb, jsonb, bigint) IS
    'Internal (spark.apply_events): a batch''s events with the state before each, whether each '
    'changes it, and the version each leaves.';

-- p_expected: the version the handlers ran on (0: the component did not
-- exist). p_events: [{"e": name, "d": data, "a": actor, "s": state after,
-- "i": id (optional)}]. An event with an id already in spark.event_ids for
-- this component makes the whole call write nothing: it returns
-- applied = false with the current version and state and, in dups, each
-- such id with the version it produced; the caller answers those and runs
-- the others again on the current state.
-- Returns applied = true and the last version written; or, when another
-- writer got there first, applied = false with the current version and
-- state (null state: the component does not exist), and nothing written.
-- Only the first statement can meet a conflict: it leaves the row locked
-- for the rest of the batch.
CREATE OR REPLACE FUNCTION spark.apply_events(p_id text, p_expected bigint, p_events jsonb,
                                              p_instance text)
RETURNS TABLE (applied boolean, version bigint, state jsonb, dups jsonb)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_event   jsonb;
    v_version bigint := p_expected;
    v_new     bigint;
    v_dups    jsonb;
    v_changed integer;
    v_every   integer := coalesce(nullif(current_setting('spark.snapshot_every', true), '')::integer, 32);
BEGIN
    -- Under the row's lock, so that a concurrent writer of the same id
    -- waits for this one and then finds it.
    PERFORM 1 FROM spark.components c WHERE c.id = p_id FOR UPDATE;
    SELECT jsonb_object_agg(x.event_id, x.version) INTO v_dups
      FROM spark.event_ids x
     WHERE x.component_id = p_id
       AND x.event_id IN (SELECT t.e->>'i' FROM jsonb_array_elements(p_events) AS t(e)
                           WHERE t.e ? 'i');
    IF v_dups IS NOT NULL THEN
        RETURN QUERY
            SELECT false,
                   coalesce((SELECT c.version FROM spark.components c WHERE c.id = p_id), 0),
                   (SELECT c.state FROM spark.components c WHERE c.id = p_id),
                   v_dups;
        RETURN;
    END IF;
    -- Two or more changes of the state at once (0005): their history rows
    -- in one INSERT, the rows the triggers would write one by one, then one
    -- UPDATE that moves the version past them all, which the BEFORE UPDATE
    -- trigger accepts because each of those versions has its row by then;
    -- the AFTER trigger notifies once. Fewer changes, a state that is not
    -- an object (the table's check refuses it below, as it always did) or
    -- a component not at p_expected (a conflict, met below) go one by one.
    -- One statement: the rows are worked out once, and written only when
    -- they qualify (`go` is then their count of changes, else no row).
    IF p_expected > 0 AND jsonb_array_length(p_events) > 1 THEN
        WITH r AS MATERIALIZED (
            SELECT b.*
              FROM spark.components c
             CROSS JOIN LATERAL spark._batch_rows(p_events, c.state, p_expected) b
             WHERE c.id = p_id AND c.version = p_expected),
        go AS (
            SELECT count(*) FILTER (WHERE r.changed)::integer AS changes
              FROM r
            HAVING count(*) FILTER (WHERE r.changed) >= 2
               AND bool_and(coalesce(jsonb_typeof(r.s) = 'object', false))),
        history AS (
            INSERT INTO spark.events (component_id, version, event, data, actor, instance,
                                      state, patch)
            SELECT p_id, r.version,
                   coalesce(nullif(r.e->>'e', ''), 'sql.update'),
                   r.e->'d',
                   coalesce(nullif(r.e->>'a', ''), session_user::text),
                   nullif(p_instance, ''),
                   CASE WHEN d.patch IS NULL THEN r.s END,
                   d.patch
              FROM r
             CROSS JOIN go
              -- a patch where the trigger would write one (0004's rule)
             CROSS JOIN LATERAL (
                  SELECT CASE WHEN v_every > 1 AND r.version % v_every <> 0
                                   AND pg_column_size(r.s) > 256
                              THEN spark._state_patch(r.prev, r.s) END AS patch) p
             CROSS JOIN LATERAL (
                  SELECT CASE WHEN pg_column_size(p.patch) < pg_column_size(r.s)
                              THEN p.patch END AS patch) d
             WHERE r.changed),
        ids AS (
            INSERT INTO spark.event_ids (component_id, event_id, version)
            SELECT p_id, r.e->>'i', r.version FROM r CROSS JOIN go WHERE r.e ? 'i')
        SELECT go.changes INTO v_changed FROM go;
        IF v_changed IS NOT NULL THEN
            UPDATE spark.components AS c
               SET state = p_events->-1->'s', version = p_expected + v_changed
             WHERE c.id = p_id;
            RETURN QUERY SELECT true, p_expected + v_changed, NULL::jsonb, NULL::jsonb;
            RETURN;
        END IF;
    END IF;
    FOR v_event IN SELECT t.e FROM jsonb_array_elements(p_events) AS t(e) LOOP
        -- One statement for the labels: each statement plpgsql runs costs
        -- an executor start-up, a large part of an event's time.
        PERFORM set_config('spark.event', coalesce(v_event->>'e', ''), true),
                set_config('spark.event_data', coalesce((v_event->'d')::text, ''), true),
                set_config('spark.actor', coalesce(v_event->>'a', ''), true),
                set_config('spark.instance', coalesce(p_instance, ''), true);
        v_new := NULL;
        IF v_version = 0 THEN
            INSERT INTO spark.components AS c (id, state)
            VALUES (p_id, v_event->'s')
            ON CONFLICT (id) DO NOTHING
            RETURNING c.version INTO v_new;
        ELSE
            UPDATE spark.components AS c
               SET state = v_event->'s'
             WHERE c.id = p_id AND c.version = v_version
            RETURNING c.version INTO v_new;
        END IF;
        IF v_new IS NULL THEN
            RETURN QUERY
                SELECT false,
                       coalesce((SELECT c.version FROM spark.components c WHERE c.id = p_id), 0),
                       (SELECT c.state FROM spark.components c WHERE c.id = p_id),
                       NULL::jsonb;
            RETURN;
        END IF;
        IF v_event ? 'i' THEN
            INSERT INTO spark.event_ids (component_id, event_id, version)
            VALUES (p_id, v_event->>'i', v_new);
        END IF;
        v_version := v_new;
    END LOOP;
    PERFORM set_config('spark.event', '', true), set_config('spark.event_data', '', true),
            set_config('spark.actor', '', true), set_config('spark.instance', '', true);
    RETURN QUERY SELECT true, v_version, NULL::jsonb, NULL::jsonb;
END;
$$;

COMMENT ON FUNCTION spark.apply_events(text, bigint, jsonb, text) IS
    'sparkd''s batched write of component events: each element of p_events becomes one version with its '
    'own history row, if the component is still at p_expected (0: absent); otherwise nothing is written '
    'and the current version and state are returned with applied = false.';

-- spark.apply_batch: the writes of many components in one statement, so
-- one transaction and one commit (one fsync) for all of them: an instance
-- with events pending on many components sends them together. p_batch:
-- [{"id": text, "v": expected, "events": [...as above...]}]. Components
-- are written in order of id, so two instances writing overlapping sets
-- lock rows in the same order and cannot deadlock. Each runs in its own
-- subtransaction: one that fails returns its error and is rolled back
-- alone. One row per element, `i` its 1-based position in p_batch.
CREATE OR REPLACE FUNCTION spark.apply_batch(p_batch jsonb, p_instance text)
RETURNS TABLE (i integer, applied boolean, version bigint, state jsonb, error text, dups jsonb)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, spark, pg_temp
AS $$
DECLARE
    v_item record;
    v_res  record;
BEGIN
    FOR v_item IN
        SELECT t.item, t.ord::integer AS ord
          FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS t(item, ord)
         ORDER BY t.item->>'id', t.ord
    LOOP
        BEGIN
            SELECT * INTO v_res
              FROM spark.apply_events(v_item.item->>'id', (v_item.item->>'v')::bigint,
                                      v_item.item->'events', p_instance);
            RETURN QUERY SELECT v_item.ord, v_res.applied, v_res.version, v_res.state, NULL::text,
                                v_res.dups;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT v_item.ord, NULL::boolean, NULL::bigint, NULL::jsonb, SQLERRM,
                                NULL::jsonb;
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION spark.apply_batch(jsonb, text) IS
    'sparkd''s group commit across components: spark.apply_events for each element of p_batch '
    '([{"id","v","events"}]), in order of id, each in its own subtransaction, all in one transaction; '
    'one row per element (i: its position), error set when that element failed.';
