/*
 * frame.h - a message to send, serialized once and shared by reference.
 *
 * A room's message goes to every member in the same bytes. The rooms
 * module builds it once as a spark_frame; each connection's send queue
 * holds a reference, not a copy, and the last one out frees it. The bytes
 * start LWS_PRE into the buffer, so lws may write a frame header in front
 * of them; every holder would write the same header (same length, server
 * frames are unmasked), so sharing the headroom is safe on the one loop.
 *
 * A frame may also hold several messages already framed, each a whole
 * WebSocket text frame (spark_frame_join): a room's round of messages,
 * built once for every member it goes to, and written as it is.
 */
#ifndef SPARK_FRAME_H
#define SPARK_FRAME_H

#include <libwebsockets.h>
#include <stddef.h>

/* The most one connection hands lws in one write; a joined frame fits. */
#define SPARK_FRAME_WRITE_MAX 16384
/* The longest WebSocket frame header the server writes (RFC 6455, 5.2). */
#define SPARK_FRAME_HEADER_MAX 10

typedef struct spark_frame {
    unsigned refs;
    unsigned framed; /* 0: one message's text; n: n messages, each framed */
    size_t len;
    unsigned char buf[]; /* LWS_PRE of headroom, len bytes, a NUL */
} spark_frame;

/* A copy of `text` with one reference, or NULL when out of memory. */
spark_frame *spark_frame_new(const char *text, size_t len);

/* The `n` messages of `parts` (text frames, not framed), each as a final
 * unmasked text frame, in one frame of `framed` n; NULL when out of memory
 * or longer than SPARK_FRAME_WRITE_MAX. The parts keep their references. */
spark_frame *spark_frame_join(spark_frame *const *parts, size_t n);

/* Writes an unmasked frame header with first byte `b0` (FIN and opcode)
 * for a payload of `len` into h (SPARK_FRAME_HEADER_MAX bytes at most), as
 * lws writes it without extensions. Returns its length. */
size_t spark_frame_header(unsigned char *h, unsigned char b0, size_t len);

/* Takes one more reference; returns f. */
spark_frame *spark_frame_ref(spark_frame *f);

/* Drops a reference; the last frees the frame. NULL is ignored. */
void spark_frame_unref(spark_frame *f);

/* The text (or the framed messages), NUL-ended; f->len bytes without it. */
static inline const char *spark_frame_text(const spark_frame *f) {
    return (const char *)f->buf + LWS_PRE;
}

#endif
