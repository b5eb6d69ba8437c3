/*
 * pull.c - download a model into the store with libcurl: resume with HTTP
 * Range (and If-Range on the ETag), retries after a dropped connection or a
 * stall, SHA-256 (and the published SHA-1 for whisper.cpp files) computed
 * while the bytes arrive, fsync + atomic rename into place.
 *
 * Cost: one pass over the bytes for the hash as they are written; a resumed
 * download re-reads the .part once to rebuild the hash state. Memory is
 * constant (curl's buffer plus a 1 MiB read buffer when re-hashing).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "store_int.h"

#define MIB (1024.0 * 1024.0)

pl_pull_opts pl_pull_default_opts(void) {
    return (pl_pull_opts){
        .connect_timeout_s = 15,
        .stall_timeout_s = 30,
        .retries = 3,
        .retry_delay_ms = 1000,
    };
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- hashing state that survives retries ---- */

typedef struct hashes {
    EVP_MD_CTX *sha256, *sha1; /* sha1 only when a SHA-1 is published */
    uint64_t    bytes;         /* bytes fed so far (== the .part size when in sync) */
} hashes;

static bool hashes_reset(hashes *h) {
    h->bytes = 0;
    if (EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL) != 1) return false;
    return !h->sha1 || EVP_DigestInit_ex(h->sha1, EVP_sha1(), NULL) == 1;
}

static void hashes_update(hashes *h, const void *p, size_t n) {
    EVP_DigestUpdate(h->sha256, p, n);
    if (h->sha1) EVP_DigestUpdate(h->sha1, p, n);
    h->bytes += n;
}

/* ---- one download ---- */

typedef struct dl {
    pl_store           *s;
    const pl_pull_opts *o;
    pl_pull_target     *t;
    int                 fd;
    hashes              h;
    uint64_t            expect_size; /* published or recorded size, 0 unknown */
    uint64_t            offset;      /* .part size when this attempt started */
    uint64_t            written;     /* body bytes written by this attempt */
    uint64_t            total;       /* from this response, 0 unknown */
    uint64_t            fetched;     /* body bytes over all attempts (for the result) */
    char                etag[256];   /* from the partial's metadata (for If-Range) */
    int                 attempt;
    /* latest response's headers */
    long                status;
    bool                have_range, have_len;
    uint64_t            range_start, range_total, content_length;
    char                resp_etag[256];
    bool                body_started;
    /* a callback's verdict */
    pl_status           cb_status;
    bool                cb_restart;  /* truncate the .part and try again */
    bool                size_error;  /* remove the .part */
    int                 write_errno;
    /* progress */
    uint64_t            t_start, t_last_cb, t_rate, rate_bytes;
    double              rate;
} dl;

static void header_value(const char *line, size_t n, size_t name_len, char *out, size_t cap) {
    const char *v = line + name_len;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    size_t len = (size_t)(end - v);
    if (len >= cap) len = cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static bool parse_u64(const char *s, const char **end, uint64_t *out) {
    if (!isdigit((unsigned char)*s)) return false;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++)
        if (!pl_u64_mul(v, 10, &v) || !pl_u64_add(v, (uint64_t)(*s - '0'), &v)) return false;
    *end = s;
    *out = v;
    return true;
}

