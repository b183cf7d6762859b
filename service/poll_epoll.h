/*
 * poll_epoll.h - the serving loop's poll() answered from an epoll set
 * (see poll_epoll.c for why and how).
 */
#ifndef SPARK_POLL_EPOLL_H
#define SPARK_POLL_EPOLL_H

#include <stdbool.h>

/* Whether the loop has work to do at once (for lws: a connection that needs
 * forced service). */
typedef bool (*spark_poll_work_fn)(void *ud);

/* From now on, this thread's poll() over more than one descriptor waits on
 * an epoll set. A poll() asked not to wait while work_pending(ud) says
 * there is no work (lws rounds its next timer's wait down to whole
 * milliseconds, so a timer due within the millisecond makes it call poll()
 * without a wait until the timer is due) waits up to 1 ms for a
 * descriptor instead. work_pending may be NULL: then poll() never waits
 * when asked not to. Returns 0, or -1 when no set could be made (poll()
 * then stays the kernel's). */
int spark_poll_epoll_begin(spark_poll_work_fn work_pending, void *ud);

/* A timer due at once was just scheduled: the next poll() asked not to wait
 * does not wait. (lws runs the timers due when its pass over them began;
 * one scheduled inside that pass waits for the next turn, and lws asks
 * poll() not to wait for it.) Call it after every lws_sul_schedule() of a
 * timer due at once on the serving thread. */
void spark_poll_epoll_due_now(void);

/* Frees the set; this thread's poll() is the kernel's again. */
void spark_poll_epoll_end(void);

/* Whether poll() is answered from the set now: false before begin, after
 * end, and once the set gave up. */
bool spark_poll_epoll_active(void);

#endif
