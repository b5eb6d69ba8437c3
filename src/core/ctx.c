/*
 * ctx.c - the pl_ctx: allocator hook and its wrappers, last-error text,
 * leveled logging (text or JSON lines) to stderr or a sink.
 */
#include <inttypes.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_int.h"

struct pl_ctx {
    pl_alloc_fn   alloc;
    void         *alloc_ud;
    _Atomic int   log_level;  /* pl_log_level; may change while other threads log */
    pl_log_format log_format;
    pl_log_fn     log_fn;
    void         *log_ud;
    pthread_mutex_t log_mu;   /* serializes log_fn calls */
    char          err[PL_CTX_ERR_CAP];
};

static const char *const level_names[PL_LOG_LEVEL_COUNT] = {
    [PL_LOG_LEVEL_DEBUG] = "debug",
    [PL_LOG_LEVEL_INFO]  = "info",
    [PL_LOG_LEVEL_WARN]  = "warn",
    [PL_LOG_LEVEL_ERROR] = "error",
    [PL_LOG_LEVEL_NONE]  = "none",
};

/* The default hook: the C library, with the hook's size-0-frees rule made
 * explicit (realloc(p, 0) is implementation-defined). */
static void *libc_alloc(void *ud, void *ptr, size_t size) {
    (void)ud;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    /* No C object may exceed PTRDIFF_MAX; refusing here also keeps a wild
     * size from reaching a sanitizer's allocator, which aborts on it. */
    if (size > PTRDIFF_MAX) return NULL;
    return realloc(ptr, size);
}

/* Cut a NUL-terminated string that filled buf[cap] so it ends in "..." without
 * splitting a UTF-8 character. */
static void mark_truncated(char *buf, size_t cap) {
    if (cap < 4) return;
    size_t keep = pl_utf8_trim(buf, cap - 4);
    memcpy(buf + keep, "...", 4);
}

pl_status pl_log_level_parse(const char *s, pl_log_level *out) {
    if (!s || !out) return PL_ERR_INVALID_ARG;
    for (int i = 0; i < PL_LOG_LEVEL_COUNT; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (pl_log_level)i;
            return PL_OK;
        }
    }
    return PL_ERR_INVALID_ARG;
}

pl_ctx_params pl_ctx_default_params(void) {
    pl_ctx_params p = {
        .alloc = NULL,
        .alloc_ud = NULL,
        .log_level = PL_LOG_LEVEL_INFO,
        .log_format = PL_LOG_FORMAT_TEXT,
        .log_fn = NULL,
        .log_ud = NULL,
    };
    /* getenv is fine here: params are made once, before threads start. */
    const char *lv = getenv("PARLEY_LOG");
    pl_log_level l;
    if (lv && pl_log_level_parse(lv, &l) == PL_OK) p.log_level = l;
    const char *fmt = getenv("PARLEY_LOG_FORMAT");
    if (fmt && strcasecmp(fmt, "json") == 0) p.log_format = PL_LOG_FORMAT_JSON;
    return p;
}

pl_status pl_ctx_init(pl_ctx **out, const pl_ctx_params *params) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    pl_ctx_params p = params ? *params : pl_ctx_default_params();
    if ((unsigned)p.log_level >= PL_LOG_LEVEL_COUNT || (unsigned)p.log_format >= PL_LOG_FORMAT_COUNT)
        return PL_ERR_INVALID_ARG;
    pl_alloc_fn alloc = p.alloc ? p.alloc : libc_alloc;
    pl_ctx *ctx = alloc(p.alloc_ud, NULL, sizeof *ctx);
    if (!ctx) return PL_ERR_NOMEM;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = alloc;
    ctx->alloc_ud = p.alloc_ud;
    atomic_init(&ctx->log_level, (int)p.log_level);
    ctx->log_format = p.log_format;
    ctx->log_fn = p.log_fn;
    ctx->log_ud = p.log_ud;
    if (pthread_mutex_init(&ctx->log_mu, NULL) != 0) {
        alloc(p.alloc_ud, ctx, 0);
        return PL_ERR_INTERNAL;
    }
    *out = ctx;
    return PL_OK;
}

void pl_ctx_free(pl_ctx *ctx) {
    if (!ctx) return;
    pthread_mutex_destroy(&ctx->log_mu);
    ctx->alloc(ctx->alloc_ud, ctx, 0);
}

/* ---- error text ---- */

const char *pl_ctx_last_error(const pl_ctx *ctx) {
    return ctx ? ctx->err : "";
}

void pl_ctx_clear_error(pl_ctx *ctx) {
    if (ctx) ctx->err[0] = '\0';
}

pl_status pl_ctx_err(pl_ctx *ctx, pl_status st, const char *fmt, ...) {
    if (!ctx) return st;
    /* Format into a temporary: the arguments may point into ctx->err. */
    char tmp[PL_CTX_ERR_CAP];
    if (!fmt) {
        snprintf(tmp, sizeof tmp, "%s", pl_status_str(st));
    } else {
        va_list ap;
        va_start(ap, fmt);
        int r = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (r < 0) snprintf(tmp, sizeof tmp, "%s (bad error format)", pl_status_str(st));
        else if ((size_t)r >= sizeof tmp) mark_truncated(tmp, sizeof tmp);
    }
    memcpy(ctx->err, tmp, sizeof tmp);
    return st;
}

