/*
 * poll_epoll.h - the serving loop's poll() answered from an epoll set
 * (see poll_epoll.c for why and how).
 */
#ifndef SPARK_POLL_EPOLL_H
#define SPARK_POLL_EPOLL_H

#include <stdbool.h>

/* From now on, this thread's poll() over more than one descriptor waits on
 * an epoll set. Returns 0, or -1 when no set could be made (poll() then
 * stays the kernel's). */
int spark_poll_epoll_begin(void);

/* Frees the set; this thread's poll() is the kernel's again. */
void spark_poll_epoll_end(void);

/* Whether poll() is answered from the set now: false before begin, after
 * end, and once the set gave up. */
bool spark_poll_epoll_active(void);

#endif
