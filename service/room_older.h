/*
 * room_older.h - a room component's viewer paging back through the room:
 * the older messages it loaded (spark_room_load_older), in memory, its
 * own.
 *
 * They join up with the recent messages every viewer sees (room_view.c):
 * a recent message that the room view lets go of moves to the older ones
 * of each viewer that has some, so a viewer sees no gap. A viewer with
 * older messages renders on its own: its render is nobody else's.
 */
#ifndef SPARK_ROOM_OLDER_H
#define SPARK_ROOM_OLDER_H

#include "instance.h"

/* Reads a page of up to `limit` messages before the oldest the viewer
 * has, without waiting; the viewer is marked dirty when it arrives. Does
 * nothing while a page is on its way, or when there is nothing older. */
void spark_room_older_load(viewer *v, int limit);

/* The room view lets go of its oldest recent message `m`: each viewer of
 * `in` that has older messages keeps it, as its newest older one. */
void spark_room_older_keep(instance *in, json_object *m);

/* The room view's recent messages were read anew (its watch joined the
 * room again): older pages may no longer join up with them, and go. */
void spark_room_older_reset(instance *in);

/* The viewer is leaving: its older messages, and a page on its way, go. */
void spark_room_older_free(viewer *v);

#endif
