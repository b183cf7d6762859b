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

/* Frees the set; this thread's poll() is the kernel's again. */
void spark_poll_epoll_end(void);

/* Whether poll() is answered from the set now: false before begin, after
 * end, and once the set gave up. */
bool spark_poll_epoll_active(void);

#endif
