/*
 * test_kernels.c - every SIMD kernel of every level this CPU runs against the scalar
 * reference rows of the type table, over random data with ragged sizes (block counts
 * that are not a multiple of the kernels' unroll, including a single block):
 *  - activation quantizers: dequantized output vs the scalar quantizer's, NMSE bound;
 *  - row dots: level dot on level-quantized activations vs the scalar dot on the
 *    scalar-quantized ones, relative to sum |w x| (both see the same weights);
 *  - pl_matmul at the process level (PL_CPU set by ctest) vs naive dots, odd row counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parley/core.h"
#include "parley/tensor.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) * 0x1p-52 - 1.0);
}

static const pl_type weight_types[] = { PL_TYPE_F32, PL_TYPE_F16, PL_TYPE_BF16, PL_TYPE_Q8_0, PL_TYPE_Q4_0,
                                        PL_TYPE_Q4_1, PL_TYPE_Q5_0, PL_TYPE_Q5_1, PL_TYPE_Q2_K, PL_TYPE_Q3_K,
                                        PL_TYPE_Q4_K, PL_TYPE_Q5_K, PL_TYPE_Q6_K };
#define N_TYPES (sizeof weight_types / sizeof weight_types[0])

enum { KMAX = 256 * 7 };

static void test_kernels_vs_scalar(void **state) {
    (void)state;
    static float w[KMAX], x[KMAX], xd_ref[KMAX], xd_lv[KMAX];
    static uint8_t wq[KMAX * 4], xq_ref[KMAX * 4], xq_lv[KMAX * 4];
    int levels_run = 0;
    for (int lv = PL_CPU_LEVEL_SCALAR; lv < PL_CPU_LEVEL_COUNT; lv++) {
        pl_vec_dot_fn dot;
        pl_from_f32_fn quant;
        if (pl_type_kernel(PL_TYPE_Q4_0, (pl_cpu_level)lv, &dot, &quant) == PL_ERR_UNSUPPORTED) continue;
        levels_run++;
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            const pl_type_info *t = pl_type_get(weight_types[ti]);
            const pl_type_info *at = pl_type_get(t->vec_dot_type);
            assert_int_equal(pl_type_kernel(weight_types[ti], (pl_cpu_level)lv, &dot, &quant), PL_OK);
            assert_non_null(dot);
            assert_non_null(quant);
            /* 32-blocks: 1, 2, 3, 7, 17, 56 blocks; K blocks: 1, 2, 3, 7; plain: odd n */
            const int64_t blocks32[] = { 32, 64, 96, 224, 544, 1792 };
            const int64_t blocks256[] = { 256, 512, 768, 1792 };
            const int64_t plain[] = { 1, 7, 15, 33, 100, 1031 };
            const int64_t *ns = t->block_size == 256 ? blocks256 : t->block_size == 32 ? blocks32 : plain;
            int n_ns = t->block_size == 256 ? 4 : 6;
            for (int ni = 0; ni < n_ns; ni++) {
                int64_t n = ns[ni];
                for (int trial = 0; trial < 3; trial++) {
                    for (int64_t i = 0; i < n; i++) {
                        w[i] = frand() + (trial == 1 ? 0.4f : 0.0f);
                        x[i] = frand() * (trial == 2 ? 50.0f : 1.0f);
                    }
                    t->from_f32(w, wq, n);
                    at->from_f32(x, xq_ref, n);
                    quant(x, xq_lv, n);
                    if (at->to_f32 && t->vec_dot_type != PL_TYPE_F32) {
                        at->to_f32(xq_ref, xd_ref, n);
                        at->to_f32(xq_lv, xd_lv, n);
                        double e = 0, s = 0;
                        for (int64_t i = 0; i < n; i++) {
                            e += ((double)xd_lv[i] - xd_ref[i]) * ((double)xd_lv[i] - xd_ref[i]);
                            s += (double)x[i] * x[i];
                        }
                        /* only rounding ties may differ: far below one quantization step */
                        assert_true(e <= 1e-5 * s + 1e-30);
                    }
                    float ref = t->vec_dot(wq, xq_ref, n), got = dot(wq, xq_lv, n);
                    double mag = 0;
                    for (int64_t i = 0; i < n; i++) mag += fabs((double)w[i] * x[i]);
                    if (!(fabs((double)got - ref) <= 1e-3 * mag + 1e-6)) {
                        print_error("level %d type %s n %lld: got %g want %g (mag %g)\n", lv, t->name,
                                    (long long)n, got, ref, mag);
                        fail();
                    }
                }
            }
        }
    }
    assert_true(levels_run >= 1);
}

