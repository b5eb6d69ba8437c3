/*
 * test_sample.c - the sampler chain against hand-computed numbers and, for
 * the random draw, against the distribution a naive reference computes here
 * (full sort, plain softmax) with a chi-square bound.
 *
 * Draws are from fixed seeds, so every run sees the same samples: the
 * chi-square checks are deterministic, not flaky; a companion check shows the
 * same samples fail the bound against a wrong distribution.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample/sample_int.h"

static pl_ctx *ctx;

static int setup(void **state) {
    (void)state;
    return pl_ctx_init(&ctx, NULL) == PL_OK ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    pl_ctx_free(ctx);
    return 0;
}

/* Every filter off, temperature 1: the chain only copies (and penalizes). */
static pl_sampler_params plain(void) {
    pl_sampler_params p = pl_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.penalty_last_n = 0;
    return p;
}

static pl_sampler *make(const pl_sampler_params *p, int32_t nv) {
    pl_sampler *s = NULL;
    assert_int_equal(pl_sampler_init(ctx, p, nv, &s), PL_OK);
    return s;
}

/* Surviving ids (ascending) as a bitmask over a small vocab. */
static unsigned kept_mask(pl_sampler *s, const float *logits, float *vals_out) {
    int32_t ids[64];
    float vals[64];
    size_t n = pl_sampler_debug_candidates(s, logits, ids, vals, 64);
    assert_true(n <= 64);
    unsigned m = 0;
    for (size_t i = 0; i < n; i++) {
        m |= 1u << ids[i];
        if (vals_out) vals_out[ids[i]] = vals[i];
    }
    return m;
}

/* ---- PRNG ---- */

static void test_rng_vectors(void **state) {
    (void)state;
    /* xoshiro256** reference outputs for the state {1, 2, 3, 4}, as published
     * with the algorithm's reference implementation test vectors. */
    pl_rng r = { .s = { 1, 2, 3, 4 } };
    const uint64_t want[] = { 11520ull, 0ull, 1509978240ull, 1215971899390074240ull,
                              1216172134540287360ull, 607988272756665600ull,
                              16172922978634559625ull, 8476171486693032832ull,
                              10595114339597558777ull, 2904607092377533576ull };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) assert_true(pl_rng_next(&r) == want[i]);
    /* splitmix64 from 0: its first two outputs seed s[0], s[1]. */
    pl_rng_seed(&r, 0);
    assert_true(r.s[0] == 0xE220A8397B1DCDAFull);
    assert_true(r.s[1] == 0x6E789E6AA1B965F4ull);
    /* Uniform doubles stay in [0, 1) and average 1/2. */
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = pl_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
    }
    assert_true(fabs(sum / 100000 - 0.5) < 0.005);
}

/* ---- steps, hand-computed ---- */

static void test_penalties_exact(void **state) {
    (void)state;
    pl_sampler_params p = plain();
    p.penalty_last_n = 4;
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    pl_sampler *s = make(&p, 5);
    const float logits[5] = { 2.0f, -1.0f, 0.5f, 3.0f, -2.0f };
    /* 4 is pushed out of the 4-token window by the later tokens. */
    const int32_t hist[] = { 4, 0, 0, 1, 3 };
    for (size_t i = 0; i < 5; i++) assert_int_equal(pl_sampler_accept(s, hist[i]), PL_OK);
    float v[5];
    assert_int_equal(kept_mask(s, logits, v), 0x1f);
    /* 0: 2/2 - 2*0.5 - 0.25; 1: -1*2 - 0.5 - 0.25; 3: 3/2 - 0.5 - 0.25 */
    assert_float_equal(v[0], -0.25f, 1e-6);
    assert_float_equal(v[1], -2.75f, 1e-6);
    assert_float_equal(v[2], 0.5f, 1e-6);
    assert_float_equal(v[3], 0.75f, 1e-6);
    assert_float_equal(v[4], -2.0f, 1e-6);
    /* reset forgets the history */
    pl_sampler_reset(s);
    kept_mask(s, logits, v);
    for (int i = 0; i < 5; i++) assert_float_equal(v[i], logits[i], 0);
    assert_int_equal(pl_sampler_accept(s, 5), PL_ERR_RANGE);
    assert_int_equal(pl_sampler_accept(s, -1), PL_ERR_RANGE);
    pl_sampler_free(s);

    /* Only the repetition penalty: applied once, however many repeats. */
    p = plain();
    p.penalty_last_n = 8;
    p.repeat_penalty = 1.5f;
    s = make(&p, 5);
    for (int i = 0; i < 3; i++) pl_sampler_accept(s, 3);
    pl_sampler_accept(s, 1);
    kept_mask(s, logits, v);
    assert_float_equal(v[3], 2.0f, 1e-6);
    assert_float_equal(v[1], -1.5f, 1e-6);
    pl_sampler_free(s);
}

