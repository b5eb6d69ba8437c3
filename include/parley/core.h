/*
 * parley/core.h - status codes, context (allocator, logger, error text), arena,
 * clocks and timers, overflow-checked size arithmetic, CPU features, thread pool.
 *
 * Ownership: every object made by a pl_*_init() is owned by the caller and
 * released with the matching pl_*_free(); pl_*_free(NULL) is a no-op.
 *
 * Thread-safety:
 *  - pl_status_str(), the size helpers, pl_time_ns() and pl_cpu_*() are
 *    thread-safe (pl_cpu_best_level() reads $PL_CPU on each call: do not
 *    setenv() it while other threads run).
 *  - A pl_ctx may be shared by threads for allocation and logging (both are
 *    thread-safe). Its last-error text is not: a constructor that fails writes
 *    it, so give each thread its own ctx or serialize constructors when you
 *    need to read it back.
 *  - pl_arena and pl_timer are single-thread objects.
 *  - pl_pool_run() is called from one thread at a time (the pool's owner).
 */
#ifndef PARLEY_CORE_H
#define PARLEY_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes: one list, everything else is generated from it ---- */

/* X(NAME, value, "message") - 0 is success, every error is negative.
 * Append new codes at the end; never renumber (values are part of the ABI). */
#define PL_STATUS_LIST(X)                                                   \
    X(OK,               0,  "ok")                                           \
    X(ERR_INVALID_ARG, -1,  "invalid argument")                             \
    X(ERR_NOMEM,       -2,  "out of memory")                                \
    X(ERR_IO,          -3,  "input/output error")                           \
    X(ERR_NOT_FOUND,   -4,  "not found")                                    \
    X(ERR_FORMAT,      -5,  "malformed file or data")                       \
    X(ERR_UNSUPPORTED, -6,  "unsupported")                                  \
    X(ERR_OVERFLOW,    -7,  "size overflow")                                \
    X(ERR_RANGE,       -8,  "value out of range")                           \
    X(ERR_TYPE,        -9,  "wrong type")                                   \
    X(ERR_EXISTS,      -10, "already exists")                               \
    X(ERR_TIMEOUT,     -11, "timed out")                                    \
    X(ERR_CANCELED,    -12, "canceled")                                     \
    X(ERR_BUSY,        -13, "busy")                                         \
    X(ERR_STATE,       -14, "invalid state for this call")                  \
    X(ERR_INTERNAL,    -15, "internal error")                               \
    X(ERR_CONTEXT_FULL,-16, "context full")

typedef enum pl_status {
#define PL_X_(name, val, msg) PL_##name = (val),
    PL_STATUS_LIST(PL_X_)
#undef PL_X_
} pl_status;

/* Static text for a status ("ok", "out of memory", ...). Unknown -> "unknown status". */
const char *pl_status_str(pl_status st);
/* The enum name without the PL_ prefix ("ERR_INVALID_ARG"). Unknown -> "ERR_UNKNOWN". */
const char *pl_status_name(pl_status st);

/* ---- logging ---- */

typedef enum pl_log_level {
    PL_LOG_LEVEL_DEBUG = 0,
    PL_LOG_LEVEL_INFO,
    PL_LOG_LEVEL_WARN,
    PL_LOG_LEVEL_ERROR,
    PL_LOG_LEVEL_NONE, /* as a threshold: log nothing */
    PL_LOG_LEVEL_COUNT
} pl_log_level;

typedef enum pl_log_format {
    PL_LOG_FORMAT_TEXT = 0, /* "parley: warn: message" */
    PL_LOG_FORMAT_JSON,     /* {"ts":1.234,"level":"warn","msg":"..."} one per line */
    PL_LOG_FORMAT_COUNT
} pl_log_format;

