/*
 * ws.c - WebSocket (RFC 6455) for /v1/realtime: the opening handshake, the
 * 101 reply, a frame reader and frame writers on the connection's socket.
 *
 * A documented exception to "civetweb owns the sockets". civetweb 1.15's
 * WebSocket handler API can enforce neither RFC 6455 5.1 (a client frame
 * without the mask bit must fail the connection: civetweb never passes the
 * bit on) nor a bound on a stalled frame (a header claiming N bytes followed
 * by silence: civetweb allocates N and waits with no limit, whatever its
 * timeout and ping options), so 4 silent clients held every realtime slot.
 * No public civetweb function exposes the socket, and mg_read returns 0 after
 * a 101 (a GET's body length is 0). So realtime.c answers the upgrade in the
 * begin_request callback, finds the accepted socket here by its addresses
 * (pl_srv_ws_find_socket) and does all WebSocket I/O on that descriptor for
 * the life of the connection, inside the callback; civetweb closes it after
 * the callback returns. What this relies on:
 *  - plain HTTP only: a TLS request (is_ssl) is refused (501) by realtime.c,
 *    since the bytes on the socket would be TLS records;
 *  - the client waits for the 101 before it sends frames (RFC 6455 4.1:
 *    "MUST wait"; browsers do), so civetweb has buffered nothing past the
 *    request's headers;
 *  - civetweb does not touch the socket while the callback runs, and
 *    keep-alive is off (server.c), so it only closes it afterwards;
 *  - a descriptor whose peer address and port are the request's remote ones
 *    and whose local port is the request's server port is that connection
 *    (a TCP 4-tuple is unique); none or two different sockets: no guess, the
 *    caller answers 500.
 * Cost: one scan of /proc/self/fd per upgrade (two getsockname/getpeername
 * calls per descriptor; without /proc the range below RLIMIT_NOFILE, capped).
 * api.c uses pl_srv_ws_find_socket too, only to poll() a non-streaming
 * request's socket for the client's FIN while its answer is generated (it
 * reads and writes nothing there).
 *
 * Reader: poll() then recv(MSG_DONTWAIT) of exactly the bytes needed (header,
 * extended length + mask, payload). Every check that the header allows is
 * made from the header, before reading or allocating the payload: RSV bits
 * (no extension is negotiated), reserved opcodes, unmasked frames, control
 * frames fragmented or over 125 bytes, a 64-bit length with the top bit set,
 * a continuation with no message open or a new data frame inside one (all
 * 1002), and a frame that would take the message past max_message (1009); a
 * complete text message that is not UTF-8 is 1007.
 * Once a frame's first byte arrives (or a fragmented message's first frame),
 * the rest must come within frame_timeout_ms (else 1008); with nothing
 * pending, idle_ms of silence sends a ping and as long again without any
 * byte closes (1008). Pings are answered with pongs; a client close is
 * echoed. The message buffer grows geometrically and is kept: no allocation
 * per frame once warm.
 *
 * Writers: any thread (the voice pipeline writes events while the reader
 * reads); frames go out whole under a mutex, with send(MSG_NOSIGNAL) (a peer
 * that went away is an error, not a SIGPIPE). A write that makes no progress
 * for write_timeout_ms, or any write error, ends the connection.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <civetweb.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "server/server_int.h"

#define WS_SLICE_MS 100     /* poll slice: how soon a stop or a broken write is seen */
#define WS_LINGER_MS 1000   /* after our close: wait this long at most for the peer's end */
#define WS_SCAN_MAX 65536   /* descriptors scanned without /proc */

/* ---- handshake ---- */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool pl_srv_ws_accept_key(const char *key, char out[PL_SRV_WS_ACCEPT_LEN + 1]) {
    size_t n = key ? strlen(key) : 0;
    /* 16 bytes in base64: 22 characters and "==" */
    if (n != 24 || key[22] != '=' || key[23] != '=') return false;
    for (size_t i = 0; i < 22; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return false;
    }
    struct base64_decode_ctx b;
    uint8_t raw[BASE64_DECODE_LENGTH(24)];
    size_t rn = sizeof raw;
    base64_decode_init(&b);
    if (!base64_decode_update(&b, &rn, raw, n, key) || !base64_decode_final(&b) || rn != 16) return false;
    struct sha1_ctx h;
    uint8_t dig[SHA1_DIGEST_SIZE];
    sha1_init(&h);
    sha1_update(&h, n, (const uint8_t *)key);
    sha1_update(&h, sizeof ws_guid - 1, (const uint8_t *)ws_guid);
    sha1_digest(&h, sizeof dig, dig);
    base64_encode_raw(out, sizeof dig, dig); /* 28 characters */
    out[PL_SRV_WS_ACCEPT_LEN] = 0;
    return true;
}

