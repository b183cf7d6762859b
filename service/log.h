/*
 * log.h - structured logging: one logfmt line per significant event.
 *
 * Every line carries a timestamp, the level, the instance id and an event
 * name, then the caller's key=value pairs, then an optional free-text
 * message, quoted and escaped. Callers never pass secrets or tokens here.
 */
#ifndef SPARK_LOG_H
#define SPARK_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
    SPARK_LOG_DEBUG = 0,
    SPARK_LOG_INFO = 1,
    SPARK_LOG_WARN = 2,
    SPARK_LOG_ERROR = 3,
} spark_log_level;

/* Sets the threshold and the instance id stamped on every line (copied). */
void spark_log_init(spark_log_level level, const char *instance);

/* Parses "debug", "info", "warn" or "error". Returns -1 if unknown. */
int spark_log_level_parse(const char *name);

/* Writes one line to stderr if level passes the threshold. `msg` is free
 * text (may be NULL); `fmt` formats the structured pairs, e.g.
 * "port=%d conn=%s", whose values must not contain spaces. */
void spark_log(spark_log_level level, const char *event, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A value for a key=value pair that a client chose (a component id, a room):
 * as it is when it holds no space, quote, '=' or control character, else
 * quoted and escaped into `buf`. Control characters never reach a line
 * either way. */
const char *spark_log_value(char *buf, size_t cap, const char *value);

/* Routes libwebsockets' own log lines (warnings and errors) through here. */
void spark_log_capture_lws(void);

#endif
