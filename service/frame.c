/*
 * frame.c - shared, reference-counted outgoing frames (frame.h). Kept
 * apart from the send queue (channel.c) and the rooms that build them
 * (rooms.c): both hold references, neither owns the frame alone.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

spark_frame *spark_frame_new(const char *text, size_t len) {
    spark_frame *f = malloc(sizeof *f + LWS_PRE + len + 1);
    if (!f) return NULL;
    f->refs = 1;
    f->framed = 0;
    f->len = len;
    memcpy(f->buf + LWS_PRE, text, len);
    f->buf[LWS_PRE + len] = 0;
    return f;
}

size_t spark_frame_header(unsigned char *h, unsigned char b0, size_t len) {
    h[0] = b0;
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    return SPARK_FRAME_HEADER_MAX;
}

#define WS_FIN_TEXT 0x81

spark_frame *spark_frame_join(spark_frame *const *parts, size_t n) {
    size_t len = 0;
    unsigned char h[SPARK_FRAME_HEADER_MAX];
    for (size_t i = 0; i < n; i++)
        len += spark_frame_header(h, WS_FIN_TEXT, parts[i]->len) + parts[i]->len;
    if (len > SPARK_FRAME_WRITE_MAX) return NULL;
    spark_frame *f = malloc(sizeof *f + LWS_PRE + len + 1);
    if (!f) return NULL;
    f->refs = 1;
    f->framed = (unsigned)n;
    f->len = len;
    unsigned char *out = f->buf + LWS_PRE;
    for (size_t i = 0; i < n; i++) {
        out += spark_frame_header(out, WS_FIN_TEXT, parts[i]->len);
        memcpy(out, spark_frame_text(parts[i]), parts[i]->len);
        out += parts[i]->len;
    }
    *out = 0;
    return f;
}

spark_frame *spark_frame_ref(spark_frame *f) {
    f->refs++;
    return f;
}

void spark_frame_unref(spark_frame *f) {
    if (f && --f->refs == 0) free(f);
}
