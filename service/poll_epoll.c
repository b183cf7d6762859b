/*
 * poll_epoll.c - the serving loop's poll() answered from an epoll set.
 *
 * lws 4.1 waits in poll() over every descriptor it has, on every turn of
 * its loop, and the kernel walks all of them each time (for a socket: a
 * wait-queue entry set up and taken down, and its state read) even when,
 * as on most turns, one or two are ready. With a few hundred connections
 * that walk was a quarter of an instance's CPU (docs/benchmarks.md).
 * Debian's lws is built without the external-poll hooks that would let a
 * loop of ours own the descriptors, and its epoll plugins cost more than
 * they saved. So the runtime defines poll() itself: a call made on the
 * serving thread between spark_poll_epoll_begin() and _end(), over more
 * than one descriptor, is answered from an epoll set that holds what the
 * array asks for; every other call is the kernel's poll (ppoll, which is
 * poll with a timespec and is not redefined).
 *
 * Keeping the set in step costs a pass over the array in memory and a
 * system call only where something changed: lws changes a socket's events
 * when it starts or stops wanting to write, adds a descriptor when it
 * accepts, and drops it when it closes. A closed descriptor's number can
 * come back with the next accept between two calls, with the same events,
 * which no comparison can tell; and a dup()ed socket (pg.c watches one)
 * stays in an epoll set after its number is closed. So close() is defined
 * here too: on the serving thread, a descriptor in the set leaves it
 * before the kernel closes it. A descriptor that leaves the array without
 * being closed is dropped from the set the first time it turns up ready.
 *
 * lws computes its wait from its next timer in microseconds and hands
 * poll() whole milliseconds, rounded down: a timer due in 1.4 ms is a
 * 1 ms wait, and then 0.4 ms of calls that do not wait at all, each a
 * turn of the loop with its pass over the array, until the timer is due.
 * With a round's timer every 50 ms, those turns were most of the loop's
 * (14,000 a second against 400 that found anything). So a call asked not
 * to wait, while lws has no work it must do at once, waits up to the
 * millisecond it rounded away: the timer runs up to 1 ms late instead.
 * Except a timer due now: lws runs the timers that were due when its pass
 * over them began, then polls, so one scheduled inside that pass (a
 * render's timer that queues the patches, whose write is a timer due at
 * once) is left for the next turn, and lws asks for no wait because of
 * it. Waiting then made every such write 1 ms late. Whoever schedules a
 * timer due at once says so (spark_poll_epoll_due_now), and the next call
 * does not wait.
 *
 * Anything unexpected (a descriptor twice in the array, one epoll cannot
 * watch, a failed allocation) ends it: the set is freed, the call and
 * every later one go to the kernel's poll, and a warning says why. Turned
 * off by SPARK_EPOLL=0.
 */
#include "poll_epoll.h"

#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* What the set knows of one descriptor number. */
typedef struct {
    uint32_t index; /* its place in the array when last seen there */
    short events;   /* what the set asks for it, while in_set */
    bool in_set;
} slot;

/* An array entry's descriptor and events, without its revents: what the
 * pass compares with the last call's entry at the same place. */
typedef uint64_t entry_key;

static struct {
    int epfd; /* -1: not answering from a set */
    slot *slots;
    size_t nslots; /* slots[fd] for 0 <= fd < nslots */
    struct epoll_event *ready;
    size_t nready;
    entry_key *last; /* the last call's array, entry by entry */
    size_t nlast;
    spark_poll_work_fn work_pending;
    void *work_ud;
    bool timer_due_now; /* spark_poll_epoll_due_now() since the last call */
} set = {.epfd = -1};

/* The thread whose calls the set answers (the serving loop's). */
static _Thread_local bool serving_thread;

static int kernel_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms) {
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    return ppoll(fds, nfds, timeout_ms < 0 ? NULL : &ts, NULL);
}

static void free_set(void) {
    if (set.epfd >= 0) syscall(SYS_close, set.epfd);
    free(set.slots);
    free(set.ready);
    free(set.last);
    set.epfd = -1;
    set.slots = NULL;
    set.ready = NULL;
    set.last = NULL;
    set.nslots = set.nready = set.nlast = 0;
}

static void give_up(const char *why) {
    char msg[200];
    snprintf(msg, sizeof msg, "%s; waiting with poll() from now on", why);
    spark_log(SPARK_LOG_WARN, "loop.epoll", msg, NULL);
    free_set();
}

/* A child forked from the serving thread has a copy of the set's
 * descriptor, which names the parent's set: its poll() is the kernel's. */
static void forget_in_child(void) {
    serving_thread = false;
    free_set();
}

int spark_poll_epoll_begin(spark_poll_work_fn work_pending, void *ud) {
    static bool fork_handled;
    set.work_pending = work_pending;
    set.work_ud = ud;
    set.timer_due_now = false;
    if (set.epfd >= 0) return 0;
    if (!fork_handled && pthread_atfork(NULL, NULL, forget_in_child)) return -1;
    fork_handled = true;
    set.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (set.epfd < 0) return -1;
    serving_thread = true;
    return 0;
}

void spark_poll_epoll_end(void) {
    serving_thread = false;
    set.work_pending = NULL;
    free_set();
}

bool spark_poll_epoll_active(void) { return set.epfd >= 0; }

