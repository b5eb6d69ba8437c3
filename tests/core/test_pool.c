/*
 * test_pool.c - thread pool: every index of pl_pool_for exactly once, span
 * rules, barrier phase ordering, many back-to-back runs (lost wakeups), runs
 * after the workers went to sleep, idle CPU use, failure injection.
 *
 * Assertions in work functions would longjmp on a worker thread, so workers
 * record problems in atomics that the main thread checks.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_core.h"

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static uint64_t cpu_time_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct padded_i64 {
    _Alignas(64) int64_t v;
} padded_i64;

/* ---- span rules, for any thread count (the machine may have few CPUs) ---- */

static void test_pool_span_rules(void **state) {
    (void)state;
    static const int64_t ns[] = { 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 100, 255, 1000, 4097 };
    static const int64_t grains[] = { 1, 2, 3, 7, 16, 32, 64, 1000, 5000 };
    static unsigned char seen[4097];
    for (int nth = 1; nth <= 17; nth++)
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof grains / sizeof grains[0]; b++) {
                int64_t n = ns[a], g = grains[b];
                memset(seen, 0, (size_t)n);
                int64_t prev_end = 0;
                int spans = 0;
                bool done = false;
                for (int ith = 0; ith < nth; ith++) {
                    int64_t lo = -1, hi = -1;
                    if (!pl_pool_span(n, g, ith, nth, &lo, &hi)) {
                        done = true; /* threads after the first without a span have none */
                        continue;
                    }
                    assert_false(done);
                    spans++;
                    assert_int_equal(lo, prev_end); /* contiguous, in thread order */
                    assert_true(hi > lo && hi <= n);
                    assert_int_equal(lo % g, 0);
                    if (hi < n) assert_int_equal(hi % g, 0);
                    assert_true(hi - lo >= (n < g ? n : g));
                    for (int64_t i = lo; i < hi; i++) seen[i]++;
                    prev_end = hi;
                }
                assert_int_equal(prev_end, n);
                int64_t want = n / g < nth ? n / g : nth;
                assert_int_equal(spans, want < 1 ? 1 : want);
                for (int64_t i = 0; i < n; i++) assert_int_equal(seen[i], 1);
            }
    /* huge n: no overflow at the top end */
    int64_t lo, hi;
    assert_true(pl_pool_span(INT64_MAX, INT64_MAX / 3, 2, 3, &lo, &hi));
    assert_true(hi == INT64_MAX);
    assert_true(pl_pool_span(INT64_MAX, 1, 7, 8, &lo, &hi));
    assert_true(hi == INT64_MAX);
    assert_true(lo == INT64_MAX - INT64_MAX / 8 - 1 || lo == INT64_MAX - INT64_MAX / 8);
}

/* ---- init ---- */

static void test_pool_init(void **state) {
    (void)state;
    const pl_cpu_features *f = pl_cpu_detect();
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_pool *p = (pl_pool *)ctx;
    assert_int_equal(pl_pool_init(ctx, -1, &p), PL_ERR_INVALID_ARG);
    assert_null(p);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "n_threads"));
    assert_int_equal(pl_pool_init(ctx, 1, NULL), PL_ERR_INVALID_ARG);

    assert_int_equal(pl_pool_init(ctx, 0, &p), PL_OK);
    assert_int_equal(pl_pool_n_threads(p), f->n_physical);
    pl_pool_free(p);
    assert_int_equal(pl_pool_init(ctx, 100000, &p), PL_OK);
    assert_int_equal(pl_pool_n_threads(p), f->n_logical); /* never oversubscribes */
    pl_pool_free(p);
    assert_int_equal(pl_pool_init(ctx, 1, &p), PL_OK);
    assert_int_equal(pl_pool_n_threads(p), 1);
    pl_pool_free(p);
    pl_pool_free(NULL);
    assert_int_equal(pl_pool_n_threads(NULL), 0);
    pl_ctx_free(ctx);
}

