/*
 * frame.h - a message to send, serialized once and shared by reference.
 *
 * A room's message goes to every member in the same bytes. The rooms
 * module builds it once as a spark_frame; each connection's send queue
 * holds a reference, not a copy, and the last one out frees it. The bytes
 * start LWS_PRE into the buffer, so lws may write a frame header in front
 * of them; every holder would write the same header (same length, server
 * frames are unmasked), so sharing the headroom is safe on the one loop.
 */
#ifndef SPARK_FRAME_H
#define SPARK_FRAME_H

#include <libwebsockets.h>
#include <stddef.h>

typedef struct spark_frame {
    unsigned refs;
    size_t len;
    unsigned char buf[]; /* LWS_PRE of headroom, len bytes of text, a NUL */
} spark_frame;

/* A copy of `text` with one reference, or NULL when out of memory. */
spark_frame *spark_frame_new(const char *text, size_t len);

/* Takes one more reference; returns f. */
spark_frame *spark_frame_ref(spark_frame *f);

/* Drops a reference; the last frees the frame. NULL is ignored. */
void spark_frame_unref(spark_frame *f);

/* The text, NUL-ended; f->len bytes without the NUL. */
static inline const char *spark_frame_text(const spark_frame *f) {
    return (const char *)f->buf + LWS_PRE;
}

#endif
