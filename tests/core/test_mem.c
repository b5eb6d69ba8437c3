/*
 * test_mem.c - allocation wrappers, the tracking allocator (exact byte counts,
 * failure injection), size helpers at the overflow boundary, the arena.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "test_core.h"

static pl_ctx *tracked_ctx(pl_alloc_tracker *t) {
    pl_alloc_tracker_reset(t);
    pl_ctx_params p = pl_ctx_default_params();
    p.alloc = pl_track_alloc;
    p.alloc_ud = t;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &p), PL_OK);
    return ctx;
}

static void test_track_counts(void **state) {
    (void)state;
    pl_alloc_tracker t;
    pl_ctx *ctx = tracked_ctx(&t);
    /* the ctx itself came from the tracker */
    int64_t base = atomic_load(&t.in_use);
    assert_true(base > PL_CTX_ERR_CAP);
    assert_int_equal(atomic_load(&t.peak), base);
    assert_int_equal(atomic_load(&t.n_allocs), 1);

    char *p = pl_malloc(ctx, 100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 7, 100);
    assert_int_equal(atomic_load(&t.in_use), base + 100);
    unsigned char *q = pl_calloc(ctx, 10, 30);
    assert_non_null(q);
    for (int i = 0; i < 300; i++) assert_int_equal(q[i], 0);
    assert_int_equal(atomic_load(&t.in_use), base + 400);
    p = pl_realloc(ctx, p, 1000);
    assert_non_null(p);
    for (int i = 0; i < 100; i++) assert_int_equal(p[i], 7);
    assert_int_equal(atomic_load(&t.in_use), base + 1300);
    assert_int_equal(atomic_load(&t.peak), base + 1300);
    pl_free(ctx, q);
    assert_int_equal(atomic_load(&t.in_use), base + 1000);
    p = pl_realloc(ctx, p, 10);
    assert_non_null(p);
    assert_int_equal(atomic_load(&t.in_use), base + 10);
    char *s = pl_strdup(ctx, "hello");
    assert_string_equal(s, "hello");
    assert_int_equal(atomic_load(&t.in_use), base + 16);
    assert_null(pl_strdup(ctx, NULL));
    /* zero-byte malloc/calloc give one distinct byte; realloc to 0 frees */
    void *z = pl_malloc(ctx, 0), *z2 = pl_calloc(ctx, 0, 8);
    assert_non_null(z);
    assert_non_null(z2);
    assert_ptr_not_equal(z, z2);
    assert_int_equal(atomic_load(&t.in_use), base + 18);
    assert_null(pl_realloc(ctx, z, 0));
    pl_free(ctx, z2);
    pl_free(ctx, s);
    pl_free(ctx, p);
    pl_free(ctx, NULL);
    assert_int_equal(atomic_load(&t.in_use), base);
    assert_int_equal(atomic_load(&t.peak), base + 1300);
    /* init, malloc, calloc, realloc, realloc, strdup, malloc(0), calloc(0) */
    assert_int_equal(atomic_load(&t.n_allocs), 8);
    assert_int_equal(atomic_load(&t.n_calls), 8);
    pl_ctx_free(ctx);
    assert_int_equal(atomic_load(&t.in_use), 0);
}

