/*
 * pages.h - one server's pages for components (<spark/page.h>): the
 * declared pages routed on its HTTP side, rendered by its components, and
 * the requests waiting for a component to load.
 */
#ifndef SPARK_PAGES_H
#define SPARK_PAGES_H

#include "component_internal.h"
#include "http.h"

#include <spark/page.h>

typedef struct spark_pages spark_pages;

/* Routes every registered page on `http`, rendered by `components` (both
 * must outlive the result). Returns NULL, logged, when a page names an
 * unregistered component type or on allocation failure. */
spark_pages *spark_pages_new(spark_http *http, spark_components *components);

/* Answers (503) every page still waiting for its component, and frees:
 * called before the lws context goes, which owns their timers. Takes NULL. */
void spark_pages_free(spark_pages *pages);

#endif