/* the batched dots equal the single-row dot exactly (same summation order), so a token's
 * logits don't depend on how its batch was split */
static void test_dot4(void **state) {
    (void)state;
    enum { KM = 256 * 3 };
    static float w[KM], x[4 * KM];
    static uint8_t wq[KM * 2], xq[4 * KM * 2];
    for (int lv = PL_CPU_LEVEL_SCALAR; lv < PL_CPU_LEVEL_COUNT; lv++) {
        for (uint32_t id = 0; id < PL_TYPE_COUNT; id++) {
            pl_vec_dot4_fn d4 = pl_type_kernel_dot4(id, (pl_cpu_level)lv);
            pl_vec_dot_fn d1;
            if (!d4) continue;
            assert_int_equal(pl_type_kernel(id, (pl_cpu_level)lv, &d1, NULL), PL_OK);
            const pl_type_info *t = pl_type_get(id), *at = pl_type_get(t->vec_dot_type);
            const int64_t K = t->block_size == 256 ? KM : 32 * 19; /* odd block counts */
            uint64_t xb;
            assert_int_equal(pl_type_row_bytes(t->vec_dot_type, K, &xb), PL_OK);
            for (int i = 0; i < K; i++) w[i] = frand();
            for (int i = 0; i < 4 * K; i++) x[i] = frand();
            t->from_f32(w, wq, K);
            for (int c = 0; c < 4; c++) at->from_f32(x + c * K, xq + c * xb, K);
            float o[4];
            d4(wq, xq, (size_t)xb, K, o);
            for (int c = 0; c < 4; c++) assert_true(o[c] == d1(wq, xq + c * xb, K));
        }
    }
}

/* the attention helpers of every level vs the scalar level's, ragged lengths */
static void test_vec_ops(void **state) {
    (void)state;
    enum { N = 203 };
    static float x[N], y0[N], y1[N];
    static uint16_t h[N], h0[N], h1[N];
    const pl_vec_ops *ref = pl_vec_ops_get(PL_CPU_LEVEL_SCALAR);
    assert_non_null(ref);
    for (int lv = PL_CPU_LEVEL_SCALAR; lv < PL_CPU_LEVEL_COUNT; lv++) {
        const pl_vec_ops *vo = pl_vec_ops_get((pl_cpu_level)lv);
        if (!vo) continue;
        const int64_t ns[] = { 1, 7, 8, 15, 16, 17, 64, 200, N };
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            int64_t n = ns[ni];
            for (int64_t i = 0; i < n; i++) {
                x[i] = frand() * 3.0f;
                h[i] = pl_f32_to_f16(frand());
                y0[i] = y1[i] = frand();
            }
            double mag = 0;
            for (int64_t i = 0; i < n; i++) mag += fabs((double)x[i] * pl_f16_to_f32(h[i]));
            assert_true(fabs((double)vo->dot_f32_f16(x, h, n) - ref->dot_f32_f16(x, h, n)) <= 1e-5 * mag + 1e-7);
            vo->axpy_f16(y0, 0.7f, h, n);
            ref->axpy_f16(y1, 0.7f, h, n);
            for (int64_t i = 0; i < n; i++) assert_true(fabsf(y0[i] - y1[i]) <= 1e-6f);
            vo->f32_to_f16(x, h0, n);
            ref->f32_to_f16(x, h1, n);
            assert_memory_equal(h0, h1, (size_t)n * sizeof h0[0]); /* both round to nearest even */
            /* sum of squares vs double; silu(g) * u vs the formula in double, incl. large |g| */
            double ss = 0;
            for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
            assert_true(fabs((double)vo->sum_sq(x, n) - ss) <= 1e-6 * ss);
            for (int64_t i = 0; i < n; i++) y0[i] = x[i] * (i % 5 == 0 ? 40.0f : 1.0f); /* g in [-120, 120] */
            vo->silu_mul(y1, y0, x, n);
            for (int64_t i = 0; i < n; i++) {
                double g = y0[i], want = g / (1.0 + exp(-g)) * x[i];
                assert_true(fabs(y1[i] - want) <= 1e-6 * fabs(want) + 1e-30);
            }
        }
    }
}