static bool grow_slots(int fd) {
    size_t n = set.nslots ? set.nslots : 256;
    while (n <= (size_t)fd)
        n *= 2;
    slot *s = realloc(set.slots, n * sizeof *s);
    if (!s) return false;
    memset(s + set.nslots, 0, (n - set.nslots) * sizeof *s);
    set.slots = s;
    set.nslots = n;
    return true;
}

static entry_key key_of(const struct pollfd *p) {
    return (uint32_t)p->fd | (uint64_t)(uint16_t)p->events << 32;
}

/* Whether fds holds `fd` where its slot says (its place when last seen). */
static bool in_array(const struct pollfd *fds, nfds_t nfds, int fd) {
    const slot *s = &set.slots[fd];
    return s->index < nfds && fds[s->index].fd == fd;
}

/* An entry not as the last call left it: its slot learns its place, and
 * the set its events. Returns NULL, or why it could not. */
static const char *sync_entry(struct pollfd *fds, nfds_t nfds, nfds_t i) {
    int fd = fds[i].fd;
    if (fd < 0) return NULL; /* poll skips these */
    if ((size_t)fd >= set.nslots && !grow_slots(fd)) return "out of memory";
    slot *s = &set.slots[fd];
    if (s->index != i && in_array(fds, nfds, fd)) return "a descriptor twice in one array";
    s->index = (uint32_t)i;
    if (s->in_set && s->events == fds[i].events) return NULL;
    struct epoll_event ev = {.events = (uint16_t)fds[i].events, .data.fd = fd};
    if (epoll_ctl(set.epfd, s->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev))
        return strerror(errno);
    s->in_set = true;
    s->events = fds[i].events;
    return NULL;
}

/* Makes the set ask for what the array asks for, and clears the array's
 * revents. Between two calls lws changes a few entries at most, so the
 * pass compares each with the last call's entry at its place, and looks
 * further only where they differ. Returns NULL, or why it could not. */
static const char *sync_set(struct pollfd *fds, nfds_t nfds) {
    if (set.nready < nfds) {
        struct epoll_event *r = realloc(set.ready, nfds * sizeof *r);
        entry_key *l = r ? realloc(set.last, nfds * sizeof *l) : NULL;
        if (r) set.ready = r;
        if (!l) return "out of memory";
        set.last = l;
        set.nready = nfds;
    }
    for (nfds_t i = 0; i < nfds; i++) {
        entry_key key = key_of(&fds[i]);
        fds[i].revents = 0;
        if (i < set.nlast && set.last[i] == key) continue;
        const char *why = sync_entry(fds, nfds, i);
        if (why) return why;
        set.last[i] = key;
    }
    set.nlast = nfds;
    return NULL;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on the set and reports as poll() does. */
static int wait_set(struct pollfd *fds, nfds_t nfds, int timeout_ms) {
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    for (;;) {
        int n = epoll_wait(set.epfd, set.ready, (int)nfds, timeout_ms);
        if (n <= 0) return n;
        int reported = 0;
        for (int k = 0; k < n; k++) {
            int fd = set.ready[k].data.fd;
            slot *s = &set.slots[fd];
            if (!in_array(fds, nfds, fd)) { /* left the array but not closed */
                epoll_ctl(set.epfd, EPOLL_CTL_DEL, fd, NULL);
                s->in_set = false;
                continue;
            }
            struct pollfd *p = &fds[s->index];
            p->revents = (short)(set.ready[k].events & ((uint16_t)p->events | POLLERR | POLLHUP));
            reported += p->revents != 0;
        }
        if (reported || timeout_ms == 0) return reported;
        if (timeout_ms > 0 && (timeout_ms = (int)(deadline - now_ms())) <= 0) return 0;
    }
}

/* Exported from the library, so that lws and libpq bind their poll() and
 * close() here rather than in the C library. */
#define INTERPOSED __attribute__((visibility("default")))

void spark_poll_epoll_due_now(void) { set.timer_due_now = true; }

/* A call that need not return at once: lws asked for no wait only because
 * its next timer is due within the millisecond, and that timer is not one
 * due now. */
static bool timer_within_ms(int timeout_ms) {
    bool due_now = set.timer_due_now;
    set.timer_due_now = false;
    return timeout_ms == 0 && !due_now && set.work_pending && !set.work_pending(set.work_ud);
}

INTERPOSED int poll(struct pollfd *fds, nfds_t nfds, int timeout_ms) {
    if (!serving_thread || set.epfd < 0 || nfds < 2) return kernel_poll(fds, nfds, timeout_ms);
    if (timer_within_ms(timeout_ms)) timeout_ms = 1;
    const char *why = sync_set(fds, nfds);
    if (why) {
        give_up(why);
        return kernel_poll(fds, nfds, timeout_ms);
    }
    return wait_set(fds, nfds, timeout_ms);
}

INTERPOSED int close(int fd) {
    if (serving_thread && set.epfd >= 0 && fd >= 0 && (size_t)fd < set.nslots &&
        set.slots[fd].in_set) {
        slot *s = &set.slots[fd];
        epoll_ctl(set.epfd, EPOLL_CTL_DEL, fd, NULL);
        s->in_set = false;
        /* The number may come back at the same place with the same events;
         * the pass must not take it for the closed one. */
        if (s->index < set.nlast && (int)(uint32_t)set.last[s->index] == fd)
            set.last[s->index] = (entry_key)-1;
    }
    return (int)syscall(SYS_close, fd);
}
