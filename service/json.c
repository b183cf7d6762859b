/* json.c - in progress. */
