/*
 * history.h - a history page for the components of a type: every version
 * with who, when, which event and what changed; any past version rendered
 * by the component's own render; and a button that reverts to it.
 *
 *     SPARK_COMPONENT(poll, .render = render, .on_event = on_event);
 *     SPARK_HISTORY(poll);
 *
 * GET /history/poll/lunch then answers a whole HTML document about the
 * component poll:lunch: the component as it is now (live), a slider over
 * its versions with the chosen one rendered by the server, and the
 * versions newest first, 20 to a page (?n= up to 100, ?upto= pages back),
 * each with its actor, time, event and data and the JSON Patch from the
 * version before (docs/history.md gives the routes and the markup).
 *
 * The visitor needs the scope component:<id>, as for the component's page
 * (spark/page.h); reverting (POST /history/poll/lunch/revert, a form field
 * version=N) needs revert:<id> too ("revert:*" grants every component). A
 * revert is a new version, written by spark.revert with the visitor as
 * its actor, and reaches every viewer on every instance like any change.
 *
 * Everything is read from PostgreSQL without blocking the loop; a version
 * that does not parse or is out of range is 400, one the component does
 * not have 404, and a component without history 404.
 */
#ifndef SPARK_HISTORY_H
#define SPARK_HISTORY_H

#include <spark/spark.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Turns on the history page of the component type `type` ("poll"; the
 * string must outlive the program). Call before spark_main. Returns 0, or
 * -1 when the name is not a type name or too many types are enabled. */
SPARK_API int spark_history_enable(const char *type);

/* Turns it on at program start. */
#define SPARK_HISTORY(ident)                                                                       \
    __attribute__((constructor)) static void ident##_history_enable(void) {                        \
        spark_history_enable(#ident);                                                              \
    }

#ifdef __cplusplus
}
#endif

#endif
