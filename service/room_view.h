/*
 * room_view.h - what a room component (.room = true) shows of its room:
 * the recent messages, who is online, who is typing.
 *
 * The instance is a peer of the rooms module, exactly as a channel's
 * connection is: it watches the room named by its id, with the same
 * cursors, fetches and kinds of message, and keeps spark_room_view (what
 * render reads) up to date. Every change marks the viewers dirty.
 */
#ifndef SPARK_ROOM_VIEW_H
#define SPARK_ROOM_VIEW_H

#include "instance.h"

/* The newest messages a room component shows. */
#define SPARK_ROOM_VIEW_MESSAGES 50

/* Starts watching the instance's room; close frees what open made. */
void spark_room_view_open(instance *in);
void spark_room_view_close(instance *in);

/* Cancels its timers: the lws context is about to go. */
void spark_room_view_detach(instance *in);

/* Whether the messages and the presence have arrived once. */
bool spark_room_view_loaded(const instance *in);

#endif
