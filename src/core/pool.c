/*
 * pool.c - persistent thread pool: the caller is worker 0, n - 1 threads wait
 * for the next job on a generation counter.
 *
 * Waiting (for a job, for completion) goes through three phases so that a
 * busy pool reacts in well under a microsecond while an idle one costs no CPU:
 *   1. spin on the atomic with a pause instruction (SPIN_ITERS rounds,
 *      tens of microseconds),
 *   2. sched_yield() for up to YIELD_NS (lets other work run on a shared core),
 *   3. sleep on a condition variable; the waker signals only when somebody
 *      counts as sleeping, so a busy pool makes no futex calls.
 * Lost wakeups are ruled out Dekker-style: the sleeper raises its sleeping
 * count and then re-reads the condition (both seq_cst, under the mutex); the
 * waker publishes the condition and then reads the count (both seq_cst) and,
 * when non-zero, broadcasts under the same mutex.
 *
 * Hot shared words sit on separate cache lines (the pool and the per-worker
 * array are allocated 64-byte aligned) so the owner's job publication, the
 * workers' completion count and the barrier do not false-share.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core/core_int.h"

#define POOL_LINE  64
#define SPIN_ITERS 4096
#define YIELD_NS   (2u * 1000u * 1000u) /* 2 ms of yielding before sleeping */

static inline void cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

typedef struct pool_worker {
    _Alignas(POOL_LINE) pl_pool *pool; /* one cache line per thread */
    pthread_t thread;
    int       ith;
    /* pl_pool_for_dynamic: this thread's unclaimed chunks [front, back), packed
     * as front | back << 32; the thread takes from the front, idle ones steal
     * from the back */
    _Atomic uint64_t span;
} pool_worker;

struct pl_pool {
    /* set at init, read-only afterwards */
    pl_ctx      *ctx;
    void        *raw;         /* unaligned allocation behind this struct */
    void        *workers_raw; /* same for workers */
    pool_worker *workers;     /* [n]: thread i (entry 0, the caller, has no pthread) */
    int          n;           /* threads, the caller included */
    int          n_started;
    pthread_mutex_t mu;
    pthread_cond_t  work_cv;  /* workers sleep here for a new generation */
    pthread_cond_t  done_cv;  /* the owner sleeps here for completion */

    /* The job shares one cache line with its generation: the owner writes the
     * job, then bumps gen, and a worker gets both in one line transfer
     * (measured: ~20% off an empty pl_pool_run on 2 threads). */
    _Alignas(POOL_LINE) _Atomic uint32_t gen; /* +1 per job (and at shutdown) */
    _Atomic int      stop;
    _Atomic int      n_sleeping;              /* workers in phase 3 */
    pl_pool_fn       fn;
    void            *ud;
    int64_t          for_n, for_grain;
    pl_pool_range_fn for_fn;
    void            *for_ud;

    _Alignas(POOL_LINE) _Atomic int n_done;   /* workers finished with this job */
    _Atomic int owner_sleeping;

    _Alignas(POOL_LINE) _Atomic int bar_count;
    _Atomic uint32_t bar_gen;
};

/* ---- waiting ---- */

typedef bool (*pool_ready_fn)(pl_pool *p, uint32_t arg);

static bool ready_gen(pl_pool *p, uint32_t seen) {
    return atomic_load(&p->gen) != seen;
}

static bool ready_done(pl_pool *p, uint32_t unused) {
    (void)unused;
    return atomic_load(&p->n_done) == p->n - 1;
}

static void wait_until(pl_pool *p, pool_ready_fn ready, uint32_t arg, _Atomic int *sleeping,
                       pthread_cond_t *cv) {
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (ready(p, arg)) return;
        cpu_pause();
    }
    uint64_t t0 = pl_time_ns();
    for (unsigned i = 1;; i++) {
        if (ready(p, arg)) return;
        sched_yield();
        if ((i & 15) == 0 && pl_time_ns() - t0 > YIELD_NS) break;
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(sleeping, 1);
    while (!ready(p, arg)) pthread_cond_wait(cv, &p->mu);
    atomic_fetch_sub(sleeping, 1);
    pthread_mutex_unlock(&p->mu);
}