/* The comma-separated header value v has the token tok (case-insensitive). */
static bool has_token(const char *v, const char *tok) {
    size_t tl = strlen(tok);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',') v++;
        const char *e = v;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > v && (t[-1] == ' ' || t[-1] == '\t')) t--;
        if ((size_t)(t - v) == tl && strncasecmp(v, tok, tl) == 0) return true;
        v = e;
    }
    return false;
}

int pl_srv_ws_handshake(struct mg_connection *conn, char accept[PL_SRV_WS_ACCEPT_LEN + 1], pl_srv_error *err,
                        const char **extra_headers) {
    *extra_headers = NULL;
    const char *up = mg_get_header(conn, "Upgrade");
    const char *co = mg_get_header(conn, "Connection");
    const char *ver = mg_get_header(conn, "Sec-WebSocket-Version");
    const char *key = mg_get_header(conn, "Sec-WebSocket-Key");
    if (!up) {
        /* a plain GET: say what the endpoint speaks (RFC 7231 6.5.15) */
        *extra_headers = "Upgrade: websocket\r\n";
        pl_srv_err(err, 426, "invalid_request_error", NULL, "/v1/realtime is a WebSocket: send Upgrade: websocket");
        return 426;
    }
    if (!has_token(up, "websocket") || !has_token(co, "upgrade")) {
        pl_srv_err(err, 400, "invalid_request_error", NULL,
                   "a WebSocket handshake needs Upgrade: websocket and Connection: Upgrade");
        return 400;
    }
    if (!ver || strcmp(ver, "13") != 0) { /* RFC 6455 4.2.2: say the version we speak */
        *extra_headers = "Sec-WebSocket-Version: 13\r\n";
        pl_srv_err(err, 426, "invalid_request_error", NULL, "Sec-WebSocket-Version must be 13");
        return 426;
    }
    if (!pl_srv_ws_accept_key(key, accept)) {
        pl_srv_err(err, 400, "invalid_request_error", NULL, "Sec-WebSocket-Key must be 16 bytes in base64");
        return 400;
    }
    return 0;
}

/* ---- the socket of a request ---- */

/* fd is a TCP socket with local port lport and peer (raddr, rport). */
static bool fd_matches(int fd, int lport, const char *raddr, int rport) {
    struct sockaddr_storage l, p;
    socklen_t ll = sizeof l, pl = sizeof p;
    if (getsockname(fd, (struct sockaddr *)&l, &ll) != 0) return false; /* ENOTSOCK for most descriptors */
    int lp = l.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&l)->sin_port)
           : l.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&l)->sin6_port) : -1;
    if (lp != lport || getpeername(fd, (struct sockaddr *)&p, &pl) != 0) return false;
    struct in_addr a4;
    struct in6_addr a6;
    bool is4 = inet_pton(AF_INET, raddr, &a4) == 1, is6 = !is4 && inet_pton(AF_INET6, raddr, &a6) == 1;
    if (p.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&p;
        return ntohs(s4->sin_port) == rport && is4 && memcmp(&s4->sin_addr, &a4, 4) == 0;
    }
    if (p.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&p;
        if (ntohs(s6->sin6_port) != rport) return false;
        if (is6) return memcmp(&s6->sin6_addr, &a6, 16) == 0;
        /* a dual-stack listener: an IPv4 client as ::ffff:a.b.c.d */
        return is4 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && memcmp(s6->sin6_addr.s6_addr + 12, &a4, 4) == 0;
    }
    return false;
}

/* Record a match; false when it is a second, different socket. */
static bool add_match(int fd, int *found) {
    if (*found < 0) {
        *found = fd;
        return true;
    }
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstat(*found, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int pl_srv_ws_find_socket(const struct mg_request_info *ri) {
    if (!ri || ri->server_port <= 0 || ri->remote_port <= 0) return -1;
    int found = -1;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int dfd = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);
            if (*end || end == e->d_name || fd < 0 || fd > INT32_MAX || fd == dfd) continue;
            if (fd_matches((int)fd, ri->server_port, ri->remote_addr, ri->remote_port) && !add_match((int)fd, &found)) {
                found = -2;
                break;
            }
        }
        closedir(d);
        return found < 0 ? -1 : found;
    }
    struct rlimit rl;
    long n = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < WS_SCAN_MAX ? (long)rl.rlim_cur : WS_SCAN_MAX;
    for (long fd = 0; fd < n; fd++)
        if (fd_matches((int)fd, ri->server_port, ri->remote_addr, ri->remote_port) && !add_match((int)fd, &found))
            return -1;
    return found;
}