/* The fused attention of every level against a naive two-pass softmax in double over
 * the same f16 cache: ragged head sizes (not a multiple of 8), blocks in scattered
 * cache slots, queries with different last positions (inside a block, on a block edge,
 * position 0), and a query's output equal whatever other queries share the call. */
static void test_attn(void **state) {
    (void)state;
    enum { NB = 6, B = PL_ATTN_BLOCK, NQ = 7 };
    const int32_t hds[][2] = { { 64, 64 }, { 5, 13 }, { 80, 72 }, { 128, 128 }, { 256, 24 } };
    const int32_t last[NQ] = { 0, 31, 32, 77, 150, 191, 100 };
    const int32_t blocks[NB] = { 4, 0, 7, 2, 5, 1 }; /* cache slots of positions 0.., 32.., ... */
    const int32_t heads = 2, head = 1;               /* rows of kv head 1 inside each block */
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        const int32_t hk = hds[hi][0], hv = hds[hi][1];
        const size_t kblk = (size_t)heads * B * (size_t)hk, vblk = (size_t)heads * B * (size_t)hv;
        uint16_t *k = malloc(8 * kblk * sizeof(uint16_t)), *v = malloc(8 * vblk * sizeof(uint16_t));
        float *q = malloc((size_t)NQ * (size_t)hk * sizeof(float)), *o = malloc((size_t)NQ * (size_t)hv * sizeof(float));
        float *o1 = malloc((size_t)hv * sizeof(float));
        double *ref = malloc((size_t)NQ * (size_t)hv * sizeof(double)), *sc = malloc(NB * B * sizeof(double));
        assert_true(k && v && q && o && o1 && ref && sc);
        for (size_t i = 0; i < 8 * kblk; i++) k[i] = pl_f32_to_f16(frand() * 2.0f);
        for (size_t i = 0; i < 8 * vblk; i++) v[i] = pl_f32_to_f16(frand());
        for (int i = 0; i < NQ * hk; i++) q[i] = frand() * 1.5f;
        const float scale = 1.0f / sqrtf((float)hk);
        for (int i = 0; i < NQ; i++) {
            double mx = -1e300, sum = 0;
            for (int32_t p = 0; p <= last[i]; p++) {
                const uint16_t *kr = k + (size_t)blocks[p / B] * kblk + (size_t)head * B * (size_t)hk + (size_t)(p % B) * (size_t)hk;
                double d = 0;
                for (int32_t x = 0; x < hk; x++) d += (double)q[i * hk + x] * pl_f16_to_f32(kr[x]);
                sc[p] = d * scale;
                mx = fmax(mx, sc[p]);
            }
            for (int32_t x = 0; x < hv; x++) ref[i * hv + x] = 0;
            for (int32_t p = 0; p <= last[i]; p++) {
                const uint16_t *vr = v + (size_t)blocks[p / B] * vblk + (size_t)head * B * (size_t)hv + (size_t)(p % B) * (size_t)hv;
                double e = exp(sc[p] - mx);
                sum += e;
                for (int32_t x = 0; x < hv; x++) ref[i * hv + x] += e * pl_f16_to_f32(vr[x]);
            }
            for (int32_t x = 0; x < hv; x++) ref[i * hv + x] /= sum;
        }
        for (int lv = PL_CPU_LEVEL_SCALAR; lv < PL_CPU_LEVEL_COUNT; lv++) {
            const pl_vec_ops *vo = pl_vec_ops_get((pl_cpu_level)lv);
            if (!vo) continue;
            pl_attn_args a = { .q = q, .q_stride = (size_t)hk, .nq = NQ, .last = last, .k = k, .v = v,
                               .blocks = blocks, .k_block = kblk, .v_block = vblk,
                               .k_head = (size_t)head * B * (size_t)hk, .v_head = (size_t)head * B * (size_t)hv,
                               .hd_k = hk, .hd_v = hv, .scale = scale, .o = o, .o_stride = (size_t)hv };
            vo->attn(&a);
            double e = 0, s = 0;
            for (int i = 0; i < NQ * hv; i++) {
                e += (o[i] - ref[i]) * (o[i] - ref[i]);
                s += ref[i] * ref[i];
            }
            if (!(e <= 1e-11 * s)) {
                print_error("attn level %d hd %d/%d: NMSE %g\n", lv, hk, hv, e / s);
                fail();
            }
            /* each query alone gives exactly its row of the batched call */
            for (int i = 0; i < NQ; i++) {
                pl_attn_args a1 = a;
                a1.q = q + i * hk;
                a1.nq = 1;
                a1.last = &last[i];
                a1.o = o1;
                vo->attn(&a1);
                assert_memory_equal(o1, o + i * hv, (size_t)hv * sizeof(float));
            }
        }
        free(k);
        free(v);
        free(q);
        free(o);
        free(o1);
        free(ref);
        free(sc);
    }
}

