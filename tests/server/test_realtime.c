/*
 * test_realtime.c - the /v1/realtime WebSocket's transport (src/server/ws.c)
 * on an in-process server (ephemeral port, the tiny-qwen2 fixture), driven
 * by a raw client (ws_util.h) that can send any frame a bad client could.
 *
 * Independent expectations: RFC 6455's rules and codes (1002 protocol error,
 * 1009 too big, the accept value of its section 1.3 example), the HTTP codes
 * of its section 4.2.2 (426 with Sec-WebSocket-Version: 13), and the
 * server's params (the lowered frame timeout and idle interval) against the
 * wall clock, with wide margins (2 cores shared with other work).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>

#include "parley/server.h"
#include "server/http_util.h"
#include "server/server_int.h"
#include "server/ws_util.h"

#define MAX_CONNS 4 /* RT_MAX_CONNS in realtime.c */

static pl_ctx *ctx;
static char model_path[1024];

/* frame_ms, idle_ms: 0 for the defaults (20 s, 30 s). */
static pl_server *start(int frame_ms, int idle_ms, const char *api_key) {
    pl_server_params p = pl_server_default_params();
    p.model_path = model_path;
    p.port = 0;
    p.n_slots = 1;
    p.n_ctx = 128;
    p.n_threads = 1;
    p.api_key = api_key;
    if (frame_ms) p.realtime_frame_timeout_ms = frame_ms;
    if (idle_ms) p.realtime_idle_ms = idle_ms;
    pl_server *s = NULL;
    assert_int_equal(pl_server_start(ctx, &p, &s), PL_OK);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    return s;
}

static void assert_health(int port) {
    http_resp r = { 0 };
    http_do(port, "GET", "/health", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
}

/* The rest of an HTTP answer (the server closes after it). */
static void read_body(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = recv(fd, buf + n, cap - 1 - n, 0)) > 0) n += (size_t)k;
    buf[n] = 0;
}

/* Open a connection and take its session.created; retried while the server
 * answers 503 (a closed connection's slot is freed a moment after the
 * client saw the close frame). */
static int open_session(int port) {
    char resp[1024];
    for (int i = 0; i < 300; i++) {
        int fd = ws_open(port, resp, sizeof resp);
        if (strstr(resp, "HTTP/1.1 503")) {
            close(fd);
            usleep(10000);
            continue;
        }
        if (!strstr(resp, "HTTP/1.1 101")) fprintf(stderr, "%s\n", resp);
        assert_non_null(strstr(resp, "HTTP/1.1 101"));
        char *p;
        size_t len;
        assert_int_equal(ws_read_frame(fd, &p, &len), 1);
        assert_non_null(strstr(p, "\"type\":\"session.created\""));
        free(p);
        return fd;
    }
    fail_msg("the realtime slots were not freed");
    return -1;
}

/* Bad handshakes answer with the project's JSON error and the codes of RFC
 * 6455 4.2.2; the server goes on serving after each. */