static void test_track_fail_at(void **state) {
    (void)state;
    pl_alloc_tracker t;
    pl_ctx *ctx = tracked_ctx(&t); /* call 1 */
    int64_t base = atomic_load(&t.in_use);
    atomic_store(&t.fail_at, 3);
    void *a = pl_malloc(ctx, 8);   /* call 2 */
    void *b = pl_malloc(ctx, 8);   /* call 3: fails */
    void *c = pl_malloc(ctx, 8);   /* call 4 */
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    assert_int_equal(atomic_load(&t.n_calls), 4);
    assert_int_equal(atomic_load(&t.n_allocs), 3);
    assert_int_equal(atomic_load(&t.in_use), base + 16);

    /* a failed realloc leaves the old block and the counts alone */
    memcpy(a, "abcdefg", 8);
    atomic_store(&t.fail_at, 5);
    assert_null(pl_realloc(ctx, a, 4096)); /* call 5 */
    assert_string_equal(a, "abcdefg");
    assert_int_equal(atomic_load(&t.in_use), base + 16);

    /* n * size overflow fails before any request reaches the hook */
    assert_null(pl_calloc(ctx, SIZE_MAX / 2 + 1, 2));
    assert_null(pl_calloc(ctx, SIZE_MAX, SIZE_MAX));
    assert_null(pl_calloc(ctx, (size_t)1 << 33, (size_t)1 << 31));
    assert_int_equal(atomic_load(&t.n_calls), 5);
    /* sizes no allocator can give fail cleanly */
    assert_null(pl_malloc(ctx, SIZE_MAX));
    assert_null(pl_malloc(ctx, SIZE_MAX - 8));
    assert_null(pl_realloc(ctx, a, SIZE_MAX));
    assert_string_equal(a, "abcdefg");
    assert_int_equal(atomic_load(&t.in_use), base + 16);
    pl_free(ctx, a);
    pl_free(ctx, c);
    pl_ctx_free(ctx);
    assert_int_equal(atomic_load(&t.in_use), 0);

    /* a failing first call fails pl_ctx_init itself */
    pl_alloc_tracker_reset(&t);
    atomic_store(&t.fail_at, 1);
    pl_ctx_params p = pl_ctx_default_params();
    p.alloc = pl_track_alloc;
    p.alloc_ud = &t;
    pl_ctx *bad = (pl_ctx *)&t;
    assert_int_equal(pl_ctx_init(&bad, &p), PL_ERR_NOMEM);
    assert_null(bad);
    assert_int_equal(atomic_load(&t.in_use), 0);
}

static void test_libc_alloc(void **state) {
    (void)state;
    /* ctx NULL and a default ctx both use the C library */
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_ctx *ctxs[2] = { NULL, ctx };
    for (int k = 0; k < 2; k++) {
        long double *p = pl_malloc(ctxs[k], 3 * sizeof *p);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        p = pl_realloc(ctxs[k], p, 1 << 20);
        assert_non_null(p);
        assert_null(pl_realloc(ctxs[k], p, 0));
        assert_null(pl_calloc(ctxs[k], SIZE_MAX / 4, 8));
        assert_null(pl_malloc(ctxs[k], SIZE_MAX));
        char *s = pl_strdup(ctxs[k], "");
        assert_string_equal(s, "");
        pl_free(ctxs[k], s);
    }
    pl_ctx_free(ctx);
}

static void test_size_helpers(void **state) {
    (void)state;
    size_t s = 1;
    assert_true(pl_size_add(SIZE_MAX, 0, &s));
    assert_true(s == SIZE_MAX);
    assert_true(pl_size_add(SIZE_MAX - 1, 1, &s));
    assert_true(s == SIZE_MAX);
    assert_false(pl_size_add(SIZE_MAX, 1, &s));
    assert_false(pl_size_add(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, &s));
    assert_true(pl_size_mul(SIZE_MAX, 1, &s));
    assert_true(s == SIZE_MAX);
    assert_true(pl_size_mul(0, SIZE_MAX, &s));
    assert_true(s == 0);
    assert_true(pl_size_mul(SIZE_MAX / 3, 3, &s)); /* 2^64 - 1 is divisible by 3 */
    assert_true(s == SIZE_MAX);
    assert_false(pl_size_mul(SIZE_MAX / 2 + 1, 2, &s));
    assert_false(pl_size_mul((size_t)1 << (sizeof(size_t) * 4), (size_t)1 << (sizeof(size_t) * 4), &s));
    assert_true(pl_size_mul((size_t)1 << (sizeof(size_t) * 4), ((size_t)1 << (sizeof(size_t) * 4)) - 1, &s));

    uint64_t u = 0;
    assert_true(pl_u64_add(UINT64_MAX - 5, 5, &u));
    assert_true(u == UINT64_MAX);
    assert_false(pl_u64_add(UINT64_MAX - 5, 6, &u));
    assert_true(pl_u64_mul(UINT64_MAX / 5, 5, &u));
    assert_true(u == UINT64_MAX);
    assert_false(pl_u64_mul(UINT64_MAX / 5 + 1, 5, &u));
    assert_false(pl_u64_mul(1ull << 32, 1ull << 32, &u));
    assert_true(pl_u64_mul(1ull << 32, (1ull << 32) - 1, &u));
    assert_true(u == 0xffffffff00000000ull);

    assert_true(pl_size_align_up(0, 16, &s) && s == 0);
    assert_true(pl_size_align_up(1, 16, &s) && s == 16);
    assert_true(pl_size_align_up(16, 16, &s) && s == 16);
    assert_true(pl_size_align_up(17, 16, &s) && s == 32);
    assert_true(pl_size_align_up(10, 3, &s) && s == 12);
    assert_true(pl_size_align_up(SIZE_MAX - 15, 16, &s) && s == SIZE_MAX - 15);
    assert_true(pl_size_align_up(SIZE_MAX - 16, 16, &s) && s == SIZE_MAX - 15);
    assert_false(pl_size_align_up(SIZE_MAX - 14, 16, &s));
    assert_false(pl_size_align_up(SIZE_MAX, 2, &s));
    assert_true(pl_size_align_up(SIZE_MAX, 1, &s) && s == SIZE_MAX);
    assert_false(pl_size_align_up(5, 0, &s));
}