/* ---- the connection ---- */

struct pl_srv_ws {
    pl_ctx          *ctx;
    int              fd;
    pl_srv_ws_params p;
    atomic_int       broken;     /* a write failed or timed out: the connection is over */
    /* writers (under mu) */
    pthread_mutex_t  mu;
    bool             close_sent;
    /* the reader's */
    uint8_t         *msg;        /* the message being assembled (+1 byte for a NUL) */
    size_t           msg_len, msg_cap;
    bool             msg_open;   /* a fragmented message is in progress */
    pl_srv_ws_op     msg_op;
    uint64_t         deadline;   /* pl_time_ns by which the started frame/message must be complete; 0: none */
    uint64_t         last_rx;    /* the last byte received */
    uint64_t         ping_at;    /* our unanswered ping; 0: none */
    uint16_t         end_code;   /* the close code sent or received; 1006: the connection just ended */
    const char      *why;
};

pl_status pl_srv_ws_init(pl_ctx *ctx, int fd, const pl_srv_ws_params *p, pl_srv_ws **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (fd < 0 || !p || p->max_message < 1 || p->frame_timeout_ms < 1 || p->idle_ms < 1 || p->write_timeout_ms < 1)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "ws: bad parameters");
    pl_srv_ws *w = pl_calloc(ctx, 1, sizeof *w);
    if (!w) return pl_ctx_err(ctx, PL_ERR_NOMEM, "ws: out of memory");
    w->ctx = ctx;
    w->fd = fd;
    w->p = *p;
    w->end_code = 1006;
    w->why = "";
    w->last_rx = pl_time_ns();
    pthread_mutex_init(&w->mu, NULL);
    *out = w;
    return PL_OK;
}

void pl_srv_ws_free(pl_srv_ws *w) {
    if (!w) return;
    pthread_mutex_destroy(&w->mu);
    pl_free(w->ctx, w->msg);
    pl_free(w->ctx, w);
}

static bool stopping(const pl_srv_ws *w) { return w->p.stopping && w->p.stopping(w->p.ud); }

/* Write the iovecs whole, or mark the connection broken. Under mu. */
static bool write_all(pl_srv_ws *w, struct iovec *iov, int n) {
    uint64_t last = pl_time_ns();
    while (n > 0 && !atomic_load(&w->broken)) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t k = sendmsg(w->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) break;
            /* the client does not read: wait for room, a slice at a time (a stop ends it) */
            if ((pl_time_ns() - last) / 1000000u >= (uint64_t)w->p.write_timeout_ms || stopping(w)) break;
            struct pollfd pf = { .fd = w->fd, .events = POLLOUT };
            (void)poll(&pf, 1, WS_SLICE_MS);
            continue;
        }
        last = pl_time_ns();
        size_t left = (size_t)k;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    if (n > 0) atomic_store(&w->broken, 1);
    return n == 0;
}

