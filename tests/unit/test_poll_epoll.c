/*
 * test_poll_epoll.c - poll() answered from an epoll set reports what the
 * kernel's poll reports, through every change the serving loop makes to
 * its array: events switched, descriptors added, dropped, reordered,
 * closed, and their numbers reused.
 */
#include "poll_epoll.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAIRS 8

/* The array under test holds ends[i]; peers[i] is the other end. */
static int ends[PAIRS], peers[PAIRS];

static void open_pair(int i) {
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    ends[i] = sv[0];
    peers[i] = sv[1];
}

static void close_pair(int i) {
    close(ends[i]);
    if (peers[i] >= 0) close(peers[i]);
    ends[i] = peers[i] = -1;
}

static int kernel_poll(struct pollfd *fds, nfds_t n) {
    struct timespec zero = {0, 0};
    return ppoll(fds, n, &zero, NULL);
}

/* Both answers to the same array, compared entry by entry. */
static void expect_same_as_kernel(const struct pollfd *fds, nfds_t n, int step) {
    struct pollfd ours[2 * PAIRS], theirs[2 * PAIRS];
    memcpy(ours, fds, n * sizeof *fds);
    memcpy(theirs, fds, n * sizeof *fds);
    int a = poll(ours, n, 0);
    int b = kernel_poll(theirs, n);
    ck_assert_msg(a == b, "step %d: poll says %d ready, the kernel %d", step, a, b);
    for (nfds_t i = 0; i < n; i++)
        ck_assert_msg(ours[i].revents == theirs[i].revents,
                      "step %d, entry %u (fd %d, events %#x): revents %#x, the kernel's %#x", step,
                      (unsigned)i, fds[i].fd, (unsigned)fds[i].events, (unsigned)ours[i].revents,
                      (unsigned)theirs[i].revents);
}