static void test_handshake(void **state) {
    (void)state;
    pl_server *s = start(0, 0, NULL);
    int port = pl_server_port(s);
    static const struct {
        const char *what, *hdrs;
        int         status;
        const char *header; /* a header line the answer must have, or NULL */
    } cases[] = {
        { "no Sec-WebSocket-Key", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400,
          NULL },
        { "a key of 15 bytes",
          "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
          "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n",
          400, NULL },
        { "a key that is not base64",
          "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n",
          400, NULL },
        { "version 8",
          "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
          426, "Sec-WebSocket-Version: 13\r\n" },
        { "no version",
          "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", 426,
          "Sec-WebSocket-Version: 13\r\n" },
        { "Connection without the Upgrade token",
          "Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Version: 13\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
          400, NULL },
        { "a plain GET", "", 426, "Upgrade: websocket\r\n" },
    };
    char resp[2048], body[2048];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = ws_connect(port, cases[i].hdrs, resp, sizeof resp);
        read_body(fd, body, sizeof body);
        close(fd);
        char want[32];
        snprintf(want, sizeof want, "HTTP/1.1 %d ", cases[i].status);
        if (strncmp(resp, want, strlen(want)) != 0) fprintf(stderr, "%s: %s\n", cases[i].what, resp);
        assert_memory_equal(resp, want, strlen(want));
        if (cases[i].header) assert_non_null(strstr(resp, cases[i].header));
        cJSON *j = cJSON_Parse(body);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")));
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "type")->valuestring, "invalid_request_error");
        cJSON_Delete(j);
        assert_health(port);
    }
    /* a good one: the accept value of RFC 6455 1.3; tokens in any case and order */
    int fd = ws_connect(port,
                        "Upgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
                        resp, sizeof resp);
    assert_memory_equal(resp, "HTTP/1.1 101 ", 13);
    assert_non_null(strstr(resp, "\r\nSec-WebSocket-Accept: " WS_RFC_ACCEPT "\r\n"));
    close(fd);
    /* all slots taken: 503 for the next; one closes: served again */
    int fds[MAX_CONNS];
    for (int i = 0; i < MAX_CONNS; i++) fds[i] = open_session(port);
    fd = ws_open(port, resp, sizeof resp);
    read_body(fd, body, sizeof body);
    close(fd);
    assert_memory_equal(resp, "HTTP/1.1 503 ", 13);
    assert_non_null(strstr(body, "too_many_connections"));
    ws_send_raw(fds[0], 0x88, true, 2, "\x03\xe8", 2);
    assert_int_equal(ws_wait_close(fds[0], 10, NULL, NULL), 1000); /* the close is echoed */
    char extra;
    assert_int_equal(recv(fds[0], &extra, 1, 0), 0); /* then the TCP close: civetweb writes nothing after us */
    close(fds[0]);
    fds[0] = open_session(port);
    for (int i = 0; i < MAX_CONNS; i++) close(fds[i]);
    pl_server_free(s);

    /* with an API key: 401 without it, 101 with it */
    s = start(0, 0, "sekret");
    port = pl_server_port(s);
    fd = ws_open(port, resp, sizeof resp);
    read_body(fd, body, sizeof body);
    close(fd);
    assert_memory_equal(resp, "HTTP/1.1 401 ", 13);
    assert_non_null(strstr(body, "invalid_api_key"));
    fd = ws_connect(port, WS_GOOD_HEADERS "Authorization: Bearer sekret\r\n", resp, sizeof resp);
    assert_memory_equal(resp, "HTTP/1.1 101 ", 13);
    close(fd);
    pl_server_free(s);
}

/* Bad frames (RFC 6455 5.1, 5.2, 5.4, 5.5, 7.4): each fails its connection
 * with the RFC's code, without taking its payload as an event, and the
 * server goes on answering. */
