/* rooms.c - in progress. */