static size_t on_header(char *line, size_t sz, size_t nm, void *ud) {
    dl *d = ud;
    size_t n = sz * nm;
    char val[512];
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (redirects send several): forget the previous one */
        d->status = 0;
        d->have_range = d->have_len = false;
        d->range_start = d->range_total = d->content_length = 0;
        d->resp_etag[0] = '\0';
        const char *sp = memchr(line, ' ', n);
        uint64_t code = 0;
        const char *e;
        if (sp && parse_u64(sp + 1, &e, &code) && code < 1000) d->status = (long)code;
    } else if (n > 14 && strncasecmp(line, "content-range:", 14) == 0) {
        header_value(line, n, 14, val, sizeof val);
        /* "bytes A-B/T", or "bytes * /T" (without the space) on a 416 */
        const char *p = val, *e;
        if (strncasecmp(p, "bytes ", 6) == 0) {
            p += 6;
            uint64_t a = 0, b = 0, tot = 0;
            if (*p == '*') {
                if (p[1] == '/' && parse_u64(p + 2, &e, &tot)) {
                    d->range_total = tot;
                    d->range_start = UINT64_MAX;
                }
            } else if (parse_u64(p, &e, &a) && *e == '-' && parse_u64(e + 1, &e, &b) && *e == '/' && b >= a) {
                d->range_start = a;
                d->range_total = parse_u64(e + 1, &e, &tot) ? tot : 0;
                d->have_range = true;
            }
        }
    } else if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
        header_value(line, n, 15, val, sizeof val);
        const char *e;
        d->have_len = parse_u64(val, &e, &d->content_length) && *e == '\0';
    } else if (n > 5 && strncasecmp(line, "etag:", 5) == 0) {
        header_value(line, n, 5, d->resp_etag, sizeof d->resp_etag);
    }
    return n;
}

static void write_part_meta(dl *d) {
    pl_manifest m = { 0 };
    snprintf(m.name, sizeof m.name, "%s", d->t->name);
    snprintf(m.url, sizeof m.url, "%s", d->t->url);
    snprintf(m.etag, sizeof m.etag, "%s", d->resp_etag);
    m.size = d->total;
    char saved[sizeof d->s->err];
    memcpy(saved, d->s->err, sizeof saved);
    pl_manifest_write(d->s, d->t->part_meta, &m); /* best effort: resume still works without it */
    memcpy(d->s->err, saved, sizeof saved);
}

static int fail_cb(dl *d, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail_cb(dl *d, pl_status st, const char *fmt, ...) {
    d->cb_status = st;
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pl_store_errf(d->s, st, "%s", buf);
    return 0;
}

/* First body bytes of the final response: decide resume vs restart, check sizes and space. */
static bool start_body(dl *d) {
    uint64_t have = d->offset;
    if (d->status == 206) {
        if (!d->have_range || d->range_start != have) {
            d->cb_restart = true;
            pl_store_errf(d->s, PL_ERR_IO, "server resumed at the wrong byte offset");
            return false;
        }
        d->total = d->range_total;
    } else {
        if (have > 0) {
            /* the server ignored Range (or the file changed: If-Range): start over */
            pl_log(d->s->ctx, PL_LOG_LEVEL_INFO, "pull: server sent the whole file; restarting from the beginning");
            if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0 || !hashes_reset(&d->h)) {
                fail_cb(d, PL_ERR_IO, "%s: cannot truncate the partial file: %s", d->t->part, strerror(errno));
                return false;
            }
            d->offset = have = 0;
        }
        d->total = d->have_len ? d->content_length : 0;
    }
    if (d->expect_size && d->total && d->total != d->expect_size) {
        d->size_error = true;
        fail_cb(d, PL_ERR_FORMAT, "size mismatch for %s: the server has %" PRIu64 " bytes, expected %" PRIu64,
                d->t->name, d->total, d->expect_size);
        return false;
    }
    uint64_t total = d->total ? d->total : d->expect_size;
    struct statvfs vfs;
    if (total > have && fstatvfs(d->fd, &vfs) == 0) {
        uint64_t avail = 0;
        if (pl_u64_mul((uint64_t)vfs.f_bavail, (uint64_t)vfs.f_frsize, &avail) && avail < total - have) {
            fail_cb(d, PL_ERR_IO, "not enough disk space in %s: the download needs %.1f MiB more, %.1f MiB free",
                    d->s->dir, (double)(total - have) / MIB, (double)avail / MIB);
            return false;
        }
    }
    write_part_meta(d);
    return true;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
    dl *d = ud;
    size_t n = sz * nm;
    if (!d->body_started) {
        if (!start_body(d)) return 0;
        d->body_started = true;
    }
    uint64_t after = d->offset + d->written + n;
    uint64_t limit = d->expect_size ? d->expect_size : d->total;
    if (limit && after > limit) {
        d->size_error = true;
        return (size_t)fail_cb(d, PL_ERR_FORMAT, "size mismatch for %s: the server sent more than %" PRIu64 " bytes",
                               d->t->name, limit);
    }
    const char *q = p;
    size_t left = n;
    while (left > 0) {
        ssize_t w = d->o->write_fn ? d->o->write_fn(d->o->write_ud, d->fd, q, left) : write(d->fd, q, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            d->write_errno = w < 0 ? errno : EIO;
            d->cb_status = PL_ERR_IO;
            /* the hash covers whole chunks only: the next run re-hashes the .part from disk */
            return 0;
        }
        q += w;
        left -= (size_t)w;
    }
    hashes_update(&d->h, p, n);
    d->written += n;
    d->fetched += n;
    return n;
}