static void test_bad_frames(void **state) {
    (void)state;
    pl_server *s = start(0, 0, NULL);
    int port = pl_server_port(s);
    static const char ev[] = "[1]"; /* a payload answered with an error event if it were taken */
    static const struct {
        const char *what;
        uint8_t     b0;
        bool        masked, hang_up, open_first; /* open_first: a fragmented text message is open before it */
        uint64_t    claimed; /* the length field; 0: the payload's */
        int         code;    /* close code; 0: a TCP close without a close frame */
    } cases[] = {
        { "unmasked text frame", 0x81, false, false, false, 0, 1002 },
        { "unmasked ping", 0x89, false, false, false, 0, 1002 },
        { "64-bit length with the top bit set", 0x81, true, false, false, (uint64_t)1 << 63, 1002 },
        { "64-bit length of 4 GiB", 0x81, true, false, false, (uint64_t)1 << 32, 1009 },
        { "length far past the bytes sent, then hang-up", 0x81, true, true, false, 100000, 0 },
        { "RSV1 set", 0x81 | 0x40, true, false, false, 0, 1002 },
        { "RSV2+RSV3 set", 0x81 | 0x30, true, false, false, 0, 1002 },
        { "reserved data opcode 0x3", 0x83, true, false, false, 0, 1002 },
        { "reserved control opcode 0xB", 0x8B, true, false, false, 0, 1002 },
        { "fragmented ping", 0x09, true, false, false, 0, 1002 },
        { "ping over 125 bytes", 0x89, true, false, false, 126, 1002 },
        { "continuation with no message open", 0x80, true, false, false, 0, 1002 },
        { "a new text frame inside a fragmented message", 0x81, true, false, true, 0, 1002 },
        { "close frame with a 1-byte payload", 0x88, true, false, false, 1, 1002 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = open_session(port);
        if (cases[i].open_first) ws_send_raw(fd, 0x01, true, 4, "[1,2", 4);
        ws_send_raw(fd, cases[i].b0, cases[i].masked, cases[i].claimed ? cases[i].claimed : sizeof ev - 1, ev,
                    sizeof ev - 1);
        if (cases[i].hang_up) shutdown(fd, SHUT_WR);
        bool saw = false;
        int code = ws_wait_close(fd, 10, "\"type\":\"error\"", &saw);
        if (code != cases[i].code) fprintf(stderr, "%s: closed with %d, expected %d\n", cases[i].what, code, cases[i].code);
        assert_int_equal(code, cases[i].code);
        assert_false(saw);
        close(fd);
        assert_health(port);
    }
    /* a text message that is not UTF-8 (RFC 6455 8.1): 1007, whole or across fragments;
     * the same bytes in a binary message are not checked (ignored, the session goes on) */
    static const char bad_utf8[] = "[\"\xC3\x28\"]", cut_lead[] = "[\"\xE2\x82";
    int fd = open_session(port);
    ws_send_raw(fd, 0x81, true, sizeof bad_utf8 - 1, bad_utf8, sizeof bad_utf8 - 1);
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 1007);
    close(fd);
    fd = open_session(port);
    ws_send_raw(fd, 0x01, true, sizeof cut_lead - 1, cut_lead, sizeof cut_lead - 1); /* a character split over frames: fine */
    ws_send_raw(fd, 0x80, true, 3, "\xAC\"]", 3);
    ws_send_raw(fd, 0x82, true, sizeof bad_utf8 - 1, bad_utf8, sizeof bad_utf8 - 1);
    ws_send_raw(fd, 0x89, true, 2, "ok", 2);
    char *pp;
    size_t pl;
    int op;
    while ((op = ws_read_frame(fd, &pp, &pl)) == 0x1) free(pp); /* the error event for "[\"€\"]" */
    assert_int_equal(op, 0xA); /* still open: the pong */
    free(pp);
    ws_send_raw(fd, 0x01, true, 3, "[\"\xE2", 3); /* ... but a message that ends inside one: 1007 */
    ws_send_raw(fd, 0x80, true, 2, "\"]", 2);
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 1007);
    close(fd);
    assert_health(port);
    /* a header claiming 100 MB: 1009 at once, from the header alone (the payload is never sent) */
    fd = open_session(port);
    double t0 = ws_now();
    ws_send_raw(fd, 0x81, true, 100u << 20, NULL, 0);
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 1009);
    assert_true(ws_now() - t0 < 5.0); /* the frame timeout is 20 s */
    close(fd);
    /* pings are answered with their payload, pongs and binary messages ignored, a close echoed */
    fd = open_session(port);
    ws_send_raw(fd, 0x8A, true, 3, "abc", 3); /* an unsolicited pong */
    ws_send_raw(fd, 0x82, true, 3, ev, 3);    /* binary: not an event */
    ws_send_raw(fd, 0x89, true, 2, "hi", 2);
    char *p;
    size_t len;
    assert_int_equal(ws_read_frame(fd, &p, &len), 0xA);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "hi", 2);
    free(p);
    ws_send_raw(fd, 0x88, true, 2, "\x0f\xa0", 2); /* 4000: an application's code */
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 4000);
    close(fd);
    assert_health(port);
    pl_server_free(s);
}

/* A fragmented text message is joined (with a ping between its fragments,
 * which RFC 6455 5.4 allows); fragments together are held to the 1 MiB
 * message limit, decided from the header of the one that would pass it. */
static void test_fragments(void **state) {
    (void)state;
    pl_server *s = start(0, 0, NULL);
    int port = pl_server_port(s);
    int fd = open_session(port);
    static const char a[] = "{\"type\":\"sess", b[] = "ion.upd", c[] = "ate\"}";
    ws_send_raw(fd, 0x01, true, sizeof a - 1, a, sizeof a - 1);
    ws_send_raw(fd, 0x00, true, sizeof b - 1, b, sizeof b - 1);
    ws_send_raw(fd, 0x89, true, 1, "x", 1);
    ws_send_raw(fd, 0x80, true, sizeof c - 1, c, sizeof c - 1);
    char *p;
    size_t len;
    assert_int_equal(ws_read_frame(fd, &p, &len), 0xA);
    free(p);
    assert_int_equal(ws_read_frame(fd, &p, &len), 1);
    if (!strstr(p, "session.updated")) fprintf(stderr, "%s\n", p);
    assert_non_null(strstr(p, "\"type\":\"session.updated\""));
    free(p);
    /* 600 KB + 600 KB: the second header takes the message past 1 MiB: 1009 before its payload */
    size_t half = 600000;
    char *big = malloc(half);
    memset(big, ' ', half);
    ws_send_raw(fd, 0x01, true, half, big, half);
    ws_send_raw(fd, 0x80, true, half, NULL, 0);
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 1009);
    close(fd);
    /* 600 KB + 400 KB fits: the message is taken (an error event: spaces are not JSON) */
    fd = open_session(port);
    ws_send_raw(fd, 0x01, true, half, big, half);
    ws_send_raw(fd, 0x80, true, 400000, big, 400000);
    assert_int_equal(ws_read_frame(fd, &p, &len), 1);
    assert_non_null(strstr(p, "\"type\":\"error\""));
    free(p);
    close(fd);
    free(big);
    assert_health(port);
    pl_server_free(s);
}