static void test_pool_init_nomem(void **state) {
    (void)state;
    pl_alloc_tracker t;
    pl_alloc_tracker_reset(&t);
    pl_ctx_params cp = pl_ctx_default_params();
    cp.alloc = pl_track_alloc;
    cp.alloc_ud = &t;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
    int64_t base = atomic_load(&t.in_use);
    int n = pl_cpu_detect()->n_logical >= 2 ? 2 : 1;
    /* fail each allocation of pl_pool_init in turn until one init succeeds */
    int failures = 0;
    for (int64_t k = 1;; k++) {
        atomic_store(&t.n_calls, 0);
        atomic_store(&t.fail_at, k);
        pl_pool *p = NULL;
        pl_status st = pl_pool_init(ctx, n, &p);
        if (st == PL_OK) {
            assert_true(atomic_load(&t.n_calls) < k);
            pl_pool_free(p);
            break;
        }
        assert_int_equal(st, PL_ERR_NOMEM);
        assert_null(p);
        assert_non_null(strstr(pl_ctx_last_error(ctx), "pool"));
        assert_int_equal(atomic_load(&t.in_use), base);
        failures++;
        assert_true(k < 10);
    }
    assert_int_equal(failures, n > 1 ? 2 : 1); /* the pool, then the worker array */
    atomic_store(&t.fail_at, 0);
    assert_int_equal(atomic_load(&t.in_use), base);
    pl_ctx_free(ctx);
}

/* ---- run ---- */

typedef struct run_state {
    padded_i64 calls[64];
    padded_i64 sum[64];
    _Atomic int bad;
} run_state;

static void count_fn(void *ud, int ith, int nth) {
    run_state *s = ud;
    if (ith < 0 || ith >= nth || nth > 64) {
        atomic_store(&s->bad, 1);
        return;
    }
    s->calls[ith].v++;
}

typedef struct seq_arg {
    run_state *s;
    int64_t    value;
} seq_arg;

static void seq_fn(void *ud, int ith, int nth) {
    seq_arg *a = ud;
    (void)nth;
    a->s->sum[ith].v += a->value;
    a->s->calls[ith].v++;
}

static pl_pool *make_pool(pl_ctx **ctx, int n) {
    assert_int_equal(pl_ctx_init(ctx, NULL), PL_OK);
    pl_pool *p = NULL;
    assert_int_equal(pl_pool_init(*ctx, n, &p), PL_OK);
    return p;
}

/* 10000 back-to-back runs, each with its own ud: every thread runs every job
 * exactly once and sees that job's ud (a lost wakeup would hang, a stale ud
 * would give a wrong sum). */
static void test_pool_many_runs(void **state) {
    (void)state;
    pl_ctx *ctx;
    pl_pool *p = make_pool(&ctx, 0);
    int nth = pl_pool_n_threads(p);
    static run_state s;
    memset(&s, 0, sizeof s);
    enum { RUNS = 10000 };
    for (int64_t k = 1; k <= RUNS; k++) {
        seq_arg a = { &s, k };
        pl_pool_run(p, seq_fn, &a);
    }
    for (int i = 0; i < nth; i++) {
        assert_int_equal(s.calls[i].v, RUNS);
        assert_int_equal(s.sum[i].v, (int64_t)RUNS * (RUNS + 1) / 2);
    }
    pl_pool_run(p, NULL, NULL); /* ignored */
    pl_pool_free(p);
    pl_ctx_free(ctx);
}

static void slow_workers_fn(void *ud, int ith, int nth) {
    run_state *s = ud;
    (void)nth;
    if (ith != 0) sleep_ms(8); /* the owner finishes first and must go to sleep */
    s->calls[ith].v++;
}

/* The owner waits past its spin and yield phases for slow workers. */
static void test_pool_owner_sleeps(void **state) {
    (void)state;
    pl_ctx *ctx;
    pl_pool *p = make_pool(&ctx, 0);
    int nth = pl_pool_n_threads(p);
    static run_state s;
    memset(&s, 0, sizeof s);
    for (int k = 0; k < 5; k++) {
        uint64_t t0 = pl_time_ns();
        pl_pool_run(p, slow_workers_fn, &s);
        if (nth > 1) assert_true(pl_time_ns() - t0 >= 8000000u); /* waited for them */
        for (int i = 0; i < nth; i++) assert_int_equal(s.calls[i].v, k + 1);
    }
    pl_pool_free(p);
    pl_ctx_free(ctx);
}