/* pl_matmul at the process level on odd shapes against naive per-row dots. */
static void test_matmul_level(void **state) {
    (void)state;
    enum { K = 512, ROWS = 37, NX = 3 };
    static float wf[K * ROWS], x[K * NX], y[ROWS * NX];
    static uint8_t wq[K * ROWS * 4], xq[K * 4], work[K * NX * 4];
    const pl_type types[] = { PL_TYPE_Q4_0, PL_TYPE_Q8_0, PL_TYPE_Q5_0, PL_TYPE_Q4_K, PL_TYPE_Q6_K, PL_TYPE_F16 };
    pl_ctx *ctx = NULL;
    pl_pool *pool = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    assert_int_equal(pl_pool_init(ctx, 2, &pool), PL_OK);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const pl_type_info *t = pl_type_get(types[ti]);
        const pl_type_info *at = pl_type_get(t->vec_dot_type);
        for (int i = 0; i < K * ROWS; i++) wf[i] = frand();
        for (int i = 0; i < K * NX; i++) x[i] = frand();
        uint64_t rb;
        assert_int_equal(pl_type_row_bytes(types[ti], K, &rb), PL_OK);
        for (int r = 0; r < ROWS; r++) t->from_f32(wf + r * K, wq + r * rb, K);
        pl_mat m;
        assert_int_equal(pl_mat_init(&m, types[ti], K, ROWS, wq), PL_OK);
        assert_true(pl_matmul_work_size(types[ti], K, NX) <= sizeof work);
        for (int p = 0; p < 2; p++) {
            assert_int_equal(pl_matmul(p ? pool : NULL, &m, x, NX, y, work, sizeof work), PL_OK);
            for (int i = 0; i < NX; i++) {
                at->from_f32(x + i * K, xq, K);
                for (int r = 0; r < ROWS; r++) {
                    float ref = t->vec_dot(wq + r * rb, xq, K);
                    assert_true(fabsf(y[i * ROWS + r] - ref) <= 2e-2f + 2e-3f * fabsf(ref));
                }
            }
        }
    }
    pl_pool_free(pool);
    pl_ctx_free(ctx);
}

/* pl_matmul on prefill-sized batches (the GEMM at levels that have one) against the
 * scalar reference dots on scalar-quantized activations: ragged row panels (rows not a
 * multiple of 16), column tails (n not a multiple of 8), one block, and k past the GEMM's
 * 1024-value packing chunk. Integer block dots are exact and the activation quantizers
 * agree up to rounding ties, so only float summation order differs (the Q5_0 scalar reference
 * sums in another order: 6e-8 at every level): NMSE <= 1e-6. */