static void test_logit_bias(void **state) {
    (void)state;
    pl_sampler_params p = plain();
    const pl_logit_bias bias[] = { { 2, 1.0f }, { 0, -INFINITY }, { 2, 0.5f } };
    p.logit_bias = bias;
    p.n_logit_bias = 3;
    pl_sampler *s = make(&p, 4);
    const float logits[4] = { 9.0f, 1.0f, 2.0f, 3.0f };
    float v[4];
    assert_int_equal(kept_mask(s, logits, v), 0xe); /* 0 is banned */
    assert_float_equal(v[2], 3.5f, 1e-6);         /* duplicates add up */
    for (int i = 0; i < 50; i++) assert_int_not_equal(pl_sampler_sample(s, logits), 0);
    pl_sampler_free(s);

    /* Greedy honours the ban too. */
    p.temperature = 0;
    s = make(&p, 4);
    assert_int_equal(pl_sampler_sample(s, logits), 2);
    pl_sampler_free(s);
}

/* ln of [0.5, 0.25, 0.125, 0.125, 0.0625 / 2 ...]: probabilities we can add by hand. */
static void ln_probs(float *l, const double *p, int n) {
    for (int i = 0; i < n; i++) l[i] = (float)log(p[i]);
}

static void test_filters_exact(void **state) {
    (void)state;
    const double probs[5] = { 0.5, 0.25, 0.125, 0.0625, 0.0625 };
    float l[5];
    ln_probs(l, probs, 5);
    pl_sampler_params p;
    pl_sampler *s;

    /* top_k */
    const float raw[5] = { 1, 5, 3, 4, 2 };
    p = plain(), p.top_k = 2, s = make(&p, 5);
    assert_int_equal(kept_mask(s, raw, NULL), (1u << 1) | (1u << 3));
    pl_sampler_free(s);
    p.top_k = 5, s = make(&p, 5); /* k = n_vocab: off */
    assert_int_equal(kept_mask(s, raw, NULL), 0x1f);
    pl_sampler_free(s);

    /* top_p: cumulative 0.5, 0.75, 0.875, 0.9375, 1 */
    const struct { float top_p; unsigned mask; } tp[] = {
        { 0.40f, 0x01 }, { 0.60f, 0x03 }, { 0.80f, 0x07 }, { 0.90f, 0x0f },
        { 0.95f, 0x1f }, { 0.0f, 0x01 },
    }; /* 0.90: 3 and 4 tie at the cut, the lower id stays */
    for (size_t i = 0; i < sizeof tp / sizeof *tp; i++) {
        p = plain(), p.top_p = tp[i].top_p, s = make(&p, 5);
        assert_int_equal(kept_mask(s, l, NULL), tp[i].mask);
        pl_sampler_free(s);
    }

    /* min_p: keep p >= min_p * 0.5 */
    const struct { float min_p; unsigned mask; } mp[] = {
        { 0.6f, 0x01 }, { 0.4f, 0x03 }, { 0.2f, 0x07 }, { 0.1f, 0x1f }, { 2.0f, 0x01 },
    };
    for (size_t i = 0; i < sizeof mp / sizeof *mp; i++) {
        p = plain(), p.min_p = mp[i].min_p, s = make(&p, 5);
        assert_int_equal(kept_mask(s, l, NULL), mp[i].mask);
        pl_sampler_free(s);
    }

    /* typical_p over [0.5, 0.25, 0.125, 0.125]: H = 1.75 ln2, surprisals
     * 1, 2, 3, 3 (x ln2) -> distances 0.75, 0.25, 1.25, 1.25, so the order is
     * 1, 0, 2, 3 with masses 0.25, 0.75, 0.875, 1. */
    const double tprobs[4] = { 0.5, 0.25, 0.125, 0.125 };
    float tl[4];
    ln_probs(tl, tprobs, 4);
    const struct { float typ; unsigned mask; } ty[] = {
        { 0.2f, 0x02 }, { 0.5f, 0x03 }, { 0.8f, 0x07 }, { 0.9f, 0x0f },
    };
    for (size_t i = 0; i < sizeof ty / sizeof *ty; i++) {
        p = plain(), p.typical_p = ty[i].typ, s = make(&p, 4);
        assert_int_equal(kept_mask(s, tl, NULL), ty[i].mask);
        pl_sampler_free(s);
    }

    /* temperature scales what is left */
    float v[5];
    p = plain(), p.temperature = 0.5f, s = make(&p, 5);
    kept_mask(s, raw, v);
    for (int i = 0; i < 5; i++) assert_float_equal(v[i], raw[i] * 2.0f, 1e-6);
    pl_sampler_free(s);

    /* The chain composes in order: top_k 4 drops id 4 (the tie goes to the
     * lower id), then top_p 0.85 over the renormalized
     * [0.5, .25, .125, .0625] / 0.9375 (cumulative .533, .8, .933) keeps 0-2. */
    p = plain(), p.top_k = 4, p.top_p = 0.85f, s = make(&p, 5);
    assert_int_equal(kept_mask(s, l, NULL), 0x07);
    pl_sampler_free(s);
}

