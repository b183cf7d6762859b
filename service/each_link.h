/*
 * each_link.h - walking an lws_dll2 list while removing from it.
 *
 * lws's own foreach macros break on both `continue` and removal of the
 * current link; this one allows both, which is what every list walk in the
 * runtime that frees or moves entries needs.
 */
#ifndef SPARK_EACH_LINK_H
#define SPARK_EACH_LINK_H

#include <libwebsockets.h>

#define EACH_LINK(d, owner)                                                                        \
    for (struct lws_dll2 *d = lws_dll2_get_head(owner), *d##_next = d ? d->next : NULL; d;         \
         d = d##_next, d##_next = d ? d->next : NULL)

#endif