static void test_matmul_prefill(void **state) {
    (void)state;
    typedef struct { pl_type type; int64_t k, rows, n; } mm_case;
    const mm_case cases[] = {
        { PL_TYPE_Q4_0, 32 * 19, 37, 45 },  { PL_TYPE_Q4_0, 32 * 40, 16, 40 }, { PL_TYPE_Q4_0, 32, 5, 41 },
        { PL_TYPE_Q8_0, 32 * 19, 37, 45 },  { PL_TYPE_Q8_0, 32 * 37, 48, 64 }, { PL_TYPE_Q5_0, 32 * 19, 37, 45 },
        { PL_TYPE_Q5_0, 32 * 33, 21, 40 },  { PL_TYPE_Q4_K, 256 * 3, 37, 45 }, { PL_TYPE_Q4_K, 256 * 5, 17, 41 },
        { PL_TYPE_Q4_K, 256, 3, 40 },       { PL_TYPE_Q6_K, 256 * 3, 37, 45 }, { PL_TYPE_Q6_K, 256 * 5, 32, 47 },
        { PL_TYPE_Q4_1, 32 * 3, 19, 40 },   { PL_TYPE_F16, 64, 19, 40 },
    };
    pl_ctx *ctx = NULL;
    pl_pool *pool = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    assert_int_equal(pl_pool_init(ctx, 2, &pool), PL_OK);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const mm_case *cs = &cases[ci];
        const pl_type_info *t = pl_type_get(cs->type), *at = pl_type_get(t->vec_dot_type);
        uint64_t rb, xb;
        assert_int_equal(pl_type_row_bytes(cs->type, (uint64_t)cs->k, &rb), PL_OK);
        assert_int_equal(pl_type_row_bytes(t->vec_dot_type, (uint64_t)cs->k, &xb), PL_OK);
        float *wf = malloc((size_t)cs->k * sizeof(float)), *x = malloc((size_t)(cs->k * cs->n) * sizeof(float));
        float *y = malloc((size_t)(cs->rows * cs->n) * sizeof(float));
        uint8_t *wq = malloc((size_t)rb * (size_t)cs->rows), *xq = malloc((size_t)xb);
        size_t ws = pl_matmul_work_size(cs->type, cs->k, cs->n);
        void *work = malloc(ws);
        assert_non_null(wf);
        assert_non_null(x);
        assert_non_null(y);
        assert_non_null(wq);
        assert_non_null(xq);
        assert_non_null(work);
        for (int64_t r = 0; r < cs->rows; r++) {
            for (int64_t i = 0; i < cs->k; i++) wf[i] = frand() + (r % 3 == 1 ? 0.3f : 0.0f);
            t->from_f32(wf, wq + (size_t)r * rb, cs->k);
        }
        for (int64_t i = 0; i < cs->k * cs->n; i++) x[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
        pl_mat m;
        assert_int_equal(pl_mat_init(&m, cs->type, cs->k, cs->rows, wq), PL_OK);
        for (int p = 0; p < 2; p++) {
            memset(y, 0xFF, (size_t)(cs->rows * cs->n) * sizeof(float)); /* NaN: every output must be written */
            assert_int_equal(pl_matmul(p ? pool : NULL, &m, x, cs->n, y, work, ws), PL_OK);
            double e = 0, s = 0;
            for (int64_t c = 0; c < cs->n; c++) {
                at->from_f32(x + c * cs->k, xq, cs->k);
                for (int64_t r = 0; r < cs->rows; r++) {
                    double ref = t->vec_dot(wq + (size_t)r * rb, xq, cs->k), got = y[c * cs->rows + r];
                    e += (got - ref) * (got - ref);
                    s += ref * ref;
                }
            }
            if (!(e <= 1e-6 * s)) {
                print_error("%s k %lld rows %lld n %lld: NMSE %g\n", t->name, (long long)cs->k, (long long)cs->rows,
                            (long long)cs->n, e / s);
                fail();
            }
        }
        free(wf);
        free(x);
        free(y);
        free(wq);
        free(xq);
        free(work);
    }
    pl_pool_free(pool);
    pl_ctx_free(ctx);
}

/* pl_matmul on decode-sized batches (1..39 columns: the decode kernels at levels that
 * have one, else the row dots), through pl_matmul_multi with three matrices as the
 * model's Q/K/V call does: against the scalar reference dots (NMSE <= 1e-6, only float
 * summation order differs), and batch invariance — every column's result is bit-identical
 * to what the same column gives alone (n = 1), whatever the other columns hold, which is
 * what lets the server batch sequences without changing their text. k covers whole
 * 128-value groups, a 1..3 block tail and k < 128; rows are ragged. */
