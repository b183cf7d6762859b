/*
 * wsclient.h - a small blocking WebSocket client for the integration
 * suites: real sockets, real handshakes, masked frames, as a browser sends.
 * Every wait has a deadline; nothing sleeps.
 */
#ifndef SPARK_TEST_WSCLIENT_H
#define SPARK_TEST_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct it_ws it_ws;

enum { IT_WS_TEXT = 1, IT_WS_BINARY = 2, IT_WS_CLOSE = 8 };

/* Opens ws://127.0.0.1:port/target (target includes any query string).
 * `headers` (may be NULL) are extra request lines, each ending in \r\n.
 * Returns NULL if the upgrade fails; *status (may be NULL) is then the HTTP
 * status the server answered, or -1 if it could not be reached. */
it_ws *it_ws_open(int port, const char *target, const char *headers, int *status);

/* The same with "Authorization: Bearer <token>" (none when token is NULL)
 * and the `extra` header lines (may be NULL). */
it_ws *it_ws_open_bearer(int port, const char *target, const char *token, const char *extra,
                         int *status);

/* The same, as a client on a narrow link: 536-byte segments and a 4 KiB
 * receive buffer, so that the server's socket to it holds little and a
 * large write fills it. */
it_ws *it_ws_open_narrow(int port, const char *target);

int it_ws_send(it_ws *ws, int opcode, const void *data, size_t len);
int it_ws_send_text(it_ws *ws, const char *text);

/* The next text or binary message within `timeout_ms` (malloc'd,
 * NUL-terminated; the caller frees it), or NULL on timeout or close. After
 * a close, it_ws_close_code() tells the code (1006 if none was sent). */
char *it_ws_recv(it_ws *ws, int timeout_ms);

/* The next message containing `needle`, skipping others; NULL on timeout. */
char *it_ws_recv_match(it_ws *ws, const char *needle, int timeout_ms);

/* Every message up to and including the next one containing `needle`,
 * each followed by a newline (malloc'd); NULL on timeout. */
char *it_ws_recv_through(it_ws *ws, const char *needle, int timeout_ms);

/* Waits for the server to close; returns its close code, 1006 if the
 * connection dropped without one, or -1 on timeout. */
int it_ws_wait_close(it_ws *ws, int timeout_ms);
int it_ws_close_code(const it_ws *ws);
const char *it_ws_close_reason(const it_ws *ws);

/* Stops reading without closing (a client that never reads). */
int it_ws_fd(const it_ws *ws);

/* Sends a close frame (code 1000) and frees the client. */
void it_ws_close(it_ws *ws);

/* Frees the client by dropping the TCP connection, as a killed tab would. */
void it_ws_drop(it_ws *ws);

#endif
