/*
 * ws_util.h - a raw WebSocket client for the /v1/realtime tests, written from
 * RFC 6455 independently of the server's ws.c: the opening handshake, frames
 * of any shape (masked or not, any first byte, a length field that may lie),
 * and reading the server's frames. Header-only (static inline functions, so a test need not use them all); include
 * after cmocka.h.
 */
#ifndef PL_TEST_WS_UTIL_H
#define PL_TEST_WS_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

static inline double ws_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline void ws_set_timeout(int fd, double seconds) {
    struct timeval tv = { .tv_sec = (time_t)seconds, .tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static inline bool ws_read_n(int fd, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, buf + got, n - got, 0);
        if (k <= 0) return false;
        got += (size_t)k;
    }
    return true;
}

/* One server frame: its opcode (-1 when the connection ended or the read
 * timed out), the payload malloc'd and NUL-terminated. A server frame is
 * never masked (RFC 6455 5.1). */
static inline int ws_read_frame(int fd, char **payload, size_t *len) {
    uint8_t h[2];
    *payload = NULL;
    *len = 0;
    if (!ws_read_n(fd, h, 2)) return -1;
    assert_int_equal(h[1] & 0x80, 0);
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        uint8_t e[2];
        if (!ws_read_n(fd, e, 2)) return -1;
        n = (uint64_t)e[0] << 8 | e[1];
    } else if (n == 127) {
        uint8_t e[8];
        if (!ws_read_n(fd, e, 8)) return -1;
        n = 0;
        for (int i = 0; i < 8; i++) n = n << 8 | e[i];
    }
    assert_true(n < (64u << 20));
    *payload = malloc((size_t)n + 1);
    if (!ws_read_n(fd, (uint8_t *)*payload, (size_t)n)) {
        free(*payload);
        *payload = NULL;
        return -1;
    }
    (*payload)[n] = 0;
    *len = (size_t)n;
    return h[0] & 0x0f;
}

/* A raw client frame: first byte b0 (FIN, RSV, opcode), the mask bit when
 * masked, a length field saying claimed (7, 16 or 64 bits as RFC 6455 5.2
 * has it), then the n payload bytes (masked when masked). The server may
 * close first: a failed send is not an error here. */
static inline void ws_send_raw(int fd, uint8_t b0, bool masked, uint64_t claimed, const void *data, size_t n) {
    uint8_t *f = malloc(14 + n);
    size_t hl = 0;
    f[hl++] = b0;
    uint8_t m = masked ? 0x80 : 0;
    if (claimed < 126) f[hl++] = (uint8_t)(m | claimed);
    else if (claimed < 65536) {
        f[hl++] = m | 126;
        f[hl++] = (uint8_t)(claimed >> 8);
        f[hl++] = (uint8_t)claimed;
    } else {
        f[hl++] = m | 127;
        for (int i = 7; i >= 0; i--) f[hl++] = (uint8_t)(claimed >> (8 * i));
    }
    static const uint8_t mask[4] = { 0xa1, 0xb2, 0xc3, 0xd4 };
    if (masked) {
        memcpy(f + hl, mask, 4);
        hl += 4;
    }
    for (size_t i = 0; i < n; i++) f[hl + i] = ((const uint8_t *)data)[i] ^ (masked ? mask[i & 3] : 0);
    size_t sent = 0;
    while (sent < hl + n) {
        ssize_t k = send(fd, f + sent, hl + n - sent, MSG_NOSIGNAL);
        if (k <= 0) break;
        sent += (size_t)k;
    }
    free(f);
}

/* A masked, final text frame. */
static inline void ws_send_text(int fd, const char *data, size_t n) { ws_send_raw(fd, 0x81, true, n, data, n); }

/* Connect to the loopback address of family (AF_INET, AF_INET6) and send "GET /v1/realtime" with the header lines hdrs (each
 * ending in CRLF); the response's header block (NUL-terminated) into resp.
 * Reads byte by byte so nothing past the headers is taken. */
static inline int ws_connect_on(int family, int port, const char *hdrs, char *resp, size_t cap) {
    int fd = socket(family, SOCK_STREAM, 0);
    if (family == AF_INET6) {
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
        a.sin6_addr = in6addr_loopback;
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    } else {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    }
    ws_set_timeout(fd, 60);
    char req[2048];
    int n = snprintf(req, sizeof req, "GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", hdrs);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t got = 0;
    while (got + 1 < cap && !(got >= 4 && memcmp(resp + got - 4, "\r\n\r\n", 4) == 0)) {
        if (recv(fd, resp + got, 1, 0) != 1) break;
        got++;
    }
    resp[got] = 0;
    return fd;
}

/* The same on 127.0.0.1. */
static inline int ws_connect(int port, const char *hdrs, char *resp, size_t cap) {
    return ws_connect_on(AF_INET, port, hdrs, resp, cap);
}

/* The handshake of RFC 6455 section 1.3, whose accept value is given there. */
#define WS_GOOD_HEADERS                                                                                              \
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                   \
    "Sec-WebSocket-Version: 13\r\n"
#define WS_RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static inline int ws_open(int port, char *resp, size_t cap) { return ws_connect(port, WS_GOOD_HEADERS, resp, cap); }

/* Read until the server closes: its close code (a close frame; the payload's
 * first two bytes; 1005 when it has none), 0 when the TCP connection ended
 * with no close frame, -2 when nothing happened for `seconds`. Other frames
 * on the way (events, pings) are skipped; a text frame containing want_text
 * sets *saw_text. */
static inline int ws_wait_close(int fd, double seconds, const char *want_text, bool *saw_text) {
    ws_set_timeout(fd, seconds);
    for (;;) {
        uint8_t h[1];
        ssize_t k = recv(fd, h, 1, MSG_PEEK);
        if (k == 0) return 0;
        if (k < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : 0; /* a reset is an end too */
        char *p;
        size_t n;
        int op = ws_read_frame(fd, &p, &n);
        if (op < 0) return 0;
        int code = -1;
        if (op == 8) code = n >= 2 ? ((uint8_t)p[0] << 8) | (uint8_t)p[1] : 1005;
        else if (op == 1 && want_text && strstr(p, want_text) && saw_text) *saw_text = true;
        free(p);
        if (code >= 0) return code;
    }
}

#endif
