/*
 * login.h - the demo sign-in: GET /login shows a form with a name field,
 * POST /login sets the session cookie and sends the browser back where it
 * came from, GET /logout clears the cookie. Served only with
 * SPARK_DEMO_LOGIN=1 and a signing key.
 */
#ifndef SPARK_LOGIN_H
#define SPARK_LOGIN_H

#include "http.h"
#include "session.h"

/* Registers the routes when login is enabled. Returns 0 or -1. */
int spark_login_routes(spark_http *http, const spark_sessions *sessions);

#endif