/* Runs separated by pauses around the spin -> yield -> sleep boundaries. */
static void test_pool_wake_after_sleep(void **state) {
    (void)state;
    pl_ctx *ctx;
    pl_pool *p = make_pool(&ctx, 0);
    int nth = pl_pool_n_threads(p);
    static run_state s;
    memset(&s, 0, sizeof s);
    pl_pool_run(p, count_fn, &s);
    sleep_ms(50); /* every worker is asleep on the condition variable now */
    pl_pool_run(p, count_fn, &s);
    static const int pauses_us[] = { 0, 10, 100, 500, 1500, 2500, 4000 };
    int runs = 2;
    for (int rep = 0; rep < 20; rep++)
        for (size_t i = 0; i < sizeof pauses_us / sizeof pauses_us[0]; i++) {
            struct timespec ts = { 0, pauses_us[i] * 1000L };
            nanosleep(&ts, NULL);
            pl_pool_run(p, count_fn, &s);
            runs++;
        }
    assert_int_equal(atomic_load(&s.bad), 0);
    for (int i = 0; i < nth; i++) assert_int_equal(s.calls[i].v, runs);
    pl_pool_free(p);
    pl_ctx_free(ctx);
}

/* An idle pool sleeps: its process burns (almost) no CPU while the owner waits. */
static void test_pool_idle_cpu(void **state) {
    (void)state;
    pl_ctx *ctx;
    pl_pool *p = make_pool(&ctx, 0);
    if (pl_pool_n_threads(p) < 2) {
        pl_pool_free(p);
        pl_ctx_free(ctx);
        skip();
    }
    static run_state s;
    memset(&s, 0, sizeof s);
    pl_pool_run(p, count_fn, &s);
    sleep_ms(30); /* past the spin and yield phases */
    uint64_t c0 = cpu_time_ns();
    sleep_ms(200);
    uint64_t used = cpu_time_ns() - c0;
    /* a spinning or yielding worker would use ~200 ms here */
    if (used > 20000000u) fail_msg("idle pool used %.1f ms of CPU in 200 ms", (double)used / 1e6);
    pl_pool_run(p, count_fn, &s);
    assert_int_equal(s.calls[1].v, 2);
    pl_pool_free(p);
    pl_ctx_free(ctx);
}

/* ---- barrier ---- */

enum { PHASES = 2000 };

typedef struct barrier_state {
    pl_pool    *pool;
    _Atomic int count[PHASES];
    _Atomic int bad;
} barrier_state;

static void barrier_fn(void *ud, int ith, int nth) {
    barrier_state *s = ud;
    for (int ph = 0; ph < PHASES; ph++) {
        /* nobody may be in the next phase before everyone left this one */
        if (ph + 1 < PHASES && atomic_load(&s->count[ph + 1]) != 0) atomic_store(&s->bad, 1);
        atomic_fetch_add(&s->count[ph], 1);
        pl_pool_barrier(s->pool);
        if (atomic_load(&s->count[ph]) != nth) atomic_store(&s->bad, 2);
        if (ith == 0 && ph % 100 == 0) {
            /* a slow thread: the others must wait, not run ahead */
            struct timespec ts = { 0, 200000 };
            nanosleep(&ts, NULL);
        }
        pl_pool_barrier(s->pool);
    }
}

static void test_pool_barrier(void **state) {
    (void)state;
    pl_ctx *ctx;
    pl_pool *p = make_pool(&ctx, 0);
    int nth = pl_pool_n_threads(p);
    static barrier_state s;
    for (int rep = 0; rep < 3; rep++) {
        memset(&s, 0, sizeof s);
        s.pool = p;
        pl_pool_run(p, barrier_fn, &s);
        assert_int_equal(atomic_load(&s.bad), 0);
        for (int ph = 0; ph < PHASES; ph++) assert_int_equal(atomic_load(&s.count[ph]), nth);
    }
    pl_pool_free(p);
    /* a one-thread pool: the barrier returns at once */
    p = NULL;
    assert_int_equal(pl_pool_init(ctx, 1, &p), PL_OK);
    memset(&s, 0, sizeof s);
    s.pool = p;
    pl_pool_run(p, barrier_fn, &s);
    assert_int_equal(atomic_load(&s.bad), 0);
    assert_int_equal(atomic_load(&s.count[PHASES - 1]), 1);
    pl_pool_free(p);
    pl_ctx_free(ctx);
}