static void wake(pl_pool *p, _Atomic int *sleeping, pthread_cond_t *cv) {
    if (atomic_load(sleeping) == 0) return;
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- workers ---- */

static void *worker_main(void *arg) {
    pool_worker *w = arg;
    pl_pool *p = w->pool;
    uint32_t seen = 0; /* threads start before the first job */
    for (;;) {
        wait_until(p, ready_gen, seen, &p->n_sleeping, &p->work_cv);
        seen = atomic_load(&p->gen);
        if (atomic_load(&p->stop)) break;
        p->fn(p->ud, w->ith, p->n);
        if (atomic_fetch_add(&p->n_done, 1) + 1 == p->n - 1) wake(p, &p->owner_sleeping, &p->done_cv);
    }
    return NULL;
}

static void *alloc_aligned(pl_ctx *ctx, size_t size, void **raw) {
    size_t total;
    if (!pl_size_add(size, POOL_LINE - 1, &total)) return NULL;
    *raw = pl_malloc(ctx, total);
    if (!*raw) return NULL;
    uintptr_t a = ((uintptr_t)*raw + POOL_LINE - 1) & ~(uintptr_t)(POOL_LINE - 1);
    memset((void *)a, 0, size);
    return (void *)a;
}

static void stop_workers(pl_pool *p) {
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->n_started; i++) pthread_join(p->workers[i].thread, NULL);
    p->n_started = 0;
}

static void release(pl_pool *p) {
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
    pl_free(p->ctx, p->workers_raw);
    pl_free(p->ctx, p->raw);
}

pl_status pl_pool_init(pl_ctx *ctx, int n_threads, pl_pool **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "pool: out is NULL");
    *out = NULL;
    if (n_threads < 0) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "pool: n_threads %d < 0", n_threads);
    const pl_cpu_features *cf = pl_cpu_detect();
    int n = n_threads == 0 ? cf->n_physical : n_threads;
    if (n > cf->n_logical) {
        pl_log(ctx, PL_LOG_LEVEL_DEBUG, "pool: %d threads asked, clamped to %d logical CPUs", n,
               cf->n_logical);
        n = cf->n_logical;
    }
    if (n < 1) n = 1;

    void *raw = NULL;
    pl_pool *p = alloc_aligned(ctx, sizeof *p, &raw);
    if (!p) return pl_ctx_err(ctx, PL_ERR_NOMEM, "pool: out of memory");
    p->ctx = ctx;
    p->raw = raw;
    p->n = n;
    size_t wbytes = 0;
    if (n > 1) {
        if (!pl_size_mul((size_t)n, sizeof(pool_worker), &wbytes) ||
            !(p->workers = alloc_aligned(ctx, wbytes, &p->workers_raw))) {
            pl_free(ctx, raw);
            return pl_ctx_err(ctx, PL_ERR_NOMEM, "pool: out of memory for %d workers", n - 1);
        }
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->n_done, 0);
    atomic_init(&p->owner_sleeping, 0);
    atomic_init(&p->bar_count, 0);
    atomic_init(&p->bar_gen, 0);

    /* Workers block every signal, so handlers (SIGINT in the server) run on
     * the application's own threads; they inherit the mask at creation. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (int i = 1; i < n; i++) {
        p->workers[i].pool = p;
        p->workers[i].ith = i;
        rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (rc != 0) break;
        p->n_started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        int started = p->n_started;
        stop_workers(p);
        release(p);
        return pl_ctx_err(ctx, PL_ERR_INTERNAL, "pool: cannot start thread %d of %d: %s",
                          started + 2, n, strerror(rc));
    }
    *out = p;
    return PL_OK;
}

void pl_pool_free(pl_pool *pool) {
    if (!pool) return;
    stop_workers(pool);
    release(pool);
}

int pl_pool_n_threads(const pl_pool *pool) {
    return pool ? pool->n : 0;
}

void pl_pool_run(pl_pool *pool, pl_pool_fn fn, void *ud) {
    if (!pool || !fn) return;
    if (pool->n == 1) {
        fn(ud, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ud = ud;
    atomic_store_explicit(&pool->n_done, 0, memory_order_relaxed);
    atomic_fetch_add(&pool->gen, 1); /* publishes fn, ud and n_done = 0 */
    wake(pool, &pool->n_sleeping, &pool->work_cv);
    fn(ud, 0, pool->n);
    wait_until(pool, ready_done, 0, &pool->owner_sleeping, &pool->done_cv);
}

void pl_pool_barrier(pl_pool *pool) {
    if (!pool || pool->n == 1) return;
    /* Generation barrier: read the generation before arriving; the last to
     * arrive resets the count and then opens the barrier by bumping it. */
    uint32_t g = atomic_load_explicit(&pool->bar_gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&pool->bar_count, 1, memory_order_acq_rel) == pool->n - 1) {
        atomic_store_explicit(&pool->bar_count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&pool->bar_gen, 1, memory_order_release);
        return;
    }
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&pool->bar_gen, memory_order_acquire) != g) return;
        cpu_pause();
    }
    while (atomic_load_explicit(&pool->bar_gen, memory_order_acquire) == g) sched_yield();
}