static void test_greedy_argmax(void **state) {
    (void)state;
    pl_sampler_params p = pl_sampler_default_params();
    p.temperature = 0;
    enum { NV = 1000 };
    float *l = malloc(NV * sizeof *l);
    pl_sampler *s = make(&p, NV);
    pl_rng r;
    pl_rng_seed(&r, 7);
    for (int t = 0; t < 200; t++) {
        int best = 0;
        for (int i = 0; i < NV; i++) {
            l[i] = (float)(pl_rng_uniform(&r) * 20 - 10);
            if (l[i] > l[best]) best = i;
        }
        assert_int_equal(pl_sampler_sample(s, l), best);
    }
    /* ties: the lowest id; NaN is never picked */
    for (int i = 0; i < NV; i++) l[i] = 0;
    l[10] = l[500] = 3.0f;
    l[3] = NAN;
    assert_int_equal(pl_sampler_sample(s, l), 10);
    for (int i = 0; i < NV; i++) l[i] = -INFINITY;
    assert_int_equal(pl_sampler_sample(s, l), PL_ERR_RANGE);
    l[999] = INFINITY;
    assert_int_equal(pl_sampler_sample(s, l), 999);
    pl_sampler_free(s);

    /* all -inf or NaN with sampling: an error, not a token */
    p = pl_sampler_default_params();
    s = make(&p, NV);
    for (int i = 0; i < NV; i++) l[i] = (i & 1) ? NAN : -INFINITY;
    assert_int_equal(pl_sampler_sample(s, l), PL_ERR_RANGE);
    l[5] = INFINITY; /* +inf clamps to a finite max: it wins outright */
    assert_int_equal(pl_sampler_sample(s, l), 5);
    assert_int_equal(pl_sampler_sample(NULL, l), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_sampler_sample(s, NULL), PL_ERR_INVALID_ARG);
    pl_sampler_free(s);
    free(l);
}

/* ---- the draw: empirical distribution vs a naive reference ---- */

typedef struct ref_item { int id; double l; } ref_item;
static int ref_cmp(const void *a, const void *b) {
    const ref_item *x = a, *y = b;
    if (x->l != y->l) return x->l < y->l ? 1 : -1;
    return x->id - y->id;
}