static void test_matmul_decode(void **state) {
    (void)state;
    const pl_type types[] = { PL_TYPE_Q4_0, PL_TYPE_Q8_0, PL_TYPE_Q5_0, PL_TYPE_Q4_K, PL_TYPE_Q6_K };
    const int64_t ks32[] = { 32, 96, 128, 32 * 19, 2048 + 96 }, ks256[] = { 256, 768, 2304 };
    const int64_t ns[] = { 1, 2, 3, 4, 5, 7, 8, 9, 13, 31, 39 }; /* up to PL_GEMM_MIN_N - 1 */
    enum { NM = 3 };
    const int64_t rows[NM] = { 37, 16, 5 };
    pl_ctx *ctx = NULL;
    pl_pool *pool = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    assert_int_equal(pl_pool_init(ctx, 2, &pool), PL_OK);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const pl_type_info *t = pl_type_get(types[ti]), *at = pl_type_get(t->vec_dot_type);
        const bool kq = t->block_size == 256;
        const int64_t *ks = kq ? ks256 : ks32;
        const size_t nk = kq ? sizeof ks256 / sizeof ks256[0] : sizeof ks32 / sizeof ks32[0];
        for (size_t ki = 0; ki < nk; ki++) {
            const int64_t k = ks[ki], nmax = 39;
            uint64_t rb, xb;
            assert_int_equal(pl_type_row_bytes(types[ti], (uint64_t)k, &rb), PL_OK);
            assert_int_equal(pl_type_row_bytes(t->vec_dot_type, (uint64_t)k, &xb), PL_OK);
            float *wf = malloc((size_t)k * sizeof(float)), *x = malloc((size_t)(k * nmax) * sizeof(float));
            uint8_t *wq[NM], *xq = malloc((size_t)xb);
            float *y[NM], *y1[NM];
            pl_mat m[NM];
            const pl_mat *mp[NM];
            size_t ws = pl_matmul_work_size(types[ti], k, nmax);
            void *work = malloc(ws);
            assert_non_null(wf);
            assert_non_null(x);
            assert_non_null(xq);
            assert_non_null(work);
            for (int mi = 0; mi < NM; mi++) {
                wq[mi] = malloc((size_t)rb * (size_t)rows[mi]);
                y[mi] = malloc((size_t)(rows[mi] * nmax) * sizeof(float));
                y1[mi] = malloc((size_t)rows[mi] * sizeof(float));
                assert_non_null(wq[mi]);
                assert_non_null(y[mi]);
                assert_non_null(y1[mi]);
                for (int64_t r = 0; r < rows[mi]; r++) {
                    for (int64_t i = 0; i < k; i++) wf[i] = frand() + (r % 3 == 1 ? 0.3f : 0.0f);
                    t->from_f32(wf, wq[mi] + (size_t)r * rb, k);
                }
                assert_int_equal(pl_mat_init(&m[mi], types[ti], k, rows[mi], wq[mi]), PL_OK);
                mp[mi] = &m[mi];
            }
            for (int64_t i = 0; i < k * nmax; i++) x[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                const int64_t n = ns[ni];
                for (int mi = 0; mi < NM; mi++) memset(y[mi], 0xFF, (size_t)(rows[mi] * n) * sizeof(float));
                assert_int_equal(pl_matmul_multi(ni % 2 ? pool : NULL, mp, NM, x, n, y, work, ws), PL_OK);
                double e = 0, s = 0;
                for (int64_t c = 0; c < n; c++) {
                    at->from_f32(x + c * k, xq, k);
                    float *const yc[NM] = { y1[0], y1[1], y1[2] };
                    assert_int_equal(pl_matmul_multi(NULL, mp, NM, x + c * k, 1, yc, work, ws), PL_OK);
                    for (int mi = 0; mi < NM; mi++)
                        for (int64_t r = 0; r < rows[mi]; r++) {
                            double ref = t->vec_dot(wq[mi] + (size_t)r * rb, xq, k), got = y[mi][c * rows[mi] + r];
                            e += (got - ref) * (got - ref);
                            s += ref * ref;
                            if (memcmp(&y[mi][c * rows[mi] + r], &y1[mi][r], sizeof(float)) != 0) {
                                print_error("%s k %lld n %lld col %lld row %lld: %.9g batched vs %.9g alone\n", t->name,
                                            (long long)k, (long long)n, (long long)c, (long long)r,
                                            (double)y[mi][c * rows[mi] + r], (double)y1[mi][r]);
                                fail();
                            }
                        }
                }
                if (!(e <= 1e-6 * s)) {
                    print_error("%s k %lld n %lld: NMSE %g\n", t->name, (long long)k, (long long)n, e / s);
                    fail();
                }
            }
            for (int mi = 0; mi < NM; mi++) {
                free(wq[mi]);
                free(y[mi]);
                free(y1[mi]);
            }
            free(wf);
            free(x);
            free(xq);
            free(work);
        }
    }
    pl_pool_free(pool);
    pl_ctx_free(ctx);
}