/* A log sink receives one finished message (no trailing newline): in TEXT
 * format the bare message (the level comes as an argument), in JSON format the
 * whole JSON object. Calls on one ctx are serialized, so a sink need not be
 * thread-safe unless it is shared between ctxs. Messages longer than
 * PL_LOG_MSG_MAX - 1 bytes are cut (at a character boundary) and end in "...". */
typedef void (*pl_log_fn)(void *ud, pl_log_level level, const char *msg);

#define PL_LOG_MSG_MAX 4096

/* ---- allocator hook (Lua-style) ----
 * realloc semantics: ptr NULL -> allocate; size 0 -> free and return NULL.
 * Must be thread-safe if the ctx is shared. */
typedef void *(*pl_alloc_fn)(void *ud, void *ptr, size_t size);

/* ---- context ---- */

typedef struct pl_ctx pl_ctx;

typedef struct pl_ctx_params {
    pl_alloc_fn   alloc;      /* NULL: the C library's realloc/free */
    void         *alloc_ud;
    pl_log_level  log_level;  /* default: INFO, or $PARLEY_LOG=debug|info|warn|error|none */
    pl_log_format log_format; /* default: TEXT, or JSON when $PARLEY_LOG_FORMAT=json */
    pl_log_fn     log_fn;     /* NULL: write to stderr in log_format, one write per line */
    void         *log_ud;
} pl_ctx_params;

pl_ctx_params pl_ctx_default_params(void);
pl_status pl_ctx_init(pl_ctx **out, const pl_ctx_params *params); /* params NULL: defaults */
void pl_ctx_free(pl_ctx *ctx);

/* Size of the ctx error buffer; longer text is cut (at a character boundary)
 * and ends in "...". */
#define PL_CTX_ERR_CAP 512

/* Last error text set by a failing call that took this ctx ("" when none or ctx NULL). */
const char *pl_ctx_last_error(const pl_ctx *ctx);
void pl_ctx_clear_error(pl_ctx *ctx);
/* Set the ctx error text (printf-style); returns st so callers can `return pl_ctx_err(...)`.
 * The arguments may include pl_ctx_last_error(ctx) itself (to add context).
 * ctx NULL: only returns st. */