/* Reference: full sort; top_k; softmax; top_p cut; min_p; softmax(l / T). */
static void ref_dist(const float *logits, int nv, const pl_sampler_params *p, double *out) {
    ref_item *it = malloc((size_t)nv * sizeof *it);
    double *pr = malloc((size_t)nv * sizeof *pr);
    for (int i = 0; i < nv; i++) it[i] = (ref_item){ i, logits[i] }, out[i] = 0;
    qsort(it, (size_t)nv, sizeof *it, ref_cmp);
    int n = nv;
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    double z = 0;
    if (p->typical_p < 1) { /* by |surprisal - entropy|, then re-sort by logit */
        for (int i = 0; i < n; i++) z += exp(it[i].l - it[0].l);
        double ent = 0;
        for (int i = 0; i < n; i++) pr[i] = exp(it[i].l - it[0].l) / z, ent -= pr[i] * log(pr[i]);
        ref_item *ty = malloc((size_t)n * sizeof *ty);
        for (int i = 0; i < n; i++) ty[i] = (ref_item){ it[i].id, -fabs(-log(pr[i]) - ent) };
        qsort(ty, (size_t)n, sizeof *ty, ref_cmp);
        double cum = 0;
        int m = n;
        for (int i = 0; i < n; i++) {
            cum += exp(logits[ty[i].id] - it[0].l) / z;
            if (cum >= p->typical_p) { m = i + 1; break; }
        }
        for (int i = 0; i < m; i++) ty[i].l = logits[ty[i].id];
        qsort(ty, (size_t)m, sizeof *ty, ref_cmp);
        memcpy(it, ty, (size_t)m * sizeof *ty);
        n = m;
        free(ty);
        z = 0;
    }
    for (int i = 0; i < n; i++) z += exp(it[i].l - it[0].l);
    for (int i = 0; i < n; i++) pr[i] = exp(it[i].l - it[0].l) / z;
    if (p->top_p < 1) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += pr[i];
            if (cum >= p->top_p) { n = i + 1; break; }
        }
    }
    if (p->min_p > 0) { /* p_i / p_max >= min_p */
        int m = 0;
        for (int i = 0; i < n; i++)
            if (exp(it[i].l - it[0].l) >= p->min_p) m = i + 1;
        n = m;
    }
    z = 0;
    for (int i = 0; i < n; i++) z += exp((it[i].l - it[0].l) / p->temperature);
    for (int i = 0; i < n; i++) out[it[i].id] = exp((it[i].l - it[0].l) / p->temperature) / z;
    free(it);
    free(pr);
}

/* Pearson chi-square of counts against probabilities, pooling the bins with
 * an expected count under 5 into one. *df gets bins - 1. Draws outside the
 * support (expected 0) make it infinite. */
static double chi_square(const long *cnt, const double *prob, int nv, long draws, int *df) {
    double chi = 0, pool_e = 0;
    long pool_o = 0;
    int bins = 0;
    for (int i = 0; i < nv; i++) {
        double e = prob[i] * (double)draws;
        if (prob[i] == 0) {
            if (cnt[i]) return INFINITY;
            continue;
        }
        if (e < 5) {
            pool_e += e, pool_o += cnt[i];
            continue;
        }
        chi += (cnt[i] - e) * (cnt[i] - e) / e;
        bins++;
    }
    if (pool_e > 0) chi += (pool_o - pool_e) * (pool_o - pool_e) / pool_e, bins++;
    *df = bins - 1;
    return chi;
}

/* Upper critical value of chi-square(df) at z standard deviations
 * (Wilson-Hilferty); z = 4.26 is about a 1e-5 tail. */
static double chi_crit(int df, double z) {
    double k = df, a = 2.0 / (9.0 * k);
    double c = 1 - a + z * sqrt(a);
    return k * c * c * c;
}