/* ---- parallel for ---- */

typedef struct for_state {
    _Atomic int *hits;
    int64_t      n, grain;
    padded_i64   calls[64];
    padded_i64   begin[64], end[64];
    _Atomic int  bad;
} for_state;

static void for_fn(void *ud, int64_t begin, int64_t end, int ith) {
    for_state *s = ud;
    if (ith < 0 || ith >= 64 || begin < 0 || end > s->n || begin >= end) {
        atomic_store(&s->bad, 1);
        return;
    }
    s->calls[ith].v++;
    s->begin[ith].v = begin;
    s->end[ith].v = end;
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&s->hits[i], 1);
}

/* range sizes both parallel fors are run over (the hit counters hold the largest) */
static const int64_t ns[] = { 0, 1, 2, 3, 5, 7, 16, 17, 100, 1000, 4097 };

static void test_pool_for_coverage(void **state) {
    (void)state;
    static const int64_t grains[] = { -5, 0, 1, 2, 3, 7, 16, 64, 1000 };
    static _Atomic int hits[4097];
    static for_state s;
    const int max_threads = pl_cpu_detect()->n_logical;
    int sizes[] = { 1, 2, max_threads };
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    for (size_t z = 0; z < 3; z++) {
        pl_pool *p = NULL;
        assert_int_equal(pl_pool_init(ctx, sizes[z], &p), PL_OK);
        int nth = pl_pool_n_threads(p);
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof grains / sizeof grains[0]; b++) {
                int64_t n = ns[a], g = grains[b] < 1 ? 1 : grains[b];
                memset(&s, 0, sizeof s);
                for (int64_t i = 0; i < n; i++) atomic_store(&hits[i], 0);
                s.hits = hits;
                s.n = n;
                s.grain = g;
                pl_pool_for(p, n, grains[b], for_fn, &s);
                assert_int_equal(atomic_load(&s.bad), 0);
                for (int64_t i = 0; i < n; i++) assert_int_equal(atomic_load(&hits[i]), 1);
                int64_t want = n == 0 ? 0 : (n / g < nth ? n / g : nth);
                if (n > 0 && want < 1) want = 1;
                int64_t prev_end = 0;
                for (int i = 0; i < nth; i++) {
                    if (i < want) {
                        assert_int_equal(s.calls[i].v, 1);
                        assert_int_equal(s.begin[i].v, prev_end);
                        assert_int_equal(s.begin[i].v % g, 0);
                        prev_end = s.end[i].v;
                    } else {
                        assert_int_equal(s.calls[i].v, 0);
                    }
                }
                assert_int_equal(prev_end, n);
            }
        /* many back-to-back parallel fors */
        memset(&s, 0, sizeof s);
        for (int64_t i = 0; i < 64; i++) atomic_store(&hits[i], 0);
        s.hits = hits;
        s.n = 64;
        for (int k = 0; k < 2000; k++) pl_pool_for(p, 64, 4, for_fn, &s);
        for (int64_t i = 0; i < 64; i++) assert_int_equal(atomic_load(&hits[i]), 2000);
        pl_pool_for(p, 10, 1, NULL, NULL); /* ignored */
        pl_pool_for(NULL, 10, 1, for_fn, &s);
        pl_pool_free(p);
    }
    pl_ctx_free(ctx);
}

/* Dynamic for: every index exactly once, chunk boundaries at multiples of the chunk
 * (the last chunk partial) or the whole range at once, whatever the pool size; and a slow thread does less: the
 * owner sleeps in each of its chunks, so the worker takes most of them. */
typedef struct dyn_state {
    _Atomic int *hits;
    int64_t      n, chunk;
    padded_i64   items[64];
    int          slow_ith; /* -1: none */
    _Atomic int  bad;
} dyn_state;

