/*
 * server.h - `sparkd serve`: the event loop and everything it serves.
 */
#ifndef SPARK_SERVER_H
#define SPARK_SERVER_H

#include "config.h"

/* Runs the server until SIGTERM or SIGINT, then stops gracefully. Returns
 * the process exit status (0 after a clean stop, 1 if it could not start). */
int spark_serve(const spark_config *cfg);

#endif