/* A header claiming 500 KB, 10 bytes, then silence: closed (1008) after the
 * frame timeout (lowered to 0.5 s here; 20 s by default), where civetweb
 * waited forever. All slots stalled at once, twice over: each round frees
 * them, so the next connections are served. */
static void test_stalled_frames(void **state) {
    (void)state;
    pl_server *s = start(500, 0, NULL);
    int port = pl_server_port(s);
    for (int round = 0; round < 2; round++) {
        int fds[MAX_CONNS];
        for (int i = 0; i < MAX_CONNS; i++) fds[i] = open_session(port);
        double t0 = ws_now();
        for (int i = 0; i < MAX_CONNS; i++) ws_send_raw(fds[i], 0x81, true, 500000, "0123456789", 10);
        for (int i = 0; i < MAX_CONNS; i++) {
            assert_int_equal(ws_wait_close(fds[i], 10, NULL, NULL), 1008);
            close(fds[i]);
        }
        double dt = ws_now() - t0;
        fprintf(stderr, "round %d: %d stalled connections closed after %.2f s\n", round, MAX_CONNS, dt);
        assert_true(dt >= 0.45 && dt < 5.0);
    }
    /* a fragmented message that stalls between its fragments: the deadline
     * runs from its first frame, pings in between do not extend it */
    int fd = open_session(port);
    double t0 = ws_now();
    ws_send_raw(fd, 0x01, true, 3, "[1,", 3);
    for (int i = 0; i < 4; i++) {
        usleep(200000);
        ws_send_raw(fd, 0x89, true, 0, NULL, 0);
    }
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 1008);
    double dt = ws_now() - t0;
    assert_true(dt >= 0.45 && dt < 5.0);
    close(fd);
    fd = open_session(port); /* still served */
    close(fd);
    pl_server_free(s);
}

/* An idle connection gets a ping after the idle interval (lowered to 0.4 s)
 * and is closed (1008) when it answers nothing for as long again; one that
 * answers stays open. */
static void test_idle_ping(void **state) {
    (void)state;
    pl_server *s = start(0, 400, NULL);
    int port = pl_server_port(s);
    double t0 = ws_now(); /* the server's idle clock starts after this (with the handshake) */
    int fd = open_session(port);
    char *p;
    size_t len;
    assert_int_equal(ws_read_frame(fd, &p, &len), 0x9);
    free(p);
    double dt = ws_now() - t0;
    assert_true(dt >= 0.38 && dt < 5.0);
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 1008);
    dt = ws_now() - t0;
    assert_true(dt >= 0.78 && dt < 10.0);
    close(fd);
    /* answering each ping keeps it open past several intervals */
    fd = open_session(port);
    t0 = ws_now();
    int pings = 0;
    while (ws_now() - t0 < 2.0) {
        int op = ws_read_frame(fd, &p, &len);
        assert_int_equal(op, 0x9);
        ws_send_raw(fd, 0x8A, true, len, p, len);
        free(p);
        pings++;
    }
    assert_true(pings >= 3);
    ws_send_raw(fd, 0x88, true, 2, "\x03\xe8", 2);
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 1000);
    close(fd);
    pl_server_free(s);
}