/* ---- arena ---- */

static void test_arena_align(void **state) {
    (void)state;
    pl_alloc_tracker t;
    pl_ctx *ctx = tracked_ctx(&t);
    int64_t base = atomic_load(&t.in_use);
    pl_arena *a = NULL;
    assert_int_equal(pl_arena_init(ctx, 256, &a), PL_OK);
    unsigned char *ptrs[64];
    size_t sizes[64];
    int n = 0;
    for (size_t align = 1; align <= 4096; align *= 2) {
        for (size_t sz = 1; sz <= 96; sz += 19) {
            unsigned char *p = pl_arena_alloc(a, sz, align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            memset(p, n, sz);
            if (n < 64) {
                ptrs[n] = p;
                sizes[n] = sz;
                n++;
            }
        }
    }
    /* default alignment */
    void *d = pl_arena_alloc(a, 3, 0);
    assert_int_equal((uintptr_t)d % alignof(max_align_t), 0);
    /* nothing was overwritten (no overlap) */
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < sizes[i]; j++) assert_int_equal(ptrs[i][j], (unsigned char)i);
    /* bad alignments and impossible sizes */
    assert_null(pl_arena_alloc(a, 8, 3));
    assert_null(pl_arena_alloc(a, 8, 48));
    assert_null(pl_arena_alloc(a, SIZE_MAX, 1));
    assert_null(pl_arena_alloc(a, SIZE_MAX - 8, 64));
    assert_null(pl_arena_alloc(NULL, 8, 8));
    /* size 0 still gives distinct pointers */
    void *z1 = pl_arena_alloc(a, 0, 1), *z2 = pl_arena_alloc(a, 0, 1);
    assert_non_null(z1);
    assert_ptr_not_equal(z1, z2);
    pl_arena_free(a);
    pl_arena_free(NULL);
    assert_int_equal(atomic_load(&t.in_use), base);
    pl_ctx_free(ctx);
    assert_int_equal(atomic_load(&t.in_use), 0);
}

