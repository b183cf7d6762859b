\set k random(0, :ncomp - 1)
\startpipeline
BEGIN;
SELECT set_config('spark.event', 'increment', true), set_config('spark.event_data', '{}', true),
       set_config('spark.actor', 'bench', true), set_config('spark.instance', 'pgbench', true);
UPDATE spark.components
   SET state = jsonb_set(state, '{count}', to_jsonb((state->>'count')::bigint + 1))
 WHERE id = 'counter' || chr(58) || 'bench-' || :k;
COMMIT;
\endpipeline