static void check_dist(const float *logits, int nv, const pl_sampler_params *p, long draws,
                       bool expect_fail_at_t1) {
    double *prob = malloc((size_t)nv * sizeof *prob);
    long *cnt = calloc((size_t)nv, sizeof *cnt);
    ref_dist(logits, nv, p, prob);
    pl_sampler *s = make(p, nv);
    for (long d = 0; d < draws; d++) {
        int32_t t = pl_sampler_sample(s, logits);
        assert_true(t >= 0 && t < nv);
        cnt[t]++;
    }
    int df;
    double chi = chi_square(cnt, prob, nv, draws, &df);
    assert_true(df >= 1);
    double crit = chi_crit(df, 4.26);
    if (chi >= crit) print_message("chi2 %.1f >= %.1f (df %d)\n", chi, crit, df);
    assert_true(chi < crit);
    if (expect_fail_at_t1) {
        /* Power: the same draws against the T = 1 distribution must fail. */
        pl_sampler_params q = *p;
        q.temperature = 1.0f;
        ref_dist(logits, nv, &q, prob);
        assert_true(chi_square(cnt, prob, nv, draws, &df) > chi_crit(df, 4.26));
    }
    pl_sampler_free(s);
    free(prob);
    free(cnt);
}

static void test_distribution_small(void **state) {
    (void)state;
    const float l[10] = { 1.0f, 2.5f, 0.3f, 2.0f, -1.0f, 1.7f, 0.9f, 3.0f, -0.5f, 2.2f };
    pl_sampler_params p = plain();
    p.seed = 1234;
    p.temperature = 0.7f;
    check_dist(l, 10, &p, 200000, true); /* no filters */
    p.top_k = 6;
    p.top_p = 0.9f;
    p.min_p = 0.05f;
    p.seed = 99;
    check_dist(l, 10, &p, 200000, true);
    p.top_k = 0;
    p.min_p = 0.3f;
    p.temperature = 1.5f;
    check_dist(l, 10, &p, 200000, true);
}