/* The range is cut into chunks of grain items (the last may be partial), as
 * many threads as there are whole chunks take part, and extra chunks go to the
 * last threads, so the one holding the partial chunk also holds at least one
 * whole chunk: every span has >= grain items (or is all of a short range). */
bool pl_pool_span(int64_t n, int64_t grain, int ith, int nth, int64_t *begin, int64_t *end) {
    int64_t nc = n / grain + (n % grain != 0);
    int64_t used = n / grain < nth ? n / grain : nth;
    if (used < 1) used = 1;
    if (ith >= used) return false;
    int64_t q = nc / used, first_extra = used - nc % used;
    int64_t c0 = ith * q + (ith > first_extra ? ith - first_extra : 0);
    int64_t c1 = (ith + 1) * q + (ith + 1 > first_extra ? ith + 1 - first_extra : 0);
    *begin = c0 * grain;
    *end = c1 >= nc ? n : c1 * grain; /* c1 * grain may overflow when c1 == nc */
    return true;
}

static void for_trampoline(void *ud, int ith, int nth) {
    pl_pool *p = ud;
    int64_t begin, end;
    if (pl_pool_span(p->for_n, p->for_grain, ith, nth, &begin, &end))
        p->for_fn(p->for_ud, begin, end, ith);
}

void pl_pool_for(pl_pool *pool, int64_t n, int64_t grain, pl_pool_range_fn fn, void *ud) {
    if (!pool || !fn || n <= 0) return;
    pool->for_n = n;
    pool->for_grain = grain < 1 ? 1 : grain;
    pool->for_fn = fn;
    pool->for_ud = ud;
    pl_pool_run(pool, for_trampoline, pool);
}

/* Work stealing over static spans: thread i owns the chunks of pl_pool_span's
 * span i and claims them front to back (so on a quiet machine each thread streams
 * one contiguous range, as with pl_pool_for: chunks from one shared counter,
 * interleaved across threads, measured up to 5% slower decode); a thread whose span is used up steals chunks
 * from the back of the others'. A claim is one CAS on a line the owner holds
 * until somebody steals. */
static inline uint64_t span_pack(uint64_t front, uint64_t back) { return front | back << 32; }

static bool span_take(_Atomic uint64_t *sp, bool from_back, int64_t *chunk) {
    uint64_t v = atomic_load_explicit(sp, memory_order_relaxed);
    for (;;) {
        uint64_t f = v & 0xffffffffu, b = v >> 32;
        if (f >= b) return false;
        uint64_t nv = from_back ? span_pack(f, b - 1) : span_pack(f + 1, b);
        if (atomic_compare_exchange_weak_explicit(sp, &v, nv, memory_order_relaxed, memory_order_relaxed)) {
            *chunk = (int64_t)(from_back ? b - 1 : f);
            return true;
        }
    }
}

static void dyn_trampoline(void *ud, int ith, int nth) {
    pl_pool *p = ud;
    const int64_t n = p->for_n, chunk = p->for_grain;
    int64_t c;
    while (span_take(&p->workers[ith].span, false, &c))
        p->for_fn(p->for_ud, c * chunk, n - c * chunk > chunk ? (c + 1) * chunk : n, ith);
    for (int k = 1; k < nth; k++) {
        pool_worker *v = &p->workers[(ith + k) % nth];
        while (span_take(&v->span, true, &c))
            p->for_fn(p->for_ud, c * chunk, n - c * chunk > chunk ? (c + 1) * chunk : n, ith);
    }
}

void pl_pool_for_dynamic(pl_pool *pool, int64_t n, int64_t chunk, pl_pool_range_fn fn, void *ud) {
    if (!pool || !fn || n <= 0) return;
    if (chunk < 1) chunk = 1;
    if (pool->n == 1 || n <= chunk) {
        fn(ud, 0, n, 0);
        return;
    }
    /* chunk indices are 32-bit in the packed spans */
    int64_t nc = n / chunk + (n % chunk != 0);
    if (nc > INT32_MAX) {
        chunk = n / INT32_MAX + 1;
        nc = n / chunk + (n % chunk != 0);
    }
    for (int i = 0; i < pool->n; i++) {
        int64_t b = 0, e = 0;
        if (!pl_pool_span(nc, 1, i, pool->n, &b, &e)) b = e = 0;
        atomic_store_explicit(&pool->workers[i].span, span_pack((uint64_t)b, (uint64_t)e), memory_order_relaxed);
    }
    pool->for_n = n;
    pool->for_grain = chunk;
    pool->for_fn = fn;
    pool->for_ud = ud;
    pl_pool_run(pool, dyn_trampoline, pool); /* its gen bump publishes the spans */
}