/* pl_matmul_multi over a mix of 32-block types that share the Q8_0 partner (Q4_0,
 * Q8_0, Q5_0, as a file with one tensor of another type has): at the decode kernels'
 * level their activation formats differ (each carries its type's offset correction),
 * so the call runs them one by one. Each output must be bit-identical to the matrix
 * alone through pl_matmul, and near the scalar reference dot; work is 64-byte aligned
 * here and 16 bytes off it (the misaligned path must give the same bits). */
static void test_matmul_multi_mixed(void **state) {
    (void)state;
    enum { NM = 3, K = 384 + 64, NMAX = 5 };
    const pl_type types[NM] = { PL_TYPE_Q4_0, PL_TYPE_Q8_0, PL_TYPE_Q5_0 };
    const int64_t rows[NM] = { 21, 16, 9 };
    pl_ctx *ctx = NULL;
    pl_pool *pool = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    assert_int_equal(pl_pool_init(ctx, 2, &pool), PL_OK);
    uint8_t *wq[NM];
    pl_mat m[NM];
    const pl_mat *mp[NM];
    float wf[K], x[NMAX * K], *y[NM], *y1[NM];
    size_t ws = 0;
    for (int mi = 0; mi < NM; mi++) {
        const pl_type_info *t = pl_type_get(types[mi]);
        uint64_t rb;
        assert_int_equal(pl_type_row_bytes(types[mi], K, &rb), PL_OK);
        wq[mi] = malloc((size_t)rb * (size_t)rows[mi]);
        y[mi] = malloc((size_t)(rows[mi] * NMAX) * sizeof(float));
        y1[mi] = malloc((size_t)(rows[mi] * NMAX) * sizeof(float));
        assert_non_null(wq[mi]);
        assert_non_null(y[mi]);
        assert_non_null(y1[mi]);
        for (int64_t r = 0; r < rows[mi]; r++) {
            for (int64_t i = 0; i < K; i++) wf[i] = frand() + (r % 2 ? 0.25f : 0.0f);
            t->from_f32(wf, wq[mi] + (size_t)r * rb, K);
        }
        assert_int_equal(pl_mat_init(&m[mi], types[mi], K, rows[mi], wq[mi]), PL_OK);
        mp[mi] = &m[mi];
        size_t w = pl_matmul_work_size(types[mi], K, NMAX);
        if (w > ws) ws = w;
    }
    for (int64_t i = 0; i < NMAX * K; i++) x[i] = frand() * (i % 5 == 0 ? 3.0f : 1.0f);
    uint8_t *raw = malloc(ws + 64 + 16), xq[K + K / 32 * 4];
    assert_non_null(raw);
    for (int off = 0; off <= 16; off += 16) {
        void *work = (uint8_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63) + off;
        for (int64_t n = 1; n <= NMAX; n += 3) {
            assert_int_equal(pl_matmul_multi(pool, mp, NM, x, n, y, work, ws), PL_OK);
            for (int mi = 0; mi < NM; mi++) {
                const pl_type_info *t = pl_type_get(types[mi]);
                uint64_t rb;
                assert_int_equal(pl_type_row_bytes(types[mi], K, &rb), PL_OK);
                assert_int_equal(pl_matmul(NULL, mp[mi], x, n, y1[mi], work, ws), PL_OK);
                assert_memory_equal(y[mi], y1[mi], (size_t)(rows[mi] * n) * sizeof(float));
                double e = 0, sum = 0;
                for (int64_t c = 0; c < n; c++) {
                    pl_type_get(t->vec_dot_type)->from_f32(x + c * K, xq, K);
                    for (int64_t r = 0; r < rows[mi]; r++) {
                        double ref = t->vec_dot(wq[mi] + (size_t)r * rb, xq, K), got = y[mi][c * rows[mi] + r];
                        e += (got - ref) * (got - ref);
                        sum += ref * ref;
                    }
                }
                if (!(e <= 1e-6 * sum)) {
                    print_error("%s in a mixed multi, n %lld: NMSE %g\n", t->name, (long long)n, e / sum);
                    fail();
                }
            }
        }
    }
    for (int mi = 0; mi < NM; mi++) {
        free(wq[mi]);
        free(y[mi]);
        free(y1[mi]);
    }
    free(raw);
    pl_pool_free(pool);
    pl_ctx_free(ctx);
}

