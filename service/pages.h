/*
 * pages.h - the demo pages (/counter/:id, /todo/:list, /chat/:room),
 * rendered on the server with the components' state.
 */
#ifndef SPARK_PAGES_H
#define SPARK_PAGES_H

#include "component_internal.h"
#include "http.h"

/* Routes the demo pages on `http`, rendered by `components`. */
void spark_pages_register(spark_http *http, spark_components *components);

/* Answers (503) and forgets every page still waiting for its component:
 * called before the lws context goes, which owns their timers. */
void spark_pages_abandon(void);

#endif
