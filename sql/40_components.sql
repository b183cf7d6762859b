-- 40_components.sql: the write path of live components in sparkd.
-- Re-applied by every `sparkd migrate`: must stay idempotent.
--
-- sparkd runs a component's handlers on the state it has cached, then
-- stores the results of every event that arrived together in one call of
-- spark.apply_events: one statement, so one transaction and one round
-- trip. Each event is its own UPDATE, so the triggers of 0001 give each its
-- own version, history row (event, data, actor, instance) and NOTIFY.

-- The result types changed when event ids came (0003): drop and create.
DROP FUNCTION IF EXISTS spark.apply_batch(jsonb, text);
DROP FUNCTION IF EXISTS spark.apply_events(text, bigint, jsonb, text);

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