static void test_distribution_large(void **state) {
    (void)state;
    /* 2048 tokens with a long tail: top_p alone keeps hundreds of them, so
     * its mass quickselect runs several partition rounds. */
    enum { NV = 2048 };
    float *l = malloc(NV * sizeof *l);
    pl_rng r;
    pl_rng_seed(&r, 42);
    for (int i = 0; i < NV; i++) {
        double u1 = pl_rng_uniform(&r) + 1e-12, u2 = pl_rng_uniform(&r);
        l[i] = (float)(1.0 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
    pl_sampler_params p = plain();
    p.top_p = 0.8f;
    p.temperature = 0.9f;
    p.seed = 5;
    check_dist(l, NV, &p, 60000, false);
    p.top_k = 100;
    p.top_p = 0.7f;
    p.temperature = 1.2f;
    check_dist(l, NV, &p, 60000, false);
    free(l);
}

/* The kept set equals the naive reference's support over random rows full
 * of ties (logits on a 0.25 grid) and random parameter mixes. */
static void test_filters_match_reference(void **state) {
    (void)state;
    enum { NV = 500 };
    float l[NV];
    double prob[NV];
    int32_t ids[NV];
    float vals[NV];
    pl_rng r;
    pl_rng_seed(&r, 2024);
    for (int trial = 0; trial < 300; trial++) {
        double spread = 1 + pl_rng_uniform(&r) * 8;
        for (int i = 0; i < NV; i++) l[i] = (float)(floor(pl_rng_uniform(&r) * spread * 4) / 4);
        pl_sampler_params p = plain();
        int mix = trial % 6;
        if (mix == 0 || mix == 3) p.top_k = 1 + (int)(pl_rng_uniform(&r) * 200);
        if (mix == 1 || mix == 3 || mix == 4) p.top_p = (float)(0.05 + pl_rng_uniform(&r) * 0.9);
        if (mix == 2 || mix == 4) p.min_p = (float)(pl_rng_uniform(&r) * 0.5);
        if (mix == 5) p.typical_p = (float)(0.1 + pl_rng_uniform(&r) * 0.85);
        ref_dist(l, NV, &p, prob);
        pl_sampler *s = make(&p, NV);
        size_t n = pl_sampler_debug_candidates(s, l, ids, vals, NV);
        size_t want = 0;
        for (int i = 0; i < NV; i++) want += prob[i] > 0;
        if (n != want) print_message("trial %d mix %d: kept %zu, reference %zu\n", trial, mix, n, want);
        assert_int_equal(n, want);
        for (size_t i = 0; i < n; i++) assert_true(prob[ids[i]] > 0);
        pl_sampler_free(s);
    }
}

/* ---- reproducibility ---- */

static void test_seed_reproducible(void **state) {
    (void)state;
    enum { NV = 300, N = 2000 };
    float l[NV];
    for (int i = 0; i < NV; i++) l[i] = (float)((i * 37) % 101) / 20.0f;
    pl_sampler_params p = pl_sampler_default_params();
    p.top_k = 0;
    p.seed = 777;
    pl_sampler *a = make(&p, NV), *b = make(&p, NV);
    p.seed = 778;
    pl_sampler *c = make(&p, NV);
    int32_t first[N];
    int same_c = 0;
    for (int i = 0; i < N; i++) {
        first[i] = pl_sampler_sample(a, l);
        assert_int_equal(first[i], pl_sampler_sample(b, l));
        same_c += first[i] == pl_sampler_sample(c, l);
    }
    assert_true(same_c < N / 2);
    pl_sampler_reset(a);
    for (int i = 0; i < N; i++) assert_int_equal(pl_sampler_sample(a, l), first[i]);
    pl_sampler_free(a);
    pl_sampler_free(b);
    pl_sampler_free(c);

    /* A clock seed is resolved to a concrete one, reported back. */
    p.seed = PL_SAMPLER_SEED_RANDOM;
    a = make(&p, NV);
    assert_true(pl_sampler_params_get(a)->seed != PL_SAMPLER_SEED_RANDOM);
    pl_sampler_free(a);
}

/* ---- params, presets, allocation ---- */

static void test_params(void **state) {
    (void)state;
    pl_sampler *s = (pl_sampler *)1;
    pl_sampler_params p = pl_sampler_default_params();
    assert_int_equal(pl_sampler_init(ctx, &p, 0, &s), PL_ERR_RANGE);
    assert_null(s);
    p.temperature = NAN;
    assert_int_equal(pl_sampler_init(ctx, &p, 10, &s), PL_ERR_RANGE);
    p = pl_sampler_default_params();
    const pl_logit_bias bad[] = { { 10, 1.0f } };
    p.logit_bias = bad;
    p.n_logit_bias = 1;
    assert_int_equal(pl_sampler_init(ctx, &p, 10, &s), PL_ERR_RANGE);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "logit_bias[0]"));
    p = pl_sampler_default_params();
    p.penalty_last_n = PL_SAMPLER_MAX_LAST_N + 1;
    assert_int_equal(pl_sampler_init(ctx, &p, 10, &s), PL_ERR_RANGE);
    p = pl_sampler_default_params();
    p.repeat_penalty = 0;
    assert_int_equal(pl_sampler_init(ctx, &p, 10, &s), PL_ERR_RANGE);
    assert_int_equal(pl_sampler_init(ctx, NULL, 10, &s), PL_OK);
    assert_float_equal(pl_sampler_params_get(s)->temperature, 0.8f, 0);
    pl_sampler_free(s);
    pl_sampler_free(NULL);

    pl_sampler_params sp = pl_sampler_speed_params();
    assert_true(sp.top_k > 0 && sp.top_k <= 40);
    assert_true(sp.penalty_last_n == 0 || (sp.repeat_penalty == 1.0f && sp.frequency_penalty == 0 &&
                                           sp.presence_penalty == 0));
    assert_true(sp.max_tokens > 0);
    assert_true(sp.top_p >= 1.0f && sp.typical_p >= 1.0f);

    for (int i = 0; i < PL_SAMPLER_STEP_COUNT; i++)
        assert_string_not_equal(pl_sampler_step_name((pl_sampler_step)i), "unknown");
    assert_string_equal(pl_sampler_step_name(PL_SAMPLER_STEP_COUNT), "unknown");
}

