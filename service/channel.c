/* channel.c - in progress. */
