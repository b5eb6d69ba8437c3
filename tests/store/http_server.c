/*
 * http_server.c - see http_server.h. Plain sockets and poll(); written for
 * the tests, not for speed: one connection at a time, closed after each reply.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HS_MAX_ROUTES 128

typedef struct hs_route_t {
    char           path[512];
    hs_mode        mode;
    unsigned char *data;
    size_t         len;
    char           target[512];
    int            status;
    int            requests;
    char           last_range[128];
} hs_route_t;

struct http_server {
    int             fd;
    int             port;
    int             wake[2];
    atomic_bool     stop;
    pthread_t       thread;
    pthread_mutex_t mu;
    hs_route_t      routes[HS_MAX_ROUTES];
    int             n_routes;
};

static void send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        c += w;
        n -= (size_t)w;
    }
}

static void send_fmt(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_fmt(int fd, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) send_all(fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Read the request head (up to the blank line); false on timeout or junk. */
static bool read_head(http_server *hs, int fd, char *buf, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 2000) <= 0 || atomic_load(&hs->stop)) return false;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0) return false;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n")) return true;
    }
    return false;
}

static void header(const char *head, const char *name, char *out, size_t cap) {
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            size_t len = strcspn(v, "\r\n");
            if (len >= cap) len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return;
        }
    }
}

static uint32_t fnv1a(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Wait until the client closes (or the server stops): a stalled transfer. */
static void wait_client_gone(http_server *hs, int fd) {
    for (int i = 0; i < 200 && !atomic_load(&hs->stop); i++) { /* at most 10 s */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, 50);
        if (r > 0) {
            char tmp[256];
            if (recv(fd, tmp, sizeof tmp, 0) <= 0) return;
        }
    }
}