/* The per-token path must not allocate: count with the tracking allocator. */
static void test_no_alloc_per_token(void **state) {
    (void)state;
    pl_alloc_tracker tr;
    pl_alloc_tracker_reset(&tr);
    pl_ctx_params cp = pl_ctx_default_params();
    cp.alloc = pl_track_alloc;
    cp.alloc_ud = &tr;
    pl_ctx *c2;
    assert_int_equal(pl_ctx_init(&c2, &cp), PL_OK);
    enum { NV = 32000 };
    float *l = malloc(NV * sizeof *l);
    for (int i = 0; i < NV; i++) l[i] = (float)((i * 7919) % 1000) / 100.0f;
    pl_sampler_params p = pl_sampler_default_params();
    p.repeat_penalty = 1.1f;
    p.frequency_penalty = 0.1f;
    p.typical_p = 0.95f;
    p.top_k = 0;
    pl_sampler *s;
    assert_int_equal(pl_sampler_init(c2, &p, NV, &s), PL_OK);
    int64_t before = tr.n_calls;
    for (int i = 0; i < 100; i++) {
        int32_t t = pl_sampler_sample(s, l);
        assert_true(t >= 0);
        assert_int_equal(pl_sampler_accept(s, t), PL_OK);
    }
    assert_int_equal(tr.n_calls, before);
    pl_sampler_free(s);
    pl_ctx_free(c2);
    assert_int_equal(tr.in_use, 0);

    /* Every allocation failure at init is reported, and nothing leaks. */
    for (int64_t k = 1;; k++) {
        pl_alloc_tracker_reset(&tr);
        assert_int_equal(pl_ctx_init(&c2, &cp), PL_OK);
        tr.fail_at = tr.n_calls + 1 + (k - 1);
        s = NULL;
        pl_status st = pl_sampler_init(c2, &p, NV, &s);
        pl_sampler_free(s);
        pl_ctx_free(c2);
        assert_int_equal(tr.in_use, 0);
        if (st == PL_OK) break;
        assert_int_equal(st, PL_ERR_NOMEM);
        assert_true(k < 20);
    }
    free(l);
}

/* pl_sampler_set_params against a fresh sampler made with the same params:
 * the same tokens from the same logits (through penalties, bias, filters and
 * the seeded PRNG), including params that grow the bias list and penalty
 * window, duplicates to merge, and the sampler's own params handed back;
 * no allocation when nothing grows; a refused or failed call leaves the
 * sampler as it was. */
static void run_tokens(pl_sampler *s, const float *l, int n, int32_t *out) {
    for (int i = 0; i < n; i++) {
        out[i] = pl_sampler_sample(s, l);
        assert_true(out[i] >= 0);
        assert_int_equal(pl_sampler_accept(s, out[i]), PL_OK);
    }
}

