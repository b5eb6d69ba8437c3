/*
 * http_util.h - a small libcurl client for the server tests: one request,
 * the status, the body and the headers; SSE streams split into events; and
 * an abort-after-N-events hook for disconnect tests. Header-only (static
 * functions) so each test executable takes what it uses.
 */
#ifndef PL_TEST_HTTP_UTIL_H
#define PL_TEST_HTTP_UTIL_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The fixture model a server test loads: $PL_FIXTURE_DIR/name into path. 0 when it is
 * readable; 77 (skip) without PL_FIXTURE_DIR; 1, with a line on stderr, when missing. */
static inline int http_test_fixture(const char *name, char *path, size_t cap) {
    const char *dir = getenv("PL_FIXTURE_DIR");
    if (!dir) return 77;
    snprintf(path, cap, "%s/%s", dir, name);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "no fixture %s\n", path);
        return 1;
    }
    return 0;
}

typedef struct http_resp {
    long   status;
    char  *body;
    size_t len, cap;
    char   headers[4096];
    size_t hlen;
    int    events;       /* "data: " events seen so far (streams) */
    int    abort_after;  /* > 0: abort the transfer once this many events arrived */
    atomic_int *abort_flag; /* non-NULL: abort once it is set (after at least one event) */
    int    curl_rc;
} http_resp;

static size_t http_write_cb(char *p, size_t sz, size_t n, void *ud) {
    http_resp *r = ud;
    size_t k = sz * n;
    if (r->len + k + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + k + 1) cap *= 2;
        char *d = realloc(r->body, cap);
        if (!d) return 0;
        r->body = d;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = 0;
    int ev = 0;
    for (const char *q = r->body; (q = strstr(q, "data: ")) != NULL; q += 6) ev++;
    r->events = ev;
    if (r->abort_after > 0 && ev >= r->abort_after) return 0;
    if (r->abort_flag && ev >= 1 && atomic_load(r->abort_flag)) return 0;
    return k;
}

static size_t http_header_cb(char *p, size_t sz, size_t n, void *ud) {
    http_resp *r = ud;
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = 0;
    }
    return k;
}

/* method "GET"/"POST"; body NULL for none; auth NULL for none. */
static void http_do(int port, const char *method, const char *path, const char *body, size_t body_len,
                    const char *auth, http_resp *r) {
    CURL *c = curl_easy_init();
    char url[512], authz[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth) {
        snprintf(authz, sizeof authz, "Authorization: Bearer %s", auth);
        h = curl_slist_append(h, authz);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    r->curl_rc = (int)curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body) {
        r->body = calloc(1, 1);
        r->cap = 1;
    }
}

static void http_resp_free(http_resp *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}

#endif