static void drain(int fd) {
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static void fill(int fd) {
    static char buf[65536];
    while (write(fd, buf, sizeof buf) > 0)
        ;
}

START_TEST(answers_what_the_kernel_answers) {
    static const short choices[] = {POLLIN, POLLOUT, POLLIN | POLLOUT, 0};
    ck_assert_int_eq(spark_poll_epoll_begin(NULL, NULL), 0);
    /* Entry k of the array watches pair which[k] for events[k], or is
     * dropped (fd -1, which poll skips). */
    int which[PAIRS];
    short events[PAIRS];
    bool dropped[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        open_pair(i);
        which[i] = i;
        events[i] = POLLIN;
        dropped[i] = false;
    }
    srand(7);
    for (int step = 0; step < 4000; step++) {
        int i = rand() % PAIRS, k = rand() % PAIRS, m = rand() % PAIRS;
        switch (rand() % 9) {
        case 0: /* readable */
            if (peers[i] >= 0) ck_assert_int_eq(write(peers[i], "x", 1), 1);
            break;
        case 1:
            drain(ends[i]);
            break;
        case 2: /* what lws does when it wants to write, or stops */
            events[k] = choices[rand() % 4];
            break;
        case 3: /* closed and reopened: the numbers come back, same events */
            close_pair(i);
            open_pair(i);
            break;
        case 4: /* the peer hangs up */
            if (peers[i] >= 0) close(peers[i]);
            peers[i] = -1;
            break;
        case 5: /* a full socket is not writable */
            if (peers[i] >= 0) fill(ends[i]);
            break;
        case 6:
            if (peers[i] >= 0) drain(peers[i]);
            break;
        case 7: { /* lws moves its last entry into a closed one's place */
            int w = which[k];
            short e = events[k];
            bool d = dropped[k];
            which[k] = which[m], events[k] = events[m], dropped[k] = dropped[m];
            which[m] = w, events[m] = e, dropped[m] = d;
            break;
        }
        case 8: /* out of the array and back, open all the while */
            dropped[k] = !dropped[k];
            break;
        }
        struct pollfd fds[PAIRS];
        for (int e = 0; e < PAIRS; e++)
            fds[e] = (struct pollfd){.fd = dropped[e] ? -1 : ends[which[e]], .events = events[e]};
        expect_same_as_kernel(fds, PAIRS, step);
    }
    for (int i = 0; i < PAIRS; i++)
        close_pair(i);
    spark_poll_epoll_end();
}
END_TEST

/* Starts the set on pairs 0 and 1, both watched for reading, neither
 * readable yet. */
static void watch_two(struct pollfd fds[2]) {
    ck_assert_int_eq(spark_poll_epoll_begin(NULL, NULL), 0);
    open_pair(0);
    open_pair(1);
    fds[0] = (struct pollfd){.fd = ends[0], .events = POLLIN};
    fds[1] = (struct pollfd){.fd = ends[1], .events = POLLIN};
    ck_assert_int_eq(poll(fds, 2, 0), 0);
}

/* A closed socket leaves the kernel's set by itself, so a new one given
 * the same number, asking for the same events, must be added again. */
START_TEST(a_reused_number_is_watched) {
    struct pollfd fds[2];
    watch_two(fds);
    int old = ends[1];
    close(ends[1]);
    int sv[2]; /* the lowest free number: the one just closed */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    ck_assert_int_eq(sv[0], old);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(poll(fds, 2, 2000), 1);
    ck_assert_int_eq(fds[1].revents, POLLIN);
    close(sv[0]);
    close(sv[1]);
    close(peers[1]);
    close_pair(0);
    spark_poll_epoll_end();
}
END_TEST

/* A dup()ed socket stays in an epoll set after its number is closed (the
 * set holds the socket, which the other number keeps open): what the old
 * socket does must not show on the number's next owner. */
START_TEST(a_closed_dup_leaves_the_set) {
    ck_assert_int_eq(spark_poll_epoll_begin(NULL, NULL), 0);
    open_pair(0);
    open_pair(1);
    int watched = dup(ends[1]);
    ck_assert_int_ge(watched, 0);
    struct pollfd fds[2] = {{.fd = ends[0], .events = POLLIN}, {.fd = watched, .events = POLLIN}};
    ck_assert_int_eq(poll(fds, 2, 0), 0);
    close(watched);
    int sv[2]; /* the lowest free number: the one just closed */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    ck_assert_int_eq(sv[0], watched);
    ck_assert_int_eq(write(peers[1], "x", 1), 1); /* the old socket is readable */
    ck_assert_int_eq(poll(fds, 2, 0), 0);         /* the new one is not */
    ck_assert_int_eq(write(sv[1], "y", 1), 1);
    ck_assert_int_eq(poll(fds, 2, 2000), 1);
    ck_assert_int_eq(fds[1].revents, POLLIN);
    close(watched);
    close(sv[1]);
    close_pair(0);
    close_pair(1);
    spark_poll_epoll_end();
}
END_TEST

/* A descriptor dropped from the array while ready is not reported, and
 * the wait still lasts its timeout. */
START_TEST(a_dropped_descriptor_is_not_reported) {
    ck_assert_int_eq(spark_poll_epoll_begin(NULL, NULL), 0);
    open_pair(0);
    open_pair(1);
    open_pair(2);
    struct pollfd fds[3] = {{.fd = ends[0], .events = POLLIN},
                            {.fd = ends[1], .events = POLLIN},
                            {.fd = ends[2], .events = POLLIN}};
    ck_assert_int_eq(poll(fds, 3, 0), 0);
    ck_assert_int_eq(write(peers[2], "x", 1), 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(poll(fds, 2, 100), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    ck_assert_int_ge(ms, 95);
    ck_assert_int_eq(poll(fds, 3, 0), 1); /* back in the array, it is seen */
    ck_assert_int_eq(fds[2].revents, POLLIN);
    for (int i = 0; i < 3; i++)
        close_pair(i);
    spark_poll_epoll_end();
}
END_TEST

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool no_work(void *asked) {
    ++*(int *)asked;
    return false;
}

static bool work(void *asked) {
    ++*(int *)asked;
    return true;
}

/* watch_two, with a loop that never has work to do at once. */
static void watch_two_without_work(struct pollfd fds[2], int *asked) {
    watch_two(fds);
    ck_assert_int_eq(spark_poll_epoll_begin(no_work, asked), 0);
}

static void unwatch_two(void) {
    close_pair(0);
    close_pair(1);
    spark_poll_epoll_end();
}

/* lws asks poll() for no wait when its next timer is due within the
 * millisecond (it rounds its wait down). With no work pending, such a
 * call waits up to that millisecond for a descriptor, instead of coming
 * back at once to be called again; with work pending, it does not wait. */
START_TEST(no_wait_without_work_waits_the_millisecond) {
    struct pollfd fds[2];
    int asked = 0;
    watch_two_without_work(fds, &asked);
    long long t0 = now_us();
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(poll(fds, 2, 0), 0);
    ck_assert_int_ge(now_us() - t0, 2900); /* a millisecond each */
    ck_assert_int_eq(asked, 3);
    ck_assert_int_eq(write(peers[1], "x", 1), 1); /* a ready descriptor: no wait */
    ck_assert_int_eq(poll(fds, 2, 0), 1);
    ck_assert_int_eq(fds[1].revents, POLLIN);
    char byte;
    ck_assert_int_eq(read(ends[1], &byte, 1), 1);

    asked = 0;
    ck_assert_int_eq(spark_poll_epoll_begin(work, &asked), 0);
    t0 = now_us();
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(poll(fds, 2, 0), 0);
    ck_assert_int_lt(now_us() - t0, 150000); /* 200 ms if each waited */
    ck_assert_int_eq(asked, 200);
    unwatch_two();
}
END_TEST

/* A timer due now, scheduled inside lws's pass over its timers, runs on
 * the next turn, and lws asks poll() not to wait for it: once told
 * (spark_poll_epoll_due_now), that call does not wait, and the flag is
 * spent on it. */
START_TEST(a_timer_due_now_is_not_made_to_wait) {
    struct pollfd fds[2];
    int asked = 0;
    watch_two_without_work(fds, &asked);
    long long t0 = now_us();
    for (int i = 0; i < 200; i++) {
        spark_poll_epoll_due_now();
        ck_assert_int_eq(poll(fds, 2, 0), 0);
    }
    ck_assert_int_lt(now_us() - t0, 150000); /* 200 ms if each waited */
    t0 = now_us();
    ck_assert_int_eq(poll(fds, 2, 0), 0);
    ck_assert_int_ge(now_us() - t0, 900); /* spent: this one waits the millisecond */
    ck_assert_int_eq(asked, 1);           /* the 200 did not ask: they were told */
    unwatch_two();
}
END_TEST

/* A child forked from the serving thread shares the set's descriptor
 * (and so the set) with its parent: its polls must not change the set. */
START_TEST(a_forked_child_leaves_the_set_alone) {
    struct pollfd fds[2];
    watch_two(fds);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) { /* asks for writability on the same descriptors */
        struct pollfd out[2] = {{.fd = ends[0], .events = POLLOUT},
                                {.fd = ends[1], .events = POLLOUT}};
        _exit(poll(out, 2, 0) == 2 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(write(peers[0], "x", 1), 1);
    ck_assert_int_eq(poll(fds, 2, 2000), 1);
    ck_assert_int_eq(fds[0].revents, POLLIN);
    close_pair(0);
    close_pair(1);
    spark_poll_epoll_end();
}
END_TEST

static Suite *poll_epoll_suite(void) {
    Suite *s = suite_create("poll_epoll");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, answers_what_the_kernel_answers);
    tcase_add_test(tc, a_reused_number_is_watched);
    tcase_add_test(tc, a_closed_dup_leaves_the_set);
    tcase_add_test(tc, a_dropped_descriptor_is_not_reported);
    tcase_add_test(tc, a_forked_child_leaves_the_set_alone);
    tcase_add_test(tc, no_wait_without_work_waits_the_millisecond);
    tcase_add_test(tc, a_timer_due_now_is_not_made_to_wait);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(poll_epoll_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
