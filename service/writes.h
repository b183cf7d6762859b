/*
 * writes.h - events of live components, from a viewer's frame to a stored
 * version: batches, the group write, conflicts and replies.
 *
 * Events of one instance are handled strictly in arrival order. Those that
 * arrive while a write is in flight wait, and then go together: the
 * handlers run one after the other on copies of the cached state, and every
 * event that changed the state is stored, each as its own version and
 * history row. The batches of all instances wait for one another: one group
 * write (spark.apply_batch) is in flight at a time, and the batches that
 * became ready meanwhile go together in the next, so one commit serves
 * every component that had events, whatever their number. If another
 * writer got to a component first, its part returns the current state and
 * its handlers run again on it, a bounded number of times. Replies,
 * flashes, redirects and room posts go out only once the batch is stored,
 * so a re-run never shows twice.
 */
#ifndef SPARK_WRITES_H
#define SPARK_WRITES_H

#include "instance.h"

/* Queues event `name` with `data` (a reference is taken) from `v`, and
 * answers it with `ref` once it is stored or refused. `event_id` (may be
 * NULL) is the client's id for it: an id already applied to the component,
 * by this instance or another, is not applied again, and its reply is ok
 * with the version it produced. */
void spark_writes_event(viewer *v, long long ref, const char *name, const char *event_id,
                        json_object *data);

/* Queues event `name` with `data` (a reference is taken) sent by channel
 * connection `c` to the instance's on_external handler (spark_conn_event);
 * `done` hears the outcome unless the connection closed meanwhile. Returns
 * 0, or -1 when the instance cannot be loaded now or too much waits. */
int spark_writes_external(instance *in, spark_conn *c, const char *name, json_object *data,
                          spark_event_done done);

/* The instance's state could not be loaded: external events waiting for it
 * are answered with `code` ("unavailable") and dropped. */
void spark_writes_fail_external(instance *in, const char *code, const char *message);

/* Runs what waits, if the instance is loaded and no write is in flight. */
void spark_writes_pump(instance *in);

/* The viewer goes: its waiting events are dropped, those in flight are
 * stored without a reply. */
void spark_writes_forget_viewer(viewer *v);

/* Frees every event still held (the server is stopping). */
void spark_writes_drop_all(instance *in);

#endif
