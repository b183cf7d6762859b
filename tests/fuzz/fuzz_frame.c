/*
 * fuzz_frame.c - the /spark frame parser (spark_msg_parse_dialect,
 * protocol.c), in both dialects: the first frame of a connection chooses.
 *
 * Any bytes: the parser must answer 0 or -1 with a code and a message.
 * A frame it accepts is written back as a frame of the dialect it chose
 * and parsed again, which must give the same message.
 */
#include "fuzz.h"
#include "protocol.h"

#include <json-c/json.h>

static void check_round_trip(const spark_msg *m, spark_dialect dialect) {
    static const char *const names[2][8] = {
        {"t", "cid", "v", "e", "d", "join", "event", "leave"},
        {"type", "component_id", "version", "event", "data", "component_join", "component_event",
         "component_leave"},
    };
    const char *const *n = names[dialect == SPARK_DIALECT_AZU];
    json_object *o = json_object_new_object();
    json_object_object_add(o, n[0], json_object_new_string(n[5 + m->kind]));
    json_object_object_add(o, n[1], json_object_new_string(m->cid));
    if (m->ref >= 0) json_object_object_add(o, "ref", json_object_new_int64(m->ref));
    if (m->kind == SPARK_MSG_JOIN && m->v >= 0)
        json_object_object_add(o, n[2], json_object_new_int64(m->v));
    if (m->kind == SPARK_MSG_EVENT) {
        json_object_object_add(o, n[3], json_object_new_string(m->event));
        json_object_object_add(o, n[4], json_object_get(m->data));
    }
    size_t len = 0;
    const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    spark_msg again;
    const char *code = NULL, *message = NULL;
    if (len <= SPARK_LIVE_MAX_FRAME) {
        spark_dialect d = SPARK_DIALECT_UNKNOWN;
        FUZZ_CHECK(spark_msg_parse_dialect(text, len, &d, &again, &code, &message) == 0);
        FUZZ_CHECK(d == dialect);
        FUZZ_CHECK(again.kind == m->kind && again.ref == m->ref && again.v == m->v);
        FUZZ_CHECK(strcmp(again.cid, m->cid) == 0 && strcmp(again.event, m->event) == 0);
        FUZZ_CHECK(m->kind != SPARK_MSG_EVENT || json_object_equal(again.data, m->data));
        spark_msg_clear(&again);
    }
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    spark_msg m;
    const char *code = NULL, *message = NULL;
    spark_dialect dialect = SPARK_DIALECT_UNKNOWN;
    if (spark_msg_parse_dialect((const char *)data, size, &dialect, &m, &code, &message) != 0) {
        FUZZ_CHECK(code && message && m.data == NULL);
        FUZZ_CHECK(m.ref >= -1);
        return 0;
    }
    FUZZ_CHECK(m.cid[0] != '\0' && strlen(m.cid) <= SPARK_MAX_CID_BYTES);
    FUZZ_CHECK(m.ref >= -1 && m.v >= -1);
    if (m.kind == SPARK_MSG_EVENT) {
        FUZZ_CHECK(m.event[0] != '\0');
        FUZZ_CHECK(json_object_is_type(m.data, json_type_object));
    } else {
        FUZZ_CHECK(m.data == NULL);
    }
    FUZZ_CHECK(dialect != SPARK_DIALECT_UNKNOWN);
    check_round_trip(&m, dialect);
    spark_msg_clear(&m);
    return 0;
}