static void report(dl *d, bool finished) {
    if (!d->o->progress || !d->body_started) return;
    uint64_t now = pl_time_ns();
    uint64_t done = d->offset + d->written;
    if (!finished && now - d->t_last_cb < 100000000ull) return;
    d->t_last_cb = now;
    if (now - d->t_start < 2000000000ull) {
        /* the first seconds: the average since the attempt started */
        double dt = (double)(now - d->t_start) / 1e9;
        d->rate = dt > 0 ? (double)(done - d->offset) / dt : 0;
        d->t_rate = now;
        d->rate_bytes = done;
    } else if (now - d->t_rate >= 500000000ull || finished) {
        /* then a moving average over half-second samples, so the ETA follows the link */
        double dt = (double)(now - d->t_rate) / 1e9;
        double inst = dt > 0 ? (double)(done - d->rate_bytes) / dt : 0;
        d->rate = 0.7 * d->rate + 0.3 * inst;
        d->t_rate = now;
        d->rate_bytes = done;
    }
    uint64_t total = d->total ? d->total : d->expect_size;
    pl_pull_progress pr = {
        .done = done,
        .total = total,
        .resumed_from = d->offset,
        .rate_bps = d->rate,
        .eta_s = total >= done && d->rate > 1 ? (double)(total - done) / d->rate : -1,
        .attempt = d->attempt,
        .finished = finished,
    };
    d->o->progress(d->o->progress_ud, &pr);
}

static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    dl *d = ud;
    if (d->o->cancel && *d->o->cancel) return 1;
    report(d, false);
    return 0;
}

/* ---- helpers ---- */

static void url_host(const char *url, char *out, size_t cap) {
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/?#");
    const char *at = memchr(h, '@', n); /* never print credentials */
    if (at) {
        n -= (size_t)(at + 1 - h);
        h = at + 1;
    }
    if (n >= cap) n = cap - 1;
    memcpy(out, h, n);
    out[n] = '\0';
}

static bool is_loopback(const char *host) {
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost", 9) == 0 || strncmp(host, "[::1]", 5) == 0;
}

