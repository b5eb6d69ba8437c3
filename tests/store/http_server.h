/*
 * http_server.h - a tiny HTTP/1.1 server for the store tests: one thread,
 * 127.0.0.1 on an ephemeral port, one request per connection.
 *
 * Routes are exact paths. Each serves a byte blob in a mode that lets a test
 * stage one network condition; any other path is a 404.
 */
#ifndef PL_TEST_HTTP_SERVER_H
#define PL_TEST_HTTP_SERVER_H

#include <stddef.h>

typedef enum hs_mode {
    HS_OK = 0,     /* 200, or 206 for "Range: bytes=N-" (416 past the end); ETag; honours If-Range */
    HS_DROP_ONCE,  /* first request: full headers, then half of the body, then close; later: HS_OK */
    HS_SLOW,       /* headers and 16 bytes of body, then silence until the client gives up */
    HS_NORANGE,    /* always 200 with the whole body (ignores Range) */
    HS_REDIRECT,   /* 302 to the route's target path */
    HS_STATUS,     /* answer with the route's status code and a short body */
} hs_mode;

typedef struct http_server http_server;

http_server *hs_start(void); /* NULL on failure */
void hs_stop(http_server *hs);
int hs_port(const http_server *hs);

/* Add or replace a route. data is copied. For HS_REDIRECT, target is the
 * Location path; for HS_STATUS, status is the code. */
void hs_route(http_server *hs, const char *path, hs_mode mode, const void *data, size_t len, const char *target,
              int status);

/* Requests seen for path, and the Range header of the latest one ("" if none). */
int hs_requests(http_server *hs, const char *path);
void hs_last_range(http_server *hs, const char *path, char *buf, size_t cap);

#endif
