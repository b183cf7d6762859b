/*
 * spark.h - the entry point of the Spark runtime.
 *
 * A program that serves its own components and channels links libspark and
 * hands its command line to spark_main(), exactly as sparkd does:
 *
 *     #include <spark/spark.h>
 *     int main(int argc, char **argv) { return spark_main(argc, argv); }
 *
 * spark_main() parses the command (serve, migrate, --help, --version) and the
 * configuration from the environment and flags, then runs until the command
 * is done or, for serve, until SIGTERM/SIGINT.
 *
 * Serving runs on the calling thread. libspark defines poll() and close()
 * for the whole program: on that thread, while it serves, poll() over more
 * than one descriptor is answered from an epoll set, and close() takes a
 * descriptor out of it; elsewhere both are the system's (SPARK_EPOLL=0
 * turns the set off; docs/architecture.md says why).
 */
#ifndef SPARK_SPARK_H
#define SPARK_SPARK_H

#if defined(SPARK_STATIC)
#define SPARK_API
#else
#define SPARK_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Runs sparkd's command line. Returns the process exit status: 0 on
 * success, 1 on a runtime failure, 2 on bad usage or configuration. */
SPARK_API int spark_main(int argc, char **argv);

/* The runtime's version, "MAJOR.MINOR.PATCH". Static storage. */
SPARK_API const char *spark_version(void);

#ifdef __cplusplus
}
#endif

#endif