static int mkdir_p(const char *dir) {
    char tmp[PL_STORE_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Feed the existing .part into the hash so a resume can finish it. */
static pl_status rehash_part(dl *d) {
    if (!hashes_reset(&d->h)) return pl_store_errf(d->s, PL_ERR_NOMEM, "hash init failed");
    if (lseek(d->fd, 0, SEEK_SET) != 0) return pl_store_errf(d->s, PL_ERR_IO, "%s: %s", d->t->part, strerror(errno));
    size_t cap = 1u << 20;
    unsigned char *buf = pl_malloc(d->s->ctx, cap);
    if (!buf) return pl_store_errf(d->s, PL_ERR_NOMEM, "out of memory");
    pl_status st = PL_OK;
    for (;;) {
        ssize_t r = read(d->fd, buf, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { st = pl_store_errf(d->s, PL_ERR_IO, "%s: %s", d->t->part, strerror(errno)); break; }
        if (r == 0) break;
        hashes_update(&d->h, buf, (size_t)r);
    }
    pl_free(d->s->ctx, buf);
    return st;
}

typedef enum attempt_result { ATTEMPT_DONE, ATTEMPT_RETRY, ATTEMPT_FAIL } attempt_result;

static const char *write_error_text(int e) {
    switch (e) {
    case ENOSPC:
    case EDQUOT: return "disk full";
    case EFBIG: return "file too large (filesystem or RLIMIT_FSIZE limit)";
    default: return strerror(e);
    }
}

/* One HTTP request. On ATTEMPT_FAIL the store error is set and *st the status. */
static attempt_result attempt(dl *d, pl_status *st) {
    pl_store *s = d->s;
    char host[256], errbuf[CURL_ERROR_SIZE] = "";
    url_host(d->t->url, host, sizeof host);
    struct stat sb;
    if (fstat(d->fd, &sb) != 0) {
        *st = pl_store_errf(s, PL_ERR_IO, "%s: %s", d->t->part, strerror(errno));
        return ATTEMPT_FAIL;
    }
    d->offset = (uint64_t)sb.st_size;
    if (d->h.bytes != d->offset && (*st = rehash_part(d)) != PL_OK) return ATTEMPT_FAIL;
    if (lseek(d->fd, 0, SEEK_END) < 0) {
        *st = pl_store_errf(s, PL_ERR_IO, "%s: %s", d->t->part, strerror(errno));
        return ATTEMPT_FAIL;
    }
    d->written = 0;
    d->body_started = d->cb_restart = d->size_error = false;
    d->cb_status = PL_OK;
    d->write_errno = 0;
    d->status = 0;
    d->total = 0;
    d->t_start = d->t_rate = pl_time_ns();
    d->rate_bytes = d->offset;
    d->rate = 0;

    CURL *c = curl_easy_init();
    if (!c) {
        *st = pl_store_errf(s, PL_ERR_NOMEM, "curl_easy_init failed");
        return ATTEMPT_FAIL;
    }
    struct curl_slist *hdrs = NULL;
    char range[64], ifrange[300];
    bool https = strncasecmp(d->t->url, "https://", 8) == 0;
    curl_easy_setopt(c, CURLOPT_URL, d->t->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "parley/" PL_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(d->o->connect_timeout_s > 0 ? d->o->connect_timeout_s : 15));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(d->o->stall_timeout_s > 0 ? d->o->stall_timeout_s : 30));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    const char *token = d->o->token ? d->o->token : getenv("HF_TOKEN");
    if (token && *token && d->t->cat) {
        /* bearer auth is not forwarded when a redirect leaves the host */
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, token);
    }
    if (d->offset > 0) {
        snprintf(range, sizeof range, "%" PRIu64 "-", d->offset);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
        if (d->etag[0] && strncmp(d->etag, "W/", 2) != 0) {
            snprintf(ifrange, sizeof ifrange, "If-Range: %s", d->etag);
            hdrs = curl_slist_append(hdrs, ifrange);
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        }
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0, os_err = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_err);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (d->resp_etag[0]) snprintf(d->etag, sizeof d->etag, "%s", d->resp_etag);
    report(d, true);

    double got_mib = (double)(d->offset + d->written) / MIB;
    if (rc == CURLE_OK) {
        uint64_t have = d->offset + d->written;
        if (!d->body_started && d->offset > 0 && code == 206 && d->have_range) {
            /* an empty 206 is a server bug; start over */
            d->cb_restart = true;
        } else if (d->total && have < d->total) {
            pl_store_errf(s, PL_ERR_IO, "connection closed after %.1f of %.1f MiB", got_mib, (double)d->total / MIB);
            return ATTEMPT_RETRY;
        } else {
            return ATTEMPT_DONE;
        }
    }
    if (d->cb_restart) {
        if (ftruncate(d->fd, 0) != 0) {
            *st = pl_store_errf(s, PL_ERR_IO, "%s: %s", d->t->part, strerror(errno));
            return ATTEMPT_FAIL;
        }
        d->etag[0] = '\0';
        return ATTEMPT_RETRY;
    }
    if (rc == CURLE_WRITE_ERROR && d->cb_status != PL_OK) {
        *st = d->cb_status;
        if (d->write_errno)
            pl_store_errf(s, PL_ERR_IO, "%s writing %s: %.1f MiB kept; free some space and run the same pull to resume",
                          write_error_text(d->write_errno), d->t->part, got_mib);
        return ATTEMPT_FAIL;
    }
    switch (rc) {
    case CURLE_ABORTED_BY_CALLBACK:
        *st = pl_store_errf(s, PL_ERR_CANCELED, "interrupted: %.1f MiB kept in %s; run the same pull to resume",
                            got_mib, d->t->part);
        return ATTEMPT_FAIL;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        *st = pl_store_errf(s, PL_ERR_IO, "cannot resolve host '%s' (offline, or DNS is not working)", host);
        return ATTEMPT_FAIL;
    case CURLE_COULDNT_CONNECT:
        pl_store_errf(s, PL_ERR_IO, "cannot connect to %s (%s)", host,
                      os_err ? strerror((int)os_err) : errbuf[0] ? errbuf : "connection refused");
        return ATTEMPT_RETRY;
    case CURLE_OPERATION_TIMEDOUT:
        if (d->body_started || d->status)
            pl_store_errf(s, PL_ERR_TIMEOUT, "download from %s stalled: under 1 KiB/s for %d s (%.1f MiB kept)", host,
                          d->o->stall_timeout_s > 0 ? d->o->stall_timeout_s : 30, got_mib);
        else
            pl_store_errf(s, PL_ERR_TIMEOUT, "connecting to %s timed out", host);
        return ATTEMPT_RETRY;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        *st = pl_store_errf(s, PL_ERR_IO, "TLS error talking to %s: %s", host,
                            errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return ATTEMPT_FAIL;
    case CURLE_HTTP_RETURNED_ERROR:
        if (code == 416 && d->offset > 0) {
            /* asked past the end: the .part is complete if the server's size says so */
            if (d->range_start == UINT64_MAX && d->range_total == d->offset) return ATTEMPT_DONE;
            if (ftruncate(d->fd, 0) != 0) {
                *st = pl_store_errf(s, PL_ERR_IO, "%s: %s", d->t->part, strerror(errno));
                return ATTEMPT_FAIL;
            }
            pl_store_errf(s, PL_ERR_IO, "HTTP 416 from %s", host);
            return ATTEMPT_RETRY;
        }
        if (code == 404) {
            *st = pl_store_errf(s, PL_ERR_NOT_FOUND, "HTTP 404 Not Found: %s", d->t->url);
            return ATTEMPT_FAIL;
        }
        if (code == 401 || code == 403) {
            *st = pl_store_errf(s, PL_ERR_IO,
                                "HTTP %ld: access denied to %s (a gated or private repo needs a Hugging Face token "
                                "in $HF_TOKEN)",
                                code, d->t->url);
            return ATTEMPT_FAIL;
        }
        pl_store_errf(s, PL_ERR_IO, "HTTP %ld from %s", code, host);
        if (code == 408 || code == 429 || code >= 500) return ATTEMPT_RETRY;
        *st = PL_ERR_IO;
        return ATTEMPT_FAIL;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        pl_store_errf(s, PL_ERR_IO, "connection to %s dropped after %.1f MiB", host, got_mib);
        return ATTEMPT_RETRY;
    default:
        if (d->size_error || d->cb_status != PL_OK) {
            *st = d->cb_status != PL_OK ? d->cb_status : PL_ERR_FORMAT;
            return ATTEMPT_FAIL;
        }
        *st = pl_store_errf(s, PL_ERR_IO, "download from %s failed: %s", host,
                            errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return ATTEMPT_FAIL;
    }
}

/* ---- pull ---- */

static pl_status already_present(pl_store *s, const pl_pull_target *t, const pl_pull_opts *o, pl_pull_result *res,
                                 uint64_t size) {
    pl_manifest m;
    pl_status mst = pl_manifest_read(s, t->manifest, &m);
    if (mst != PL_OK && mst != PL_ERR_NOT_FOUND) return mst;
    bool have_manifest = mst == PL_OK;
    const char *want = o->sha256 ? o->sha256 : have_manifest && m.sha256[0] ? m.sha256 : t->cat ? t->cat->sha256 : NULL;
    uint64_t want_size = have_manifest && m.size ? m.size : t->cat ? t->cat->size : 0;
    if (want_size && size != want_size)
        return pl_store_errf(s, PL_ERR_FORMAT,
                             "%s is %" PRIu64 " bytes but should be %" PRIu64
                             "; run 'parley pull --force %s' to download it again",
                             t->path, size, want_size, t->name);
    char hex[65] = "";
    if (o->verify || !have_manifest) {
        if (pl_sha256_file(s->ctx, t->path, hex) != PL_OK)
            return pl_store_errf(s, PL_ERR_IO, "%s", pl_ctx_last_error(s->ctx));
        if (want && strcasecmp(hex, want) != 0)
            return pl_store_errf(s, PL_ERR_FORMAT,
                                 "%s is corrupt or was replaced: sha256 %s, expected %s; run 'parley pull --force %s'",
                                 t->path, hex, want, t->name);
    }
    if (!have_manifest) {
        /* a file put there by hand or a crash before the manifest: record it now */
        memset(&m, 0, sizeof m);
        snprintf(m.name, sizeof m.name, "%s", t->name);
        snprintf(m.url, sizeof m.url, "%s", t->url);
        snprintf(m.sha256, sizeof m.sha256, "%s", hex);
        snprintf(m.hash_source, sizeof m.hash_source, "%s", want ? "published" : "local");
        if (t->cat) {
            snprintf(m.quant, sizeof m.quant, "%s", t->cat->quant);
            snprintf(m.kind, sizeof m.kind, "%s", pl_model_kind_name(t->cat->kind));
        }
        m.size = size;
        pl_status st = pl_manifest_write(s, t->manifest, &m);
        if (st != PL_OK) return st;
    }
    if (res) {
        snprintf(res->sha256, sizeof res->sha256, "%s", have_manifest ? m.sha256 : hex);
        snprintf(res->hash_source, sizeof res->hash_source, "%s", m.hash_source);
        res->size = size;
        res->already_present = true;
    }
    return PL_OK;
}

pl_status pl_store_pull(pl_store *s, const char *spec, const pl_pull_opts *opts, pl_pull_result *res) {
    if (!s || !spec) return pl_store_errf(s, PL_ERR_INVALID_ARG, "pull: NULL argument");
    s->err[0] = '\0';
    pl_pull_opts o = opts ? *opts : pl_pull_default_opts();
    if (res) memset(res, 0, sizeof *res);
    if (o.sha256 && !pl_is_hex(o.sha256, 64))
        return pl_store_errf(s, PL_ERR_INVALID_ARG, "--sha256 needs 64 hex digits");
    const char *endpoint = o.endpoint ? o.endpoint : getenv("PARLEY_HF_ENDPOINT");
    if (!endpoint || !*endpoint) endpoint = PL_STORE_HF_ENDPOINT;
    pl_pull_target t;
    pl_status st = pl_store_target(s, spec, endpoint, o.name, &t);
    if (st != PL_OK) return st;
    if (res) {
        snprintf(res->name, sizeof res->name, "%s", t.name);
        snprintf(res->path, sizeof res->path, "%s", t.path);
        snprintf(res->url, sizeof res->url, "%s", t.url);
    }
    struct stat sb;
    if (stat(t.path, &sb) == 0 && S_ISREG(sb.st_mode) && !o.force)
        return already_present(s, &t, &o, res, (uint64_t)sb.st_size);

    /* what the file must hash to: the user's word, the catalog, or what we recorded before */
    char want[65] = "", hash_source[16] = "download";
    uint64_t expect_size = t.cat ? t.cat->size : 0;
    pl_manifest prev;
    if (o.sha256) {
        snprintf(want, sizeof want, "%s", o.sha256);
        snprintf(hash_source, sizeof hash_source, "user");
        expect_size = 0;
    } else if (t.cat && t.cat->sha256) {
        snprintf(want, sizeof want, "%s", t.cat->sha256);
        snprintf(hash_source, sizeof hash_source, "published");
    } else if (pl_manifest_read(s, t.manifest, &prev) == PL_OK && prev.sha256[0] && strcmp(prev.url, t.url) == 0) {
        snprintf(want, sizeof want, "%s", prev.sha256);
        snprintf(hash_source, sizeof hash_source, "%s", prev.hash_source[0] ? prev.hash_source : "download");
        if (!expect_size) expect_size = prev.size;
    }
    s->err[0] = '\0';

    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) return pl_store_errf(s, PL_ERR_INTERNAL, "libcurl initialisation failed");
    char host[256];
    url_host(t.url, host, sizeof host);
    if (strncasecmp(t.url, "http://", 7) == 0 && !is_loopback(host))
        pl_log(s->ctx, PL_LOG_LEVEL_WARN, "pull: %s is plain http; only the sha256 check protects the download", host);
    if (mkdir_p(s->dir) != 0) return pl_store_errf(s, PL_ERR_IO, "cannot create %s: %s", s->dir, strerror(errno));

    dl d = { .s = s, .o = &o, .t = &t, .fd = -1, .expect_size = expect_size };
    d.fd = open(t.part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d.fd < 0) return pl_store_errf(s, PL_ERR_IO, "%s: %s", t.part, strerror(errno));
    if (flock(d.fd, LOCK_EX | LOCK_NB) != 0) {
        close(d.fd);
        return pl_store_errf(s, PL_ERR_BUSY, "another parley pull is downloading %s", t.name);
    }
    d.h.sha256 = EVP_MD_CTX_new();
    d.h.sha1 = t.cat && t.cat->sha1 ? EVP_MD_CTX_new() : NULL;
    if (!d.h.sha256 || (t.cat && t.cat->sha1 && !d.h.sha1) || !hashes_reset(&d.h)) {
        st = pl_store_errf(s, PL_ERR_NOMEM, "hash init failed");
        goto out;
    }
    /* a partial from a different URL (or without metadata) cannot be resumed */
    pl_manifest pm;
    bool resumed = false;
    if (fstat(d.fd, &sb) != 0) sb.st_size = 0;
    if (sb.st_size > 0) {
        if (pl_manifest_read(s, t.part_meta, &pm) == PL_OK && strcmp(pm.url, t.url) == 0 &&
            (!expect_size || (uint64_t)sb.st_size <= expect_size)) {
            snprintf(d.etag, sizeof d.etag, "%s", pm.etag);
            if (!d.expect_size && pm.size) d.total = pm.size;
            resumed = true;
            if (res) res->resumed_from = (uint64_t)sb.st_size;
        } else if (ftruncate(d.fd, 0) != 0) {
            st = pl_store_errf(s, PL_ERR_IO, "%s: %s", t.part, strerror(errno));
            goto out;
        }
        s->err[0] = '\0';
    }

    int max_attempts = 1 + (o.retries > 0 ? o.retries : 0);
    attempt_result ar = ATTEMPT_FAIL;
    if (expect_size && resumed && (uint64_t)sb.st_size == expect_size) {
        ar = ATTEMPT_DONE; /* complete but never renamed (a crash): just verify it */
        if ((st = rehash_part(&d)) != PL_OK) goto out;
    }
    int attempts = 0;
    for (d.attempt = 1; ar != ATTEMPT_DONE && d.attempt <= max_attempts; d.attempt++) {
        attempts = d.attempt;
        ar = attempt(&d, &st);
        if (ar == ATTEMPT_FAIL) break;
        if (ar == ATTEMPT_RETRY) {
            st = PL_ERR_IO;
            if (strstr(s->err, "stalled") || strstr(s->err, "timed out")) st = PL_ERR_TIMEOUT;
            if (d.attempt < max_attempts) {
                pl_log(s->ctx, PL_LOG_LEVEL_WARN, "pull: %s; retrying (%d of %d)", s->err, d.attempt, max_attempts - 1);
                sleep_ms(d.attempt * (o.retry_delay_ms >= 0 ? o.retry_delay_ms : 1000));
                if (o.cancel && *o.cancel) {
                    st = pl_store_errf(s, PL_ERR_CANCELED, "interrupted; run the same pull to resume");
                    break;
                }
            }
        }
    }
    if (res) res->attempts = attempts;
    if (ar != ATTEMPT_DONE) {
        if (d.size_error) {
            unlink(t.part);
            unlink(t.part_meta);
            pl_store_errf(s, st, "%s; the download was removed", s->err);
        } else if (ar == ATTEMPT_RETRY && max_attempts > 1) {
            pl_store_errf(s, st, "%s (gave up after %d attempts%s)", s->err, max_attempts,
                          d.h.bytes ? "; run the same pull to resume" : "");
        }
        goto out;
    }

    /* complete: check size and hashes, then move into place */
    uint64_t size = d.h.bytes;
    unsigned char dig[32], dig1[20];
    unsigned int dl32 = 0, dl20 = 0;
    char hex[65], hex1[41] = "";
    EVP_DigestFinal_ex(d.h.sha256, dig, &dl32);
    pl_hex(dig, 32, hex);
    if (d.h.sha1) {
        EVP_DigestFinal_ex(d.h.sha1, dig1, &dl20);
        pl_hex(dig1, 20, hex1);
    }
    const char *bad = NULL;
    char expected[65] = "", got[65] = "";
    if (expect_size && size != expect_size) {
        st = pl_store_errf(s, PL_ERR_FORMAT, "size mismatch for %s: got %" PRIu64 " bytes, expected %" PRIu64
                                             "; the download was removed",
                           t.name, size, expect_size);
    } else if (want[0] && strcasecmp(want, hex) != 0) {
        bad = "sha256";
        snprintf(expected, sizeof expected, "%s", want);
        snprintf(got, sizeof got, "%s", hex);
    } else if (t.cat && t.cat->sha1 && strcasecmp(t.cat->sha1, hex1) != 0) {
        bad = "sha1";
        snprintf(expected, sizeof expected, "%s", t.cat->sha1);
        snprintf(got, sizeof got, "%s", hex1);
    }
    if (bad) {
        st = pl_store_errf(s, PL_ERR_FORMAT,
                           "%s mismatch for %s: expected %s (%s), got %s; the download was removed",
                           bad, t.name, expected,
                           strcmp(bad, "sha1") == 0 ? "published" : hash_source, got);
    }
    if (st != PL_OK && (bad || expect_size)) {
        unlink(t.part);
        unlink(t.part_meta);
        goto out;
    }
    st = PL_OK;
    if (fsync(d.fd) != 0) {
        st = pl_store_errf(s, PL_ERR_IO, "%s: %s while saving (%.1f MiB kept; run the same pull to finish)", t.part,
                           write_error_text(errno), (double)size / MIB);
        goto out;
    }
    if (rename(t.part, t.path) != 0) {
        st = pl_store_errf(s, PL_ERR_IO, "cannot move %s into place: %s", t.part, strerror(errno));
        goto out;
    }
    unlink(t.part_meta);
    pl_manifest m = { 0 };
    snprintf(m.name, sizeof m.name, "%s", t.name);
    snprintf(m.url, sizeof m.url, "%s", t.url);
    snprintf(m.sha256, sizeof m.sha256, "%s", hex);
    snprintf(m.sha1, sizeof m.sha1, "%s", hex1);
    snprintf(m.hash_source, sizeof m.hash_source, "%s", want[0] ? hash_source : "download");
    if (t.cat) {
        snprintf(m.quant, sizeof m.quant, "%s", t.cat->quant);
        snprintf(m.kind, sizeof m.kind, "%s", pl_model_kind_name(t.cat->kind));
    } else if (strcmp(t.ext, ".gguf") == 0) {
        pl_store_gguf_quant(s->ctx, t.path, m.quant, sizeof m.quant); /* so `list` need not open it */
    }
    m.size = size;
    st = pl_manifest_write(s, t.manifest, &m);
    fsync_dir(s->dir);
    if (res) {
        snprintf(res->sha256, sizeof res->sha256, "%s", hex);
        snprintf(res->hash_source, sizeof res->hash_source, "%s", m.hash_source);
        res->size = size;
    }
out:
    if (res) res->downloaded = d.fetched;
    if (st != PL_OK && d.fd >= 0 && fstat(d.fd, &sb) == 0 && sb.st_size == 0) {
        unlink(t.part); /* nothing worth resuming */
        unlink(t.part_meta);
    }
    EVP_MD_CTX_free(d.h.sha256);
    EVP_MD_CTX_free(d.h.sha1);
    if (d.fd >= 0) close(d.fd); /* releases the flock */
    return st;
}
