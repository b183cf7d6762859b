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

#endif