/* A listening socket on the loopback (or any) address of family; its port. */
static int listen_on(int family, bool any, int *port) {
    int fd = socket(family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET6) {
        int off = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off); /* any: a dual-stack listener */
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = any ? in6addr_any : in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4) != 0) {
        close(fd);
        return -1;
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* pl_srv_ws_find_socket on connections made here: the accepted socket is
 * found from the fields civetweb fills (remote_addr, remote_port,
 * server_port), and never the client's end, the listener or a guess. The
 * server itself cannot show IPv6 here: Debian's civetweb 1.15 is built
 * without it (mg_check_feature(8) is 0). */
static void test_find_socket(void **state) {
    (void)state;
    static const struct {
        int         lfamily, cfamily; /* listener, client */
        bool        any;
        const char *remote; /* the remote_addr string as civetweb would write it */
    } cases[] = {
        { AF_INET, AF_INET, false, "127.0.0.1" },
        { AF_INET6, AF_INET6, false, "::1" },
        { AF_INET6, AF_INET, true, "127.0.0.1" },        /* IPv4 client on a dual-stack listener */
        { AF_INET6, AF_INET, true, "::ffff:127.0.0.1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int port, lfd = listen_on(cases[i].lfamily, cases[i].any, &port);
        if (lfd < 0) {
            fprintf(stderr, "case %zu: no such listener here: skipped\n", i);
            continue;
        }
        int cfd = socket(cases[i].cfamily, SOCK_STREAM, 0);
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        socklen_t len;
        if (cases[i].cfamily == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            a->sin6_family = AF_INET6;
            a->sin6_port = htons((uint16_t)port);
            a->sin6_addr = in6addr_loopback;
            len = sizeof *a;
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            a->sin_family = AF_INET;
            a->sin_port = htons((uint16_t)port);
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            len = sizeof *a;
        }
        assert_int_equal(connect(cfd, (struct sockaddr *)&ss, len), 0);
        int sfd = accept(lfd, NULL, NULL);
        assert_true(sfd >= 0);
        len = sizeof ss;
        getsockname(cfd, (struct sockaddr *)&ss, &len);
        int cport = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
        struct mg_request_info ri;
        memset(&ri, 0, sizeof ri);
        snprintf(ri.remote_addr, sizeof ri.remote_addr, "%s", cases[i].remote);
        ri.remote_port = cport;
        ri.server_port = port;
        assert_int_equal(pl_srv_ws_find_socket(&ri), sfd);
        ri.remote_port = cport == 65535 ? 1 : cport + 1; /* no such peer */
        assert_int_equal(pl_srv_ws_find_socket(&ri), -1);
        ri.remote_port = cport;
        ri.server_port = port == 65535 ? 1 : port + 1; /* no such local port */
        assert_int_equal(pl_srv_ws_find_socket(&ri), -1);
        ri.server_port = port;
        snprintf(ri.remote_addr, sizeof ri.remote_addr, "%s", cases[i].lfamily == AF_INET ? "127.0.0.2" : "::2");
        assert_int_equal(pl_srv_ws_find_socket(&ri), -1);
        close(cfd);
        close(sfd);
        close(lfd);
    }
}

/* The accept value of RFC 6455 section 1.3's example; keys that are not
 * base64 of 16 bytes are refused. */
static void test_accept_key(void **state) {
    (void)state;
    char out[PL_SRV_WS_ACCEPT_LEN + 1];
    assert_true(pl_srv_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out));
    assert_string_equal(out, WS_RFC_ACCEPT);
    static const char *const bad[] = {
        "", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ===", "AAAAAAAAAAAAAAAAAAAAAAAA", /* 18 bytes */
        "dGhlIHNhbXBsZSBub25j\tQ==", "dGhlIHNhbXBs ZSBub25jQ==",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_false(pl_srv_ws_accept_key(bad[i], out));
    assert_false(pl_srv_ws_accept_key(NULL, out));
}

typedef struct stopper {
    pl_server *s;
    double     took;
} stopper;

static void *stop_main(void *arg) {
    stopper *st = arg;
    double t0 = ws_now();
    pl_server_stop(st->s);
    st->took = ws_now() - t0;
    return NULL;
}

/* A stop with realtime connections open (one idle, one with a frame half
 * sent): each gets 1001 promptly and the stop returns well within the drain
 * bound, with the pipelines freed (the sanitizer build checks for leaks). */
static void test_stop_closes(void **state) {
    (void)state;
    pl_server *s = start(0, 0, NULL);
    int port = pl_server_port(s);
    int a = open_session(port), b = open_session(port);
    ws_send_raw(b, 0x81, true, 1000, "{", 1);
    stopper st = { .s = s };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_main, &st), 0);
    assert_int_equal(ws_wait_close(a, 10, NULL, NULL), 1001);
    assert_int_equal(ws_wait_close(b, 10, NULL, NULL), 1001);
    close(a);
    close(b);
    pthread_join(t, NULL);
    fprintf(stderr, "stop with 2 realtime connections: %.2f s\n", st.took);
    assert_true(st.took < 4.0); /* drain_ms is 5 s */
    pl_server_free(s);
}

int main(void) {
    int fx = http_test_fixture("tiny-qwen2-f32.gguf", model_path, sizeof model_path);
    if (fx) return fx;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_WARN;
    if (pl_ctx_init(&ctx, &cp) != PL_OK) return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake),      cmocka_unit_test(test_bad_frames), cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_stalled_frames), cmocka_unit_test(test_idle_ping),  cmocka_unit_test(test_stop_closes),
        cmocka_unit_test(test_find_socket),    cmocka_unit_test(test_accept_key),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    pl_ctx_free(ctx);
    return rc;
}