static void test_arena_blocks_reset(void **state) {
    (void)state;
    pl_alloc_tracker t;
    pl_ctx *ctx = tracked_ctx(&t);
    int64_t base = atomic_load(&t.in_use);
    pl_arena *a = NULL;
    assert_int_equal(pl_arena_init(ctx, 1024, &a), PL_OK);
    int64_t with_first = atomic_load(&t.in_use);
    assert_true(with_first >= base + 1024);
    assert_int_equal(pl_arena_used(a), 0);

    char *first = pl_arena_alloc(a, 10, 1);
    char *second = pl_arena_alloc(a, 5, 1);
    assert_ptr_equal(second, first + 10); /* bump allocation, no padding at align 1 */
    assert_int_equal(pl_arena_used(a), 15);
    assert_int_equal(atomic_load(&t.in_use), with_first); /* no new block yet */

    /* a large request (> half a block) gets its own block ... */
    char *big = pl_arena_alloc(a, 4000, 1);
    assert_non_null(big);
    memset(big, 'B', 4000);
    int64_t after_big = atomic_load(&t.in_use);
    assert_true(after_big >= with_first + 4000);
    /* ... and small ones continue in the current block */
    char *third = pl_arena_alloc(a, 7, 1);
    assert_ptr_equal(third, second + 5);
    assert_int_equal(pl_arena_used(a), 15 + 4000 + 7);

    /* filling the block starts a new standard block */
    for (int i = 0; i < 100; i++) assert_non_null(pl_arena_alloc(a, 100, 8));
    assert_true(atomic_load(&t.in_use) > after_big + 1024);
    for (int i = 0; i < 4000; i++) assert_int_equal(big[i], 'B');

    /* reset keeps exactly the first block and reuses it from its start */
    pl_arena_reset(a);
    assert_int_equal(atomic_load(&t.in_use), with_first);
    assert_int_equal(pl_arena_used(a), 0);
    assert_ptr_equal(pl_arena_alloc(a, 10, 1), first);
    pl_arena_reset(a);
    pl_arena_reset(a);
    assert_int_equal(atomic_load(&t.in_use), with_first);

    /* strndup */
    char *s = pl_arena_strndup(a, "hello", 3);
    assert_string_equal(s, "hel");
    assert_string_equal(pl_arena_strndup(a, "hi", 10), "hi");
    assert_string_equal(pl_arena_strndup(a, "hi", 0), "");
    assert_null(pl_arena_strndup(a, NULL, 4));

    /* a failed block allocation returns NULL and leaves the arena usable */
    int64_t calls = atomic_load(&t.n_calls);
    atomic_store(&t.fail_at, calls + 1);
    assert_null(pl_arena_alloc(a, 5000, 1));
    assert_non_null(pl_arena_alloc(a, 5000, 1));
    atomic_store(&t.fail_at, 0);

    pl_arena_free(a);
    assert_int_equal(atomic_load(&t.in_use), base);
    pl_ctx_free(ctx);
}

static void test_arena_init_errors(void **state) {
    (void)state;
    pl_alloc_tracker t;
    pl_ctx *ctx = tracked_ctx(&t);
    int64_t base = atomic_load(&t.in_use);
    pl_arena *a = (pl_arena *)&t;
    assert_int_equal(pl_arena_init(ctx, SIZE_MAX, &a), PL_ERR_OVERFLOW);
    assert_null(a);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "arena"));
    assert_int_equal(pl_arena_init(ctx, 64, NULL), PL_ERR_INVALID_ARG);
    atomic_store(&t.fail_at, atomic_load(&t.n_calls) + 1);
    assert_int_equal(pl_arena_init(ctx, 64, &a), PL_ERR_NOMEM);
    assert_null(a);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "64-byte"));
    assert_int_equal(atomic_load(&t.in_use), base);
    /* block_size 0: the default; works without a ctx too */
    assert_int_equal(pl_arena_init(NULL, 0, &a), PL_OK);
    assert_non_null(pl_arena_alloc(a, 60000, 1));
    assert_non_null(pl_arena_alloc(a, 60000, 1));
    pl_arena_free(a);
    pl_ctx_free(ctx);
}

int test_mem_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_track_counts),
        cmocka_unit_test(test_track_fail_at),
        cmocka_unit_test(test_libc_alloc),
        cmocka_unit_test(test_size_helpers),
        cmocka_unit_test(test_arena_align),
        cmocka_unit_test(test_arena_blocks_reset),
        cmocka_unit_test(test_arena_init_errors),
    };
    return cmocka_run_group_tests_name("core/mem", tests, NULL, NULL);
}