/* One server frame (FIN, unmasked, 7/16/64-bit length). Under mu. */
static bool send_frame_locked(pl_srv_ws *w, pl_srv_ws_op op, const void *data, size_t len) {
    uint8_t h[10];
    size_t hl = 0;
    h[hl++] = (uint8_t)(0x80 | op);
    if (len < 126) h[hl++] = (uint8_t)len;
    else if (len <= 0xFFFF) {
        h[hl++] = 126;
        h[hl++] = (uint8_t)(len >> 8);
        h[hl++] = (uint8_t)len;
    } else {
        h[hl++] = 127;
        for (int i = 7; i >= 0; i--) h[hl++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    struct iovec iov[2] = { { h, hl }, { (void *)data, len } };
    return write_all(w, iov, len ? 2 : 1);
}

bool pl_srv_ws_send(pl_srv_ws *w, pl_srv_ws_op op, const void *data, size_t len) {
    if (!w || op == PL_SRV_WS_OP_CLOSE || op == PL_SRV_WS_OP_CONT || (op >= PL_SRV_WS_OP_CLOSE && len > 125))
        return false;
    pthread_mutex_lock(&w->mu);
    bool ok = !w->close_sent && !atomic_load(&w->broken) && send_frame_locked(w, op, data, len);
    pthread_mutex_unlock(&w->mu);
    return ok;
}

void pl_srv_ws_close(pl_srv_ws *w, uint16_t code, const char *reason) {
    if (!w) return;
    uint8_t b[125];
    size_t n = 0;
    if (code) {
        b[0] = (uint8_t)(code >> 8);
        b[1] = (uint8_t)code;
        size_t rl = reason ? strlen(reason) : 0;
        if (rl > sizeof b - 2) rl = sizeof b - 2;
        if (rl) memcpy(b + 2, reason, rl); /* reason may be NULL */
        n = 2 + rl;
    }
    pthread_mutex_lock(&w->mu);
    if (!w->close_sent && !atomic_load(&w->broken)) {
        send_frame_locked(w, PL_SRV_WS_OP_CLOSE, b, n);
        w->end_code = code ? code : 1005;
    }
    w->close_sent = true; /* no data frames after a close (RFC 6455 5.5.1) */
    pthread_mutex_unlock(&w->mu);
}

bool pl_srv_ws_accept(pl_srv_ws *w, const char *accept) {
    char r[160];
    int n = snprintf(r, sizeof r,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    if (n < 0 || (size_t)n >= sizeof r) return false;
    struct iovec iov = { r, (size_t)n };
    pthread_mutex_lock(&w->mu);
    bool ok = write_all(w, &iov, 1);
    pthread_mutex_unlock(&w->mu);
    return ok;
}

uint16_t pl_srv_ws_end_code(const pl_srv_ws *w) { return w ? w->end_code : 0; }
const char *pl_srv_ws_end_reason(const pl_srv_ws *w) { return w ? w->why : ""; }

/* Fail the connection: a close frame with code, then the reader ends. */
static bool fail(pl_srv_ws *w, uint16_t code, const char *why) {
    w->why = why;
    pl_srv_ws_close(w, code, why);
    return false;
}

/* Exactly n bytes into dst. While no frame is started (deadline 0) the
 * connection is idle: ping after idle_ms, close after as long again with no
 * byte. The first byte starts the deadline. false: the connection is over
 * (a close frame sent where it could be). */
static bool rx(pl_srv_ws *w, uint8_t *dst, size_t n) {
    size_t got = 0;
    while (got < n) {
        if (atomic_load(&w->broken)) {
            w->why = "write failed";
            return false;
        }
        /* checked before every read, not only when the socket runs dry: a
         * client that keeps it full still meets the stop and the deadline */
        uint64_t now = pl_time_ns();
        if (stopping(w)) return fail(w, 1001, "server shutting down");
        if (w->deadline && now >= w->deadline) return fail(w, 1008, "frame timeout");
        ssize_t k = recv(w->fd, dst + got, n - got, MSG_DONTWAIT);
        if (k > 0) {
            got += (size_t)k;
            w->last_rx = now;
            w->ping_at = 0; /* any byte answers a ping */
            if (!w->deadline) w->deadline = now + (uint64_t)w->p.frame_timeout_ms * 1000000u;
            continue;
        }
        if (k == 0) {
            w->why = "the client hung up";
            return false;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            w->why = "read error";
            return false;
        }
        if (!w->deadline) {
            uint64_t idle = (uint64_t)w->p.idle_ms * 1000000u;
            if (w->ping_at && now - w->ping_at >= idle) return fail(w, 1008, "no answer to a ping");
            if (!w->ping_at && now - w->last_rx >= idle) {
                w->ping_at = now;
                pthread_mutex_lock(&w->mu);
                if (!w->close_sent && !atomic_load(&w->broken)) send_frame_locked(w, PL_SRV_WS_OP_PING, "", 0);
                pthread_mutex_unlock(&w->mu);
            }
        }
        struct pollfd pf = { .fd = w->fd, .events = POLLIN };
        (void)poll(&pf, 1, WS_SLICE_MS);
    }
    return true;
}

/* A close code a peer may send (RFC 6455 7.4.1, 7.4.2). */
static bool close_code_ok(unsigned c) {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

bool pl_srv_ws_read(pl_srv_ws *w, pl_srv_ws_op *op, const uint8_t **data, size_t *len) {
    for (;;) {
        if (!w->msg_open) w->deadline = 0; /* between messages: idle */
        uint8_t h[14];
        if (!rx(w, h, 2)) return false;
        bool fin = h[0] & 0x80, masked = h[1] & 0x80;
        unsigned o = h[0] & 0x0F, l7 = h[1] & 0x7F;
        bool control = o & 0x8;
        if (h[0] & 0x70) return fail(w, 1002, "RSV bits set");
        if ((o >= 0x3 && o <= 0x7) || o >= 0xB) return fail(w, 1002, "reserved opcode");
        if (!masked) return fail(w, 1002, "unmasked client frame"); /* RFC 6455 5.1 */
        if (control && (!fin || l7 > 125)) return fail(w, 1002, "bad control frame");
        size_t ext = l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
        if (!rx(w, h + 2, ext + 4)) return false;
        uint64_t plen = l7;
        if (ext) {
            plen = 0;
            for (size_t i = 0; i < ext; i++) plen = plen << 8 | h[2 + i];
            if (plen >> 63) return fail(w, 1002, "64-bit length with the top bit set");
        }
        const uint8_t *mask = h + 2 + ext;
        if (control) {
            uint8_t c[125];
            if (!rx(w, c, (size_t)plen)) return false;
            for (size_t i = 0; i < plen; i++) c[i] ^= mask[i & 3];
            if (o == PL_SRV_WS_OP_PING) {
                pthread_mutex_lock(&w->mu);
                if (!w->close_sent && !atomic_load(&w->broken)) send_frame_locked(w, PL_SRV_WS_OP_PONG, c, (size_t)plen);
                pthread_mutex_unlock(&w->mu);
            } else if (o == PL_SRV_WS_OP_CLOSE) {
                unsigned code = plen >= 2 ? (unsigned)c[0] << 8 | c[1] : 0;
                if (plen == 1 || (plen >= 2 && !close_code_ok(code))) return fail(w, 1002, "bad close frame");
                w->why = "the client closed";
                pl_srv_ws_close(w, (uint16_t)code, NULL); /* echo its code (RFC 6455 5.5.1) */
                w->end_code = code ? (uint16_t)code : 1005;
                return false;
            } /* a pong: its bytes already counted as an answer */
            continue;
        }
        if (o == PL_SRV_WS_OP_CONT && !w->msg_open) return fail(w, 1002, "continuation with no message open");
        if (o != PL_SRV_WS_OP_CONT && w->msg_open) return fail(w, 1002, "new message inside a fragmented one");
        if (o != PL_SRV_WS_OP_CONT) {
            w->msg_op = (pl_srv_ws_op)o;
            w->msg_len = 0;
        }
        /* from the header, before reading or allocating anything */
        if (plen > w->p.max_message - w->msg_len) return fail(w, 1009, "message too large");
        size_t need = w->msg_len + (size_t)plen + 1;
        if (need > w->msg_cap) {
            size_t cap = w->msg_cap ? w->msg_cap : 4096;
            while (cap < need) cap *= 2; /* need <= max_message + 1: cannot overflow */
            if (cap > w->p.max_message + 1) cap = w->p.max_message + 1; /* 1 MiB + 1, not 2 MiB */
            uint8_t *b = pl_realloc(w->ctx, w->msg, cap);
            if (!b) return fail(w, 1011, "out of memory");
            w->msg = b;
            w->msg_cap = cap;
        }
        uint8_t *dst = w->msg + w->msg_len;
        if (!rx(w, dst, (size_t)plen)) return false;
        for (size_t i = 0; i < plen; i++) dst[i] ^= mask[i & 3];
        w->msg_len += (size_t)plen;
        w->msg_open = !fin;
        if (fin) {
            /* a text message must be UTF-8 (RFC 6455 8.1: fail with 1007) */
            if (w->msg_op == PL_SRV_WS_OP_TEXT && !pl_utf8_valid((const char *)w->msg, w->msg_len))
                return fail(w, 1007, "text message is not UTF-8");
            w->msg[w->msg_len] = 0;
            *op = w->msg_op;
            *data = w->msg;
            *len = w->msg_len;
            return true;
        }
    }
}

void pl_srv_ws_linger(pl_srv_ws *w) {
    if (!w) return;
    /* our FIN after the close frame, then read what the peer still sends
     * until it closes too: closing with unread input would send a reset,
     * which can destroy the close frame before the client reads it */
    shutdown(w->fd, SHUT_WR);
    uint64_t end = pl_time_ns() + (uint64_t)WS_LINGER_MS * 1000000u;
    uint8_t junk[4096];
    while (pl_time_ns() < end) {
        ssize_t k = recv(w->fd, junk, sizeof junk, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
        if (k > 0) continue;
        struct pollfd pf = { .fd = w->fd, .events = POLLIN };
        (void)poll(&pf, 1, WS_SLICE_MS);
    }
}
