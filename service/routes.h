/*
 * routes.h - putting the apps' own routes (<spark/route.h>) on a server.
 */
#ifndef SPARK_ROUTES_H
#define SPARK_ROUTES_H

#include "http.h"
#include "session.h"

#include <spark/route.h>

/* Routes every registered route on `http`; those marked sign_in only while
 * `sessions` has sign-in on. Returns 0, or -1 on allocation failure. */
int spark_routes_install(spark_http *http, const spark_sessions *sessions);

/* Whether a POST comes from our own pages: browsers send Origin with one;
 * without it, only a browser's own word that it is same-origin counts.
 * Answers 403 and returns false otherwise. The runtime's own POST routes
 * ask it too. */
bool spark_routes_posted_by_us(spark_request *req);

#endif