static void serve(http_server *hs, int fd) {
    char head[16384];
    if (!read_head(hs, fd, head, sizeof head)) {
        send_fmt(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    char method[16] = "", path[1024] = "";
    if (sscanf(head, "%15s %1023s", method, path) != 2) return;
    char range[128], ifrange[128];
    header(head, "Range", range, sizeof range);
    header(head, "If-Range", ifrange, sizeof ifrange);

    pthread_mutex_lock(&hs->mu);
    hs_route_t *r = NULL;
    for (int i = 0; i < hs->n_routes; i++)
        if (strcmp(hs->routes[i].path, path) == 0) r = &hs->routes[i];
    hs_route_t snap;
    if (r) {
        r->requests++;
        snprintf(r->last_range, sizeof r->last_range, "%s", range);
        snap = *r;
        if (r->mode == HS_DROP_ONCE) r->mode = HS_OK;
        /* the blob may be replaced while we send: send from a private copy */
        snap.data = malloc(snap.len ? snap.len : 1);
        if (snap.data) memcpy(snap.data, r->data, snap.len);
    }
    pthread_mutex_unlock(&hs->mu);
    if (!r) {
        send_fmt(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
        return;
    }
    if (!snap.data) return;
    char etag[32];
    snprintf(etag, sizeof etag, "\"%08x\"", fnv1a(snap.data, snap.len));

    if (snap.mode == HS_REDIRECT) {
        send_fmt(fd, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                 snap.target);
    } else if (snap.mode == HS_STATUS) {
        send_fmt(fd, "HTTP/1.1 %d Status\r\nContent-Length: 5\r\nConnection: close\r\n\r\nerror", snap.status);
    } else {
        size_t start = 0;
        bool partial = false;
        unsigned long long a = 0;
        if (snap.mode != HS_NORANGE && range[0] && sscanf(range, "bytes=%llu-", &a) == 1 &&
            (!ifrange[0] || strcmp(ifrange, etag) == 0)) {
            if (a >= snap.len) {
                send_fmt(fd,
                         "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%zu\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n",
                         snap.len);
                free(snap.data);
                return;
            }
            start = (size_t)a;
            partial = true;
        }
        size_t body = snap.len - start;
        if (partial)
            send_fmt(fd,
                     "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\nContent-Range: bytes %zu-%zu/%zu\r\n"
                     "ETag: %s\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                     body, start, snap.len - 1, snap.len, etag);
        else
            send_fmt(fd,
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nETag: %s\r\nAccept-Ranges: bytes\r\n"
                     "Connection: close\r\n\r\n",
                     body, etag);
        if (strcmp(method, "HEAD") != 0) {
            if (snap.mode == HS_DROP_ONCE) {
                send_all(fd, snap.data + start, body / 2);
            } else if (snap.mode == HS_SLOW) {
                send_all(fd, snap.data + start, body < 16 ? body : 16);
                wait_client_gone(hs, fd);
            } else {
                send_all(fd, snap.data + start, body);
            }
        }
    }
    free(snap.data);
}

static void *loop(void *ud) {
    http_server *hs = ud;
    while (!atomic_load(&hs->stop)) {
        struct pollfd p[2] = { { .fd = hs->fd, .events = POLLIN }, { .fd = hs->wake[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (atomic_load(&hs->stop)) break;
        if (!(p[0].revents & POLLIN)) continue;
        int c = accept(hs->fd, NULL, NULL);
        if (c < 0) continue;
        serve(hs, c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

http_server *hs_start(void) {
    http_server *hs = calloc(1, sizeof *hs);
    if (!hs) return NULL;
    pthread_mutex_init(&hs->mu, NULL);
    hs->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (hs->fd < 0 || bind(hs->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(hs->fd, 16) != 0 ||
        getsockname(hs->fd, (struct sockaddr *)&a, &al) != 0 || pipe(hs->wake) != 0) {
        if (hs->fd >= 0) close(hs->fd);
        free(hs);
        return NULL;
    }
    hs->port = ntohs(a.sin_port);
    if (pthread_create(&hs->thread, NULL, loop, hs) != 0) {
        close(hs->fd);
        free(hs);
        return NULL;
    }
    return hs;
}

void hs_stop(http_server *hs) {
    if (!hs) return;
    atomic_store(&hs->stop, true);
    if (write(hs->wake[1], "x", 1) != 1) { /* the poll wakes on close too */ }
    pthread_join(hs->thread, NULL);
    close(hs->fd);
    close(hs->wake[0]);
    close(hs->wake[1]);
    for (int i = 0; i < hs->n_routes; i++) free(hs->routes[i].data);
    pthread_mutex_destroy(&hs->mu);
    free(hs);
}

int hs_port(const http_server *hs) { return hs->port; }

void hs_route(http_server *hs, const char *path, hs_mode mode, const void *data, size_t len, const char *target,
              int status) {
    pthread_mutex_lock(&hs->mu);
    hs_route_t *r = NULL;
    for (int i = 0; i < hs->n_routes; i++)
        if (strcmp(hs->routes[i].path, path) == 0) r = &hs->routes[i];
    if (!r && hs->n_routes < HS_MAX_ROUTES) {
        r = &hs->routes[hs->n_routes++];
        memset(r, 0, sizeof *r);
        snprintf(r->path, sizeof r->path, "%s", path);
    }
    if (r) {
        free(r->data);
        r->data = malloc(len ? len : 1);
        if (r->data && len) memcpy(r->data, data, len);
        r->len = r->data ? len : 0;
        r->mode = mode;
        r->status = status;
        snprintf(r->target, sizeof r->target, "%s", target ? target : "");
    }
    pthread_mutex_unlock(&hs->mu);
}

int hs_requests(http_server *hs, const char *path) {
    int n = 0;
    pthread_mutex_lock(&hs->mu);
    for (int i = 0; i < hs->n_routes; i++)
        if (strcmp(hs->routes[i].path, path) == 0) n = hs->routes[i].requests;
    pthread_mutex_unlock(&hs->mu);
    return n;
}

void hs_last_range(http_server *hs, const char *path, char *buf, size_t cap) {
    buf[0] = '\0';
    pthread_mutex_lock(&hs->mu);
    for (int i = 0; i < hs->n_routes; i++)
        if (strcmp(hs->routes[i].path, path) == 0) snprintf(buf, cap, "%s", hs->routes[i].last_range);
    pthread_mutex_unlock(&hs->mu);
}
