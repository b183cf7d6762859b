/*
 * sparkd.c - the Spark server executable: the runtime's command line, with
 * the components and channels that are linked into it.
 */
#include <spark/spark.h>

int main(int argc, char **argv) { return spark_main(argc, argv); }