/* ---- logging ---- */

void pl_ctx_set_log_level(pl_ctx *ctx, pl_log_level level) {
    if (ctx && (unsigned)level < PL_LOG_LEVEL_COUNT)
        atomic_store_explicit(&ctx->log_level, (int)level, memory_order_relaxed);
}

pl_log_level pl_ctx_log_level(const pl_ctx *ctx) {
    if (!ctx) return PL_LOG_LEVEL_INFO;
    return (pl_log_level)atomic_load_explicit(&((pl_ctx *)ctx)->log_level, memory_order_relaxed);
}

/* {"ts":<unix seconds>.<us>,"level":"warn","msg":"<escaped>"} into line[cap];
 * returns its length, leaving room for a '\n' and the NUL. */
static size_t format_json(char *line, size_t cap, pl_log_level level, const char *msg) {
    uint64_t us = pl_time_wall_us();
    int h = snprintf(line, cap, "{\"ts\":%" PRIu64 ".%06u,\"level\":\"%s\",\"msg\":\"",
                     us / 1000000u, (unsigned)(us % 1000000u), level_names[level]);
    size_t o = (size_t)h;
    const size_t tail = sizeof "...\"}\n"; /* "..." + closing + newline + NUL */
    size_t n = strlen(msg), used = 0;
    o += pl_json_escape(line + o, cap - o - tail + 1, msg, n, &used);
    if (used < n) {
        memcpy(line + o, "...", 3);
        o += 3;
    }
    memcpy(line + o, "\"}", 3);
    return o + 2;
}

void pl_logv(pl_ctx *ctx, pl_log_level level, const char *fmt, va_list ap) {
    if ((unsigned)level >= PL_LOG_LEVEL_NONE || !fmt) return;
    if (level < pl_ctx_log_level(ctx)) return;

    char msg[PL_LOG_MSG_MAX];
    int r = vsnprintf(msg, sizeof msg, fmt, ap);
    if (r < 0) snprintf(msg, sizeof msg, "(bad log format: %s)", fmt);
    else if ((size_t)r >= sizeof msg) mark_truncated(msg, sizeof msg);

    /* Worst case the JSON body is 6x the message (\u00XX); the escaper cuts it
     * to fit, still valid JSON. */
    char line[2 * PL_LOG_MSG_MAX];
    size_t len;
    pl_log_format format = ctx ? ctx->log_format : PL_LOG_FORMAT_TEXT;
    if (format == PL_LOG_FORMAT_JSON) {
        len = format_json(line, sizeof line, level, msg);
    } else if (ctx && ctx->log_fn) {
        len = 0; /* the sink gets the bare message */
    } else {
        int h = snprintf(line, sizeof line - 1, "parley: %s: %s", level_names[level], msg);
        len = h < 0 ? 0 : ((size_t)h < sizeof line - 1 ? (size_t)h : sizeof line - 2);
    }

    if (ctx && ctx->log_fn) {
        pthread_mutex_lock(&ctx->log_mu);
        ctx->log_fn(ctx->log_ud, level, format == PL_LOG_FORMAT_JSON ? line : msg);
        pthread_mutex_unlock(&ctx->log_mu);
        return;
    }
    line[len++] = '\n';
    /* One fwrite per line: stdio locks stderr for the call and stderr is
     * unbuffered, so concurrent messages never interleave. */
    fwrite(line, 1, len, stderr);
}

void pl_log(pl_ctx *ctx, pl_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pl_logv(ctx, level, fmt, ap);
    va_end(ap);
}

/* ---- allocation ---- */

static void *ctx_alloc(pl_ctx *ctx, void *ptr, size_t size) {
    return ctx ? ctx->alloc(ctx->alloc_ud, ptr, size) : libc_alloc(NULL, ptr, size);
}

void *pl_malloc(pl_ctx *ctx, size_t size) {
    return ctx_alloc(ctx, NULL, size ? size : 1);
}

void *pl_calloc(pl_ctx *ctx, size_t n, size_t size) {
    size_t total;
    if (!pl_size_mul(n, size, &total)) return NULL;
    if (total == 0) total = 1;
    void *p = ctx_alloc(ctx, NULL, total);
    if (p) memset(p, 0, total);
    return p;
}

void *pl_realloc(pl_ctx *ctx, void *ptr, size_t size) {
    if (size == 0) {
        if (ptr) ctx_alloc(ctx, ptr, 0);
        return NULL;
    }
    return ctx_alloc(ctx, ptr, size);
}

void pl_free(pl_ctx *ctx, void *ptr) {
    if (ptr) ctx_alloc(ctx, ptr, 0);
}

char *pl_strdup(pl_ctx *ctx, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = pl_malloc(ctx, n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}
