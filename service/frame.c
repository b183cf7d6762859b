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
    f->len = len;
    memcpy(f->buf + LWS_PRE, text, len);
    f->buf[LWS_PRE + len] = 0;
    return f;
}

spark_frame *spark_frame_ref(spark_frame *f) {
    f->refs++;
    return f;
}

void spark_frame_unref(spark_frame *f) {
    if (f && --f->refs == 0) free(f);
}
