/*
 * log.c - structured logging to stderr in logfmt.
 *
 * Lines are built in one buffer and written with one write(2), so lines from
 * the several processes of a deployment never interleave mid-line.
 */
#include "log.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static spark_log_level threshold = SPARK_LOG_INFO;
static char instance_id[72] = "-";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void spark_log_init(spark_log_level level, const char *instance) {
    threshold = level;
    snprintf(instance_id, sizeof instance_id, "%s", instance ? instance : "-");
}

int spark_log_level_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

/* Appends `text` as a quoted logfmt value: quotes, backslashes and control
 * characters escaped, so a PostgreSQL error never breaks the line. */
static size_t append_quoted(char *buf, size_t at, size_t cap, const char *text) {
    if (at + 2 >= cap) return at;
    buf[at++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p && at + 3 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            buf[at++] = '\\';
            buf[at++] = (char)*p;
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            if (p[1] != '\0') buf[at++] = ' '; /* drop trailing newlines */
        } else if (*p < 0x20) {
            buf[at++] = '?';
        } else {
            buf[at++] = (char)*p;
        }
    }
    buf[at++] = '"';
    return at;
}

static size_t format_timestamp(char *buf, size_t cap) {
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, cap, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, cap - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    return n + (size_t)(m > 0 ? m : 0);
}

static void log_line(spark_log_level level, const char *event, const char *msg, const char *fmt,
                     va_list ap) {
    char line[2048];
    const size_t cap = sizeof line - 1; /* room for the newline */
    size_t at = format_timestamp(line, cap);
    int n = snprintf(line + at, cap - at, " level=%s instance=%s event=%s", level_names[level],
                     instance_id, event);
    at += n > 0 ? (size_t)n : 0;
    if (at < cap && fmt && *fmt) {
        line[at++] = ' ';
        size_t pairs = at;
        n = vsnprintf(line + at, cap - at, fmt, ap);
        at += n > 0 ? (size_t)n : 0;
        if (at > cap) at = cap;
        /* Values may come from clients: no one may start a line of their own. */
        for (size_t i = pairs; i < at; i++)
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) line[i] = '?';
    }
    if (at > cap) at = cap;
    if (msg && at + 6 < cap) {
        memcpy(line + at, " msg=", 5);
        at = append_quoted(line, at + 5, cap, msg);
    }
    line[at++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, at);
    (void)ignored;
}

const char *spark_log_value(char *buf, size_t cap, const char *value) {
    if (!value) return "-";
    bool plain = *value != '\0';
    for (const unsigned char *p = (const unsigned char *)value; *p && plain; p++)
        plain = *p > 0x20 && *p != '"' && *p != '=' && *p != 0x7f && *p != '\\';
    if (plain || cap < 3) return value;
    size_t at = append_quoted(buf, 0, cap - 1, value);
    buf[at < cap ? at : cap - 1] = '\0';
    return buf;
}

void spark_log(spark_log_level level, const char *event, const char *msg, const char *fmt, ...) {
    if (level < threshold) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, event, msg, fmt, ap);
    va_end(ap);
}

static void emit_lws(int lws_level, const char *line) {
    spark_log_level level = (lws_level & LLL_ERR) ? SPARK_LOG_ERROR : SPARK_LOG_WARN;
    /* lws prefixes its own timestamp; keep only the text after "] ". */
    const char *text = strstr(line, "] ");
    spark_log(level, "lws", text ? text + 2 : line, NULL);
}

void spark_log_capture_lws(void) { lws_set_log_level(LLL_ERR | LLL_WARN, emit_lws); }