/* the standard mix rules (shared formats.md), cases worked out by hand */
static void test_quant_mix_rules(void **state) {
    (void)state;
    const pl_quant_mix *m = pl_quant_mix_find("Q4_K_M");
    assert_non_null(m);
    assert_int_equal(m->ftype, 15);
    assert_null(pl_quant_mix_find("q3_k_xl"));
    /* n = 16: more bits on layers 0, 1 (i < 2), 14, 15 (i >= 14), 4, 7, 10, 13 ((i-2)%3 == 2) */
    const int more[16] = { 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1 };
    for (int i = 0; i < 16; i++) assert_int_equal(pl_quant_use_more_bits(i, 16), more[i]);
    assert_int_equal(pl_quant_mix_type(m, "blk.4.attn_v.weight", 2, 2048, 16, true), PL_TYPE_Q6_K);
    assert_int_equal(pl_quant_mix_type(m, "blk.3.attn_v.weight", 2, 2048, 16, true), PL_TYPE_Q4_K);
    assert_int_equal(pl_quant_mix_type(m, "blk.3.ffn_down.weight", 2, 8192, 16, true), PL_TYPE_Q4_K);
    assert_int_equal(pl_quant_mix_type(m, "blk.15.ffn_down.weight", 2, 8192, 16, true), PL_TYPE_Q6_K);
    assert_int_equal(pl_quant_mix_type(m, "blk.3.attn_q.weight", 2, 2048, 16, true), PL_TYPE_Q4_K);
    assert_int_equal(pl_quant_mix_type(m, "token_embd.weight", 2, 2048, 16, true), PL_TYPE_Q6_K);
    assert_int_equal(pl_quant_mix_type(m, "token_embd.weight", 2, 2048, 16, false), PL_TYPE_Q4_K);
    assert_int_equal(pl_quant_mix_type(m, "output.weight", 2, 576, 30, false), PL_TYPE_Q8_0);
    assert_int_equal(pl_quant_mix_type(m, "blk.5.attn_q.weight", 2, 576, 30, true), PL_TYPE_Q5_0);
    assert_int_equal(pl_quant_mix_type(m, "blk.0.attn_v.weight", 2, 576, 30, true), PL_TYPE_Q8_0);
    assert_int_equal(pl_quant_mix_type(m, "blk.0.attn_qkv.weight", 2, 3072, 32, true), PL_TYPE_Q5_K);
    assert_int_equal(pl_quant_mix_type(m, "blk.0.attn_norm.weight", 1, 2048, 16, true), PL_TYPE_F32);
    const pl_quant_mix *m5 = pl_quant_mix_find("q5_k_m");
    assert_int_equal(pl_quant_mix_type(m5, "blk.2.ffn_up.weight", 2, 896, 24, true), PL_TYPE_Q5_1);
    assert_int_equal(pl_quant_mix_type(m5, "blk.0.attn_qkv.weight", 2, 3072, 32, true), PL_TYPE_Q6_K);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_vs_scalar),
        cmocka_unit_test(test_dot4),
        cmocka_unit_test(test_vec_ops),
        cmocka_unit_test(test_matmul_level),
        cmocka_unit_test(test_matmul_prefill),
        cmocka_unit_test(test_matmul_decode),
        cmocka_unit_test(test_matmul_multi_mixed),
        cmocka_unit_test(test_attn),
        cmocka_unit_test(test_quant_mix_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
