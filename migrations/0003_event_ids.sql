-- 0003_event_ids.sql: events that carry an id are applied once, on any
-- instance. A client that resends an event after its connection dropped
-- (it cannot know whether the first one was stored) gives it the same id;
-- spark.apply_events finds it here and answers with the version it made.
--
-- Forward-only, like every migration: never edit once released.

CREATE TABLE spark.event_ids (
    component_id text        NOT NULL,
    event_id     text        NOT NULL CHECK (octet_length(event_id) BETWEEN 1 AND 64),
    version      bigint      NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component_id, event_id)
);

COMMENT ON TABLE spark.event_ids IS
    'Ids of the events applied to each component (by spark.apply_events), with the version each '
    'produced: a resent event is answered from here instead of applied twice.';