static void test_set_params(void **state) {
    (void)state;
    enum { NV = 500, N = 300 };
    float l[NV];
    for (int i = 0; i < NV; i++) l[i] = (float)((i * 7919) % 997) / 150.0f;
    const pl_logit_bias b1[] = { { 3, 4.0f } };
    const pl_logit_bias b3[] = { { 7, 2.5f }, { 11, -INFINITY }, { 7, 2.5f }, { 400, 6.0f } };
    pl_sampler_params ps[4];
    ps[0] = pl_sampler_default_params();
    ps[0].seed = 1;
    ps[0].top_k = 0;
    ps[0].penalty_last_n = 8;
    ps[0].repeat_penalty = 1.3f;
    ps[0].logit_bias = b1;
    ps[0].n_logit_bias = 1;
    ps[1] = ps[0]; /* longer window and bias list, other filters and seed */
    ps[1].seed = 99;
    ps[1].penalty_last_n = 64;
    ps[1].frequency_penalty = 0.2f;
    ps[1].top_p = 0.9f;
    ps[1].logit_bias = b3;
    ps[1].n_logit_bias = 4;
    ps[2] = plain(); /* shorter: nothing to allocate */
    ps[2].seed = 5;
    ps[3] = ps[0];
    ps[3].temperature = 0; /* greedy */
    pl_alloc_tracker tr;
    pl_alloc_tracker_reset(&tr);
    pl_ctx_params cp = pl_ctx_default_params();
    cp.alloc = pl_track_alloc;
    cp.alloc_ud = &tr;
    pl_ctx *c2;
    assert_int_equal(pl_ctx_init(&c2, &cp), PL_OK);
    pl_sampler *reused = NULL;
    assert_int_equal(pl_sampler_init(c2, &ps[2], NV, &reused), PL_OK);
    run_tokens(reused, l, 50, (int32_t[50]){ 0 }); /* some history, to be forgotten */
    int32_t want[N], got[N];
    for (int k = 0; k < 4; k++) {
        pl_sampler *fresh = make(&ps[k], NV);
        run_tokens(fresh, l, N, want);
        pl_sampler_free(fresh);
        int64_t calls = tr.n_calls;
        assert_int_equal(pl_sampler_set_params(reused, &ps[k]), PL_OK);
        if (k >= 2) assert_int_equal(tr.n_calls, calls); /* no growth after ps[1] */
        run_tokens(reused, l, N, got);
        assert_memory_equal(got, want, sizeof want);
        assert_int_equal(pl_sampler_params_get(reused)->seed, ps[k].seed);
    }
    /* its own params back (the bias array is the sampler's own) */
    assert_int_equal(pl_sampler_set_params(reused, &ps[1]), PL_OK);
    run_tokens(reused, l, N, want);
    assert_int_equal(pl_sampler_set_params(reused, pl_sampler_params_get(reused)), PL_OK);
    assert_int_equal(pl_sampler_params_get(reused)->n_logit_bias, 3); /* 7 merged */
    run_tokens(reused, l, N, got);
    assert_memory_equal(got, want, sizeof want);
    /* refused: the params in effect stay */
    pl_sampler_params bad = ps[0];
    const pl_logit_bias oob[] = { { NV, 1.0f } };
    bad.logit_bias = oob;
    assert_int_equal(pl_sampler_set_params(reused, &bad), PL_ERR_RANGE);
    assert_non_null(strstr(pl_ctx_last_error(c2), "logit_bias[0]"));
    bad = ps[0];
    bad.penalty_last_n = -1;
    assert_int_equal(pl_sampler_set_params(reused, &bad), PL_ERR_RANGE);
    pl_sampler_reset(reused);
    run_tokens(reused, l, N, got);
    assert_memory_equal(got, want, sizeof want);
    /* every allocation failure while growing: PL_ERR_NOMEM, unchanged, no leak */
    pl_sampler_params big = ps[1];
    big.penalty_last_n = 1000;
    pl_logit_bias many[20];
    for (int i = 0; i < 20; i++) many[i] = (pl_logit_bias){ i * 3, 0.5f };
    big.logit_bias = many;
    big.n_logit_bias = 20;
    for (int64_t k = 1;; k++) {
        int64_t in_use = tr.in_use;
        tr.fail_at = tr.n_calls + k;
        pl_status st = pl_sampler_set_params(reused, &big);
        tr.fail_at = 0;
        if (st == PL_OK) break;
        assert_int_equal(st, PL_ERR_NOMEM);
        assert_int_equal(tr.in_use, in_use);
        pl_sampler_reset(reused);
        run_tokens(reused, l, N, got);
        assert_memory_equal(got, want, sizeof want);
        assert_true(k < 10);
    }
    pl_sampler_free(reused);
    pl_ctx_free(c2);
    assert_int_equal(tr.in_use, 0);
    assert_int_equal(pl_sampler_set_params(NULL, &ps[0]), PL_ERR_INVALID_ARG);
    /* the check alone, as pl_sampler_init makes it */
    assert_int_equal(pl_sampler_params_check(ctx, &ps[1], NV), PL_OK);
    assert_int_equal(pl_sampler_params_check(ctx, NULL, NV), PL_OK);
    assert_int_equal(pl_sampler_params_check(ctx, &ps[1], 400), PL_ERR_RANGE); /* bias token 400 */
    assert_non_null(strstr(pl_ctx_last_error(ctx), "logit_bias[3]"));
    assert_int_equal(pl_sampler_params_check(ctx, &ps[0], 0), PL_ERR_RANGE);
    assert_int_equal(pl_sampler_params_check(NULL, &ps[0], NV), PL_ERR_INVALID_ARG);
}

int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_vectors),
        cmocka_unit_test(test_penalties_exact),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_filters_exact),
        cmocka_unit_test(test_greedy_argmax),
        cmocka_unit_test(test_distribution_small),
        cmocka_unit_test(test_distribution_large),
        cmocka_unit_test(test_filters_match_reference),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_no_alloc_per_token),
        cmocka_unit_test(test_set_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