pl_status pl_ctx_err(pl_ctx *ctx, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Log at level when level >= the ctx threshold. ctx NULL: stderr, TEXT, threshold INFO. */
void pl_log(pl_ctx *ctx, pl_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void pl_logv(pl_ctx *ctx, pl_log_level level, const char *fmt, va_list ap);
void pl_ctx_set_log_level(pl_ctx *ctx, pl_log_level level);
pl_log_level pl_ctx_log_level(const pl_ctx *ctx);
/* Parse "debug"/"info"/"warn"/"error"/"none"; PL_ERR_INVALID_ARG on anything else. */
pl_status pl_log_level_parse(const char *s, pl_log_level *out);

/* Allocation through the ctx hook. All return NULL on failure (or on n*size overflow).
 * pl_free(ctx, NULL) is a no-op. Memory must go back to the ctx it came from.
 * A zero-byte pl_malloc/pl_calloc allocates one byte (so NULL always means
 * failure); pl_realloc(ctx, p, 0) frees p and returns NULL. ctx NULL: the C
 * library's allocator. Returned memory is aligned for any standard type. */
void *pl_malloc(pl_ctx *ctx, size_t size);
void *pl_calloc(pl_ctx *ctx, size_t n, size_t size);
void *pl_realloc(pl_ctx *ctx, void *ptr, size_t size);
void  pl_free(pl_ctx *ctx, void *ptr);
char *pl_strdup(pl_ctx *ctx, const char *s);

/* ---- tracking allocator: counts bytes in use and the peak, injects failures ----
 * Install with params.alloc = pl_track_alloc, params.alloc_ud = &tracker.
 * Every non-zero-size call (allocate or resize) is a request; only the
 * fail_at-th fails (a failed resize keeps the old block), later ones succeed
 * again. Freeing a pointer it did not hand out aborts (memory is corrupt).
 * Cost: one 16-byte header per block and a few relaxed atomics per call. */
typedef struct pl_alloc_tracker {
    _Atomic int64_t  in_use;   /* bytes currently allocated (payload, not headers) */
    _Atomic int64_t  peak;     /* high-water mark of in_use */
    _Atomic int64_t  n_allocs; /* successful allocations + reallocations so far */
    _Atomic int64_t  fail_at;  /* 0: never; N: the Nth allocation request (1-based) fails */
    _Atomic int64_t  n_calls;  /* allocation requests seen (for fail_at) */
} pl_alloc_tracker;

void  pl_alloc_tracker_reset(pl_alloc_tracker *t);
void *pl_track_alloc(void *ud, void *ptr, size_t size);

/* ---- arena: bump allocation, freed all at once ----
 * Cost: O(1) per allocation; one ctx allocation per block (block_size or larger). */
typedef struct pl_arena pl_arena;

/* block_size 0: 64 KiB. The first block is allocated here. */
pl_status pl_arena_init(pl_ctx *ctx, size_t block_size, pl_arena **out);
void pl_arena_free(pl_arena *a);
/* align must be a power of two (0 means alignof(max_align_t)). NULL on failure
 * (bad align, overflow, out of memory; the arena stays usable). Size 0 gives a
 * distinct pointer. A request over half a block gets a block of its own. */
void *pl_arena_alloc(pl_arena *a, size_t size, size_t align);
char *pl_arena_strndup(pl_arena *a, const char *s, size_t n);
/* Forget every allocation but keep the first block for reuse. */
void pl_arena_reset(pl_arena *a);
/* Bytes handed out since init or the last reset, alignment padding included. */
size_t pl_arena_used(const pl_arena *a);

/* ---- clocks and timers ---- */

/* Monotonic nanoseconds since an arbitrary start. */
uint64_t pl_time_ns(void);
/* Wall-clock microseconds since the Unix epoch (for logs). */
uint64_t pl_time_wall_us(void);
/* *ts += ms (ms >= 0), normalized: the absolute deadlines of pthread_cond_timedwait
 * and clock_nanosleep, from a clock_gettime() of the clock the wait uses. */
void pl_timespec_add_ms(struct timespec *ts, int64_t ms);

typedef struct pl_timer {
    uint64_t start_ns; /* 0 when stopped */
    uint64_t total_ns; /* accumulated over start/stop pairs */
    uint64_t count;    /* completed start/stop pairs */
} pl_timer;

void pl_timer_start(pl_timer *t);
/* Returns the ns of this interval (0 if not started). */
uint64_t pl_timer_stop(pl_timer *t);
double pl_timer_ms(const pl_timer *t);

/* ---- overflow-checked size arithmetic: true on success, false on overflow ---- */

static inline bool pl_size_add(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool pl_size_mul(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool pl_u64_add(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool pl_u64_mul(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
/* Round x up to a multiple of align (any non-zero align); false on overflow or align 0. */
static inline bool pl_size_align_up(size_t x, size_t align, size_t *out) {
    if (align == 0) return false;
    size_t r = x % align;
    if (r == 0) { *out = x; return true; }
    return pl_size_add(x, align - r, out);
}

/* ---- text ---- */

/* Whether s[0..n) is well-formed UTF-8: no overlong forms, surrogates or code
 * points past U+10FFFF, and no sequence cut by the end. Pure; O(n), ASCII runs
 * 8 bytes at a time. */
bool pl_utf8_valid(const char *s, size_t n);

/* ---- CPU features ---- */

typedef struct pl_cpu_features {
    bool sse42, avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
    bool avx_vnni;
    bool neon, dotprod;
    int  n_logical;  /* online logical CPUs (>= 1) */
    int  n_physical; /* physical cores (>= 1), from sysfs topology when available */
} pl_cpu_features;

/* SIMD level the kernels can run at; ordered, each level implies those below. */
typedef enum pl_cpu_level {
    PL_CPU_LEVEL_SCALAR = 0,
    PL_CPU_LEVEL_AVX2,   /* AVX2 + FMA + F16C */
    PL_CPU_LEVEL_AVX512, /* AVX-512 F/BW/VL (+VNNI/BF16 as flagged) */
    PL_CPU_LEVEL_NEON,
    PL_CPU_LEVEL_COUNT
} pl_cpu_level;

/* Detect once (cached after the first call; thread-safe). Never NULL. */
const pl_cpu_features *pl_cpu_detect(void);
/* Best level this CPU supports, lowered by $PL_CPU=scalar|avx2|avx512 when set
 * (a level above what the CPU has is refused: the best supported is used). */
pl_cpu_level pl_cpu_best_level(void);
const char *pl_cpu_level_name(pl_cpu_level lv);
pl_status pl_cpu_level_parse(const char *s, pl_cpu_level *out);
/* Write e.g. "avx2 fma f16c avx512f ..." into buf (always NUL-terminated). */
void pl_cpu_features_str(const pl_cpu_features *f, char *buf, size_t cap);

/* ---- thread pool ----
 * Persistent workers: the caller's thread is worker 0, so n_threads = 2 starts
 * one extra thread. Idle workers spin briefly, then yield, then sleep on a
 * condition variable, so an idle pool costs no CPU. n_threads is clamped to the
 * number of logical CPUs (never oversubscribes); 0 means physical cores. */
typedef struct pl_pool pl_pool;

/* Work function: ith in [0, nth). Runs on every thread once per pl_pool_run(). */
typedef void (*pl_pool_fn)(void *ud, int ith, int nth);
/* Range function for parallel-for: handles [begin, end). */
typedef void (*pl_pool_range_fn)(void *ud, int64_t begin, int64_t end, int ith);

pl_status pl_pool_init(pl_ctx *ctx, int n_threads, pl_pool **out);
void pl_pool_free(pl_pool *pool);
int pl_pool_n_threads(const pl_pool *pool);
/* Run fn on all threads and wait for all of them. Not reentrant. */
void pl_pool_run(pl_pool *pool, pl_pool_fn fn, void *ud);
/* Inside a pl_pool_run() work function: wait until every thread reaches it.
 * Every thread must call it the same number of times. Spins, then yields. */
void pl_pool_barrier(pl_pool *pool);
/* Split [0, n) into contiguous chunks of at least `grain` items, one span per
 * thread (static schedule, no false sharing of the range bookkeeping), and wait.
 * Span boundaries are multiples of grain (grain <= 0 means 1); a thread with no
 * span is not called; n <= 0 calls nothing. Spans go to threads in order
 * (thread i gets a lower range than thread i+1). fn must not call
 * pl_pool_barrier() (threads without a span never reach it). No allocation. */
void pl_pool_for(pl_pool *pool, int64_t n, int64_t grain, pl_pool_range_fn fn, void *ud);
/* Like pl_pool_for, but dynamic: threads claim chunks of `chunk` items (the
 * last may be partial; chunk <= 0 means 1) until the range is used up, so a thread that is preempted or slower (a busy core, a
 * farther memory node) does less of the work instead of holding the others at
 * the end. Each thread first takes the chunks of its own static span (as
 * pl_pool_for would give it) in order, then steals from the back of the
 * others' spans. Each index is passed exactly once, in whole chunks (or all of
 * [0, n) in one call on a one-thread pool or when n <= chunk); which thread
 * gets which chunk is not defined. Costs one (uncontended until stealing)
 * compare-and-swap per chunk. fn must not call pl_pool_barrier(). No allocation. */
void pl_pool_for_dynamic(pl_pool *pool, int64_t n, int64_t chunk, pl_pool_range_fn fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_CORE_H */
