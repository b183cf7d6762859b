/*
 * json_number.h - reading a json-c value as a number, the one rule for
 * every getter of the public API (json.c, component.c).
 *
 * Browsers send every spark-value-* attribute and input value as a
 * string, and states written by hand or by SQL may hold "42" where a
 * handler wrote 42: so a number is a JSON number or a string that is one
 * and nothing else ("42", "-7", "+3", "1.5e3"; not "", " 4", "4x", "inf",
 * "0x10"), in range.
 */
#ifndef SPARK_JSON_NUMBER_H
#define SPARK_JSON_NUMBER_H

#include <json-c/json.h>
#include <stdbool.h>

/* An integer: a JSON integer, or a string of an optional sign and decimal
 * digits that fits in a long long. A fraction is not an integer. */
bool spark_json_as_int(json_object *v, long long *out);

/* A finite number: a JSON number, or a string written as one. */
bool spark_json_as_double(json_object *v, double *out);

#endif