static void dyn_fn(void *ud, int64_t begin, int64_t end, int ith) {
    dyn_state *s = ud;
    int64_t want_end = begin + s->chunk < s->n ? begin + s->chunk : s->n;
    /* a chunk, or the whole range in one call (one thread, or n <= chunk) */
    bool chunk_ok = begin % s->chunk == 0 && end == want_end, whole = begin == 0 && end == s->n;
    if (ith < 0 || ith >= 64 || begin < 0 || !(chunk_ok || whole)) {
        atomic_store(&s->bad, 1);
        return;
    }
    s->items[ith].v += end - begin;
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&s->hits[i], 1);
    if (ith == s->slow_ith) sleep_ms(2);
}

static void test_pool_for_dynamic(void **state) {
    (void)state;
    static const int64_t chunks[] = { -5, 0, 1, 2, 3, 7, 16, 64, 1000, 5000 };
    static _Atomic int hits[4097];
    static dyn_state s;
    const int max_threads = pl_cpu_detect()->n_logical;
    int sizes[] = { 1, 2, max_threads };
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    for (size_t z = 0; z < 3; z++) {
        pl_pool *p = NULL;
        assert_int_equal(pl_pool_init(ctx, sizes[z], &p), PL_OK);
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof chunks / sizeof chunks[0]; b++) {
                int64_t n = ns[a];
                memset(&s, 0, sizeof s);
                for (int64_t i = 0; i < n; i++) atomic_store(&hits[i], 0);
                s.hits = hits;
                s.n = n;
                s.chunk = chunks[b] < 1 ? 1 : chunks[b];
                s.slow_ith = -1;
                pl_pool_for_dynamic(p, n, chunks[b], dyn_fn, &s);
                assert_int_equal(atomic_load(&s.bad), 0);
                int64_t total = 0;
                for (int i = 0; i < 64; i++) total += s.items[i].v;
                assert_int_equal(total, n);
                for (int64_t i = 0; i < n; i++) assert_int_equal(atomic_load(&hits[i]), 1);
            }
        if (pl_pool_n_threads(p) == 2) {
            /* 64 chunks; the owner sleeps 2 ms after each of its own, the worker
             * does not: a static split would give each 32, a dynamic one gives the
             * owner only the few it claims while the worker runs through the rest */
            memset(&s, 0, sizeof s);
            for (int64_t i = 0; i < 64; i++) atomic_store(&hits[i], 0);
            s.hits = hits;
            s.n = 64;
            s.chunk = 1;
            s.slow_ith = 0;
            pl_pool_for_dynamic(p, 64, 1, dyn_fn, &s);
            assert_int_equal(atomic_load(&s.bad), 0);
            for (int64_t i = 0; i < 64; i++) assert_int_equal(atomic_load(&hits[i]), 1);
            assert_int_equal(s.items[0].v + s.items[1].v, 64);
            if (s.items[0].v >= 16) fail_msg("the slow owner did %lld of 64 chunks", (long long)s.items[0].v);
        }
        /* back to back */
        memset(&s, 0, sizeof s);
        for (int64_t i = 0; i < 64; i++) atomic_store(&hits[i], 0);
        s.hits = hits;
        s.n = 64;
        s.chunk = 4;
        s.slow_ith = -1;
        for (int k = 0; k < 2000; k++) pl_pool_for_dynamic(p, 64, 4, dyn_fn, &s);
        for (int64_t i = 0; i < 64; i++) assert_int_equal(atomic_load(&hits[i]), 2000);
        pl_pool_for_dynamic(p, 10, 1, NULL, NULL); /* ignored */
        pl_pool_for_dynamic(NULL, 10, 1, dyn_fn, &s);
        pl_pool_free(p);
    }
    pl_ctx_free(ctx);
}

int test_pool_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_span_rules),
        cmocka_unit_test(test_pool_init),
        cmocka_unit_test(test_pool_init_nomem),
        cmocka_unit_test(test_pool_many_runs),
        cmocka_unit_test(test_pool_wake_after_sleep),
        cmocka_unit_test(test_pool_owner_sleeps),
        cmocka_unit_test(test_pool_idle_cpu),
        cmocka_unit_test(test_pool_barrier),
        cmocka_unit_test(test_pool_for_coverage),
        cmocka_unit_test(test_pool_for_dynamic),
    };
    return cmocka_run_group_tests_name("core/pool", tests, NULL, NULL);
}
