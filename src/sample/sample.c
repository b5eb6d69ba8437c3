/*
 * sample.c - the sampler chain (see parley/sample.h for the semantics).
 *
 * Data flow for one token:
 *   logits[n_vocab] --copy, NaN->-inf--> work[n_vocab]      (dense steps patch it)
 *   work --drop -inf--> cand[n] {id, logit, p}              (filter steps shrink n)
 *   cand --softmax(logit / T)--> one draw
 *
 * The candidate set is unordered: top_k is a heap selection (O(n log k), and
 * close to O(n) since most tokens lose one compare against the heap root),
 * top_p / typical_p a quickselect on probability mass (expected O(n)), min_p a
 * threshold scan on logits. Nothing sorts the vocabulary.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "sample/sample_int.h"

/* ---- PRNG ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void pl_rng_seed(pl_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pl_rng_next(pl_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return out;
}

double pl_rng_uniform(pl_rng *r) { return (double)(pl_rng_next(r) >> 11) * 0x1.0p-53; }

/* ---- sampler state ---- */

typedef struct cand {
    int32_t id;
    float   logit; /* the sort key: steps keep cand ordered by it */
    float   p;     /* softmax over the current set, set by the step that needs it */
    float   aux;   /* step scratch (typical_p: distance from the entropy) */
} cand;

struct pl_sampler {
    pl_ctx *ctx;
    pl_sampler_params p; /* p.logit_bias points at bias below */
    int32_t n_vocab;
    pl_logit_bias *bias; /* merged: one entry per token */
    size_t n_bias;
    int32_t *ring; /* penalty history, ring_cap = penalty_last_n */
    int32_t *scratch; /* ring_cap: sorted copy of the window */
    int32_t ring_cap, ring_len, ring_head;
    size_t ring_alloc, bias_alloc; /* entries allocated (pl_sampler_set_params reuses them) */
    float *work; /* [n_vocab] */
    cand *c;     /* [n_vocab] */
    size_t n; /* candidates in c[0 .. n), unordered */
    pl_rng rng;
    uint64_t seed;
};

/* Finite floats only past this point: -inf stays (means "banned"), +inf and
 * overflow clamp to FLT_MAX so max - x never gives inf - inf = NaN. */
static inline float clampf(float x) {
    if (x > FLT_MAX) return FLT_MAX;
    if (x < -FLT_MAX) return -FLT_MAX;
    return x;
}

/* Max of w[0 .. n), NaN ignored, -inf when nothing else. Eight independent
 * accumulators so the compiler vectorizes it: about 5x a one-accumulator
 * loop over 152k logits (measured ~23 us vs ~119 us). */
static float dense_max(const float *w, size_t n) {
    float m[8];
    for (int j = 0; j < 8; j++) m[j] = -INFINITY;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m[j] = w[i + j] > m[j] ? w[i + j] : m[j];
    for (; i < n; i++) m[0] = w[i] > m[0] ? w[i] : m[0];
    for (int j = 1; j < 8; j++) m[0] = m[j] > m[0] ? m[j] : m[0];
    return m[0];
}

/* ---- heap selection on cand (keyed by logit; ties to the lower id) ---- */

static inline bool cand_less(const cand *a, const cand *b) {
    return a->logit < b->logit || (a->logit == b->logit && a->id > b->id);
}
static inline void cand_swap(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}
/* Min-heap sift-down on h[0 .. n) by cand_less. */
static void cand_sift(cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && cand_less(&h[l], &h[m])) m = l;
        if (l + 1 < n && cand_less(&h[l + 1], &h[m])) m = l + 1;
        if (m == i) return;
        cand_swap(&h[i], &h[m]);
        i = m;
    }
}
/* Move the k greatest of a[0 .. n) to a[0 .. k) in descending order; the rest
 * stays in a[k .. n). O(n log k), in place, no allocation. */
static void cand_select_top(cand *a, size_t n, size_t k) {
    if (k == 0) return;
    for (size_t i = k / 2; i-- > 0;) cand_sift(a, k, i);
    for (size_t j = k; j < n; j++) {
        if (cand_less(&a[0], &a[j])) {
            cand_swap(&a[0], &a[j]);
            cand_sift(a, k, 0);
        }
    }
    for (size_t end = k - 1; end > 0; end--) { /* heap sort: min goes to the back */
        cand_swap(&a[0], &a[end]);
        cand_sift(a, end, 0);
    }
}

static float cand_max(const pl_sampler *s) {
    float mx = -INFINITY;
    for (size_t i = 0; i < s->n; i++)
        if (s->c[i].logit > mx) mx = s->c[i].logit;
    return mx;
}

/* p_i = exp(l_i - max) over the current candidates, normalized when asked;
 * returns the sum of the unnormalized terms (>= 1: the max gives exp(0)). */
static double cand_softmax(pl_sampler *s, bool normalize) {
    float mx = cand_max(s);
    double sum = 0;
    for (size_t i = 0; i < s->n; i++) {
        float e = expf(s->c[i].logit - mx);
        s->c[i].p = e;
        sum += e;
    }
    if (normalize) {
        float inv = (float)(1.0 / sum);
        for (size_t i = 0; i < s->n; i++) s->c[i].p *= inv;
    }
    return sum;
}

/* Lomuto partition of a[0 .. n) (n >= 3) around a median-of-three pivot: returns m with a[0 .. m) greater than a[m] (the pivot) and a[m+1 .. n)
 * less. The order (logit, then lower id first) is total, so no two elements
 * compare equal and the split matches what a full sort would give. */
static size_t cand_partition(cand *a, size_t n) {
    size_t mid = n / 2;
    if (cand_less(&a[0], &a[mid])) cand_swap(&a[0], &a[mid]);
    if (cand_less(&a[0], &a[n - 1])) cand_swap(&a[0], &a[n - 1]);
    if (cand_less(&a[mid], &a[n - 1])) cand_swap(&a[mid], &a[n - 1]);
    cand_swap(&a[mid], &a[n - 1]); /* a[n-1]: the median, used as pivot */
    const cand piv = a[n - 1];
    size_t m = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (cand_less(&piv, &a[i])) cand_swap(&a[i], &a[m++]);
    cand_swap(&a[m], &a[n - 1]);
    return m;
}

/* Keep the smallest set of highest-logit candidates whose probability mass
 * (c[].p, normalized) reaches `mass`; at least one token stays. The set comes
 * out unordered. Quickselect on mass: expected O(n) with no full sort, so a
 * flat distribution over 150k tokens costs a few passes, not n log n; after
 * 2 log2(n) unlucky pivots the rest is heap-sorted (O(n log n) worst case). */
static void keep_mass(pl_sampler *s, double mass) {
    cand *c = s->c;
    if (mass <= 0) { /* only the best token */
        cand_select_top(c, s->n, 1);
        s->n = 1;
        return;
    }
    size_t lo = 0, hi = s->n, budget = 16;
    for (size_t x = s->n; x > 1; x >>= 1) budget += 2;
    double acc = 0; /* mass of c[0 .. lo): kept, above everything in [lo, hi) */
    while (hi - lo > 32 && budget-- > 0) {
        size_t m = lo + cand_partition(c + lo, hi - lo);
        double up = 0;
        for (size_t i = lo; i < m; i++) up += c[i].p;
        if (acc + up >= mass) {
            hi = m; /* the cut is inside the upper part */
            continue;
        }
        acc += up + c[m].p; /* all of the upper part, then the pivot */
        if (acc >= mass) {
            s->n = m + 1;
            return;
        }
        lo = m + 1;
    }
    cand_select_top(c + lo, hi - lo, hi - lo); /* sort what is left */
    for (size_t i = lo; i < hi; i++) {
        acc += c[i].p;
        if (acc >= mass) {
            s->n = i + 1;
            return;
        }
    }
    s->n = hi; /* rounding left the sum short of mass: keep all */
}

/* ---- the steps ---- */

static void hsort_i32(int32_t *a, size_t n);

static void step_penalties(pl_sampler *s) {
    const pl_sampler_params *p = &s->p;
    size_t L = (size_t)s->ring_len;
    memcpy(s->scratch, s->ring, L * sizeof *s->scratch);
    hsort_i32(s->scratch, L);
    for (size_t i = 0; i < L;) {
        size_t j = i + 1;
        while (j < L && s->scratch[j] == s->scratch[i]) j++;
        int32_t tok = s->scratch[i];
        float count = (float)(j - i);
        float l = s->work[tok];
        if (l > -INFINITY) {
            if (p->repeat_penalty != 1.0f) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
            l -= count * p->frequency_penalty + p->presence_penalty;
            s->work[tok] = clampf(l);
        }
        i = j;
    }
}

static void step_logit_bias(pl_sampler *s) {
    for (size_t i = 0; i < s->n_bias; i++) {
        float *l = &s->work[s->bias[i].token];
        float b = s->bias[i].bias;
        *l = b == -INFINITY ? -INFINITY : (*l == -INFINITY ? *l : clampf(*l + b));
    }
}

static void step_top_k(pl_sampler *s) {
    size_t k = (size_t)s->p.top_k;
    if (k >= s->n) return;
    cand_select_top(s->c, s->n, k);
    s->n = k;
}

static void step_typical_p(pl_sampler *s) {
    if (s->n <= 1) return;
    cand_softmax(s, true);
    double ent = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->c[i].p > 0) ent -= s->c[i].p * logf(s->c[i].p);
    /* Keep by |surprisal - entropy| ascending: the mass selection works on
     * `logit`, so park the logit in aux and select on minus the distance. */
    for (size_t i = 0; i < s->n; i++) {
        cand *c = &s->c[i];
        float d = c->p > 0 ? fabsf(-logf(c->p) - (float)ent) : INFINITY;
        c->aux = c->logit;
        c->logit = -d;
    }
    keep_mass(s, s->p.typical_p);
    for (size_t i = 0; i < s->n; i++) s->c[i].logit = s->c[i].aux;
}

static void step_top_p(pl_sampler *s) {
    if (s->n <= 1) return;
    cand_softmax(s, true);
    keep_mass(s, s->p.top_p);
}

static void step_min_p(pl_sampler *s) {
    /* p_i >= min_p * p_max  <=>  l_i >= l_max + ln(min_p): no softmax needed.
     * min_p > 1 would keep nothing; the max always stays. */
    float mx = cand_max(s);
    float thr = s->p.min_p >= 1.0f ? mx : mx + logf(s->p.min_p);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->c[i].logit >= thr) s->c[w++] = s->c[i];
    s->n = w;
}

/* top_k straight from work[]: a min-heap of k candidates; a token costs one
 * compare against the heap root unless it beats it. Ids come in ascending
 * order, so an equal logit never displaces (the lower id wins ties). */
static size_t top_k_dense(pl_sampler *s) {
    const size_t nv = (size_t)s->n_vocab, k = (size_t)s->p.top_k;
    const float *w = s->work;
    cand *h = s->c;
    size_t n = 0, i = 0;
    for (; i < nv && n < k; i++)
        if (w[i] > -INFINITY) h[n++] = (cand){ .id = (int32_t)i, .logit = clampf(w[i]) };
    if (n < k) return n;
    for (size_t j = k / 2; j-- > 0;) cand_sift(h, k, j);
    float root = h[0].logit;
    for (; i < nv; i++) {
        if (w[i] > root) {
            float l = clampf(w[i]);
            if (!(l > root)) continue; /* +inf clamped onto an equal root */
            h[0] = (cand){ .id = (int32_t)i, .logit = l };
            cand_sift(h, k, 0);
            root = h[0].logit;
        }
    }
    return k;
}

/* min_p straight from work[]: one pass for the max, one for the survivors. */
static size_t min_p_dense(pl_sampler *s) {
    const size_t nv = (size_t)s->n_vocab;
    const float *w = s->work;
    float mx = dense_max(w, nv);
    if (mx == -INFINITY) return 0;
    mx = clampf(mx);
    float thr = s->p.min_p >= 1.0f ? mx : mx + logf(s->p.min_p);
    size_t n = 0;
    for (size_t i = 0; i < nv; i++)
        if (w[i] >= thr) s->c[n++] = (cand){ .id = (int32_t)i, .logit = clampf(w[i]) };
    return n;
}

static void step_temperature(pl_sampler *s) {
    float t = s->p.temperature;
    for (size_t i = 0; i < s->n; i++) s->c[i].logit = clampf(s->c[i].logit / t);
}

/* ---- the table ---- */

typedef struct step_row {
    const char *name;
    /* Dense steps patch work[n_vocab] before candidates exist. */
    bool dense;
    bool (*on)(const pl_sampler_params *p, int32_t n_vocab);
    void (*apply)(pl_sampler *s);
    /* Optional: when this is the first filter to run, build the candidate set
     * straight from work[] (skipping the full n_vocab candidate array) and
     * return its size. */
    size_t (*from_dense)(pl_sampler *s);
} step_row;

static bool on_penalties(const pl_sampler_params *p, int32_t nv) {
    (void)nv;
    return p->penalty_last_n > 0 &&
           (p->repeat_penalty != 1.0f || p->frequency_penalty != 0 || p->presence_penalty != 0);
}
static bool on_bias(const pl_sampler_params *p, int32_t nv) { (void)nv; return p->n_logit_bias > 0; }
static bool on_top_k(const pl_sampler_params *p, int32_t nv) { return p->top_k > 0 && p->top_k < nv; }
static bool on_typical(const pl_sampler_params *p, int32_t nv) { (void)nv; return p->typical_p < 1.0f; }
static bool on_top_p(const pl_sampler_params *p, int32_t nv) { (void)nv; return p->top_p < 1.0f; }
static bool on_min_p(const pl_sampler_params *p, int32_t nv) { (void)nv; return p->min_p > 0.0f; }
static bool on_temp(const pl_sampler_params *p, int32_t nv) { (void)nv; return p->temperature > 0 && p->temperature != 1.0f; }

static const step_row STEPS[PL_SAMPLER_STEP_COUNT] = {
    [PL_SAMPLER_STEP_PENALTIES]   = { .name = "penalties",   .dense = true,  .on = on_penalties, .apply = step_penalties },
    [PL_SAMPLER_STEP_LOGIT_BIAS]  = { .name = "logit_bias",  .dense = true,  .on = on_bias,      .apply = step_logit_bias },
    [PL_SAMPLER_STEP_TOP_K]       = { .name = "top_k",       .dense = false, .on = on_top_k,     .apply = step_top_k, .from_dense = top_k_dense },
    [PL_SAMPLER_STEP_TYPICAL_P]   = { .name = "typical_p",   .dense = false, .on = on_typical,   .apply = step_typical_p },
    [PL_SAMPLER_STEP_TOP_P]       = { .name = "top_p",       .dense = false, .on = on_top_p,     .apply = step_top_p },
    [PL_SAMPLER_STEP_MIN_P]       = { .name = "min_p",       .dense = false, .on = on_min_p,     .apply = step_min_p, .from_dense = min_p_dense },
    [PL_SAMPLER_STEP_TEMPERATURE] = { .name = "temperature", .dense = false, .on = on_temp,      .apply = step_temperature },
};

const char *pl_sampler_step_name(pl_sampler_step step) {
    return (unsigned)step < PL_SAMPLER_STEP_COUNT ? STEPS[step].name : "unknown";
}

/* ---- params ---- */

pl_sampler_params pl_sampler_default_params(void) {
    return (pl_sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .typical_p = 1.0f,
        .penalty_last_n = 64,
        .repeat_penalty = 1.0f,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = 0x5EEDull,
        .max_tokens = 0,
    };
}

pl_sampler_params pl_sampler_speed_params(void) {
    pl_sampler_params p = pl_sampler_default_params();
    p.temperature = 0.7f;
    p.top_k = 20;
    p.top_p = 1.0f;
    p.min_p = 0.05f;
    p.penalty_last_n = 0;
    p.max_tokens = 256;
    return p;
}

static pl_status check_params(pl_ctx *ctx, const pl_sampler_params *p, int32_t n_vocab) {
#define BAD(...) return pl_ctx_err(ctx, PL_ERR_RANGE, "sampler: " __VA_ARGS__)
    if (n_vocab < 1) BAD("n_vocab %d < 1", (int)n_vocab);
    if (!isfinite(p->temperature)) BAD("temperature is not finite");
    if (!isfinite(p->top_p) || p->top_p < 0) BAD("top_p %g must be >= 0", (double)p->top_p);
    if (!isfinite(p->min_p) || p->min_p < 0) BAD("min_p %g must be >= 0", (double)p->min_p);
    if (!isfinite(p->typical_p) || p->typical_p < 0) BAD("typical_p %g must be >= 0", (double)p->typical_p);
    if (p->penalty_last_n < 0 || p->penalty_last_n > PL_SAMPLER_MAX_LAST_N)
        BAD("penalty_last_n %d outside [0, %d]", (int)p->penalty_last_n, PL_SAMPLER_MAX_LAST_N);
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0)
        BAD("repeat_penalty %g must be > 0", (double)p->repeat_penalty);
    if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty))
        BAD("frequency/presence penalties must be finite");
    if (p->max_tokens < 0) BAD("max_tokens %d < 0", (int)p->max_tokens);
    if (p->n_logit_bias > 0 && !p->logit_bias)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "sampler: n_logit_bias %zu with a NULL array",
                          p->n_logit_bias);
    for (size_t i = 0; i < p->n_logit_bias; i++) {
        const pl_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0 || b->token >= n_vocab)
            BAD("logit_bias[%zu]: token %d outside [0, %d)", i, (int)b->token, (int)n_vocab);
        if (isnan(b->bias) || b->bias == INFINITY)
            BAD("logit_bias[%zu]: bias must be finite or -inf", i);
    }
    return PL_OK;
#undef BAD
}

/* ---- lifecycle ---- */

pl_status pl_sampler_params_check(pl_ctx *ctx, const pl_sampler_params *params, int32_t n_vocab) {
    if (!ctx) return PL_ERR_INVALID_ARG;
    pl_sampler_params p = params ? *params : pl_sampler_default_params();
    return check_params(ctx, &p, n_vocab);
}

/* Validate params and make them the sampler's (bias merged into s->bias,
 * seed resolved), then reset. Arrays are replaced only when they must grow,
 * after every allocation has succeeded: on error s is unchanged. */
static pl_status configure(pl_sampler *s, const pl_sampler_params *params) {
    pl_sampler_params p = params ? *params : pl_sampler_default_params();
    pl_status st = check_params(s->ctx, &p, s->n_vocab);
    if (st != PL_OK) return st;
    size_t ring = p.penalty_last_n > 0 ? (size_t)p.penalty_last_n : 1, nb_cap = p.n_logit_bias ? p.n_logit_bias : 1;
    int32_t *ring_new = NULL, *scratch_new = NULL;
    pl_logit_bias *bias_new = NULL;
    if (ring > s->ring_alloc && (!(ring_new = pl_calloc(s->ctx, ring, sizeof *ring_new)) ||
                                 !(scratch_new = pl_calloc(s->ctx, ring, sizeof *scratch_new))))
        goto oom;
    if (nb_cap > s->bias_alloc && !(bias_new = pl_calloc(s->ctx, nb_cap, sizeof *bias_new))) goto oom;
    if (ring_new) {
        pl_free(s->ctx, s->ring);
        pl_free(s->ctx, s->scratch);
        s->ring = ring_new;
        s->scratch = scratch_new;
        s->ring_alloc = ring;
    }
    /* Merge duplicate bias entries (sum; -inf wins) so the per-token patch is
     * one write per token. O(b^2) once per configuration; b is small (OpenAI
     * caps 300). p.logit_bias may be s->bias itself (pl_sampler_params_get):
     * merging in place is safe since entry k is written only after entries
     * 0..k were read, and a new array frees the old one only afterwards. */
    pl_logit_bias *bias = bias_new ? bias_new : s->bias;
    size_t nb = 0;
    for (size_t i = 0; i < p.n_logit_bias; i++) {
        pl_logit_bias b = p.logit_bias[i];
        size_t j = 0;
        while (j < nb && bias[j].token != b.token) j++;
        if (j == nb) bias[nb++] = b;
        else bias[j].bias += b.bias;
    }
    if (bias_new) {
        pl_free(s->ctx, s->bias);
        s->bias = bias_new;
        s->bias_alloc = nb_cap;
    }
    s->n_bias = nb;
    p.logit_bias = bias;
    p.n_logit_bias = nb;
    s->ring_cap = p.penalty_last_n;
    if (p.seed == PL_SAMPLER_SEED_RANDOM) {
        uint64_t x = pl_time_ns() ^ (uint64_t)(uintptr_t)s;
        p.seed = splitmix64(&x);
        if (p.seed == PL_SAMPLER_SEED_RANDOM) p.seed = 0;
    }
    s->p = p;
    pl_sampler_reset(s);
    return PL_OK;
oom:
    pl_free(s->ctx, ring_new);
    pl_free(s->ctx, scratch_new);
    pl_free(s->ctx, bias_new);
    return pl_ctx_err(s->ctx, PL_ERR_NOMEM, "sampler: out of memory");
}

pl_status pl_sampler_init(pl_ctx *ctx, const pl_sampler_params *params, int32_t n_vocab,
                          pl_sampler **out) {
    if (!ctx || !out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    pl_sampler_params p = params ? *params : pl_sampler_default_params();
    pl_status st = check_params(ctx, &p, n_vocab);
    if (st != PL_OK) return st;

    pl_sampler *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "sampler: out of memory");
    s->ctx = ctx;
    s->n_vocab = n_vocab;
    size_t nv = (size_t)n_vocab;
    s->work = pl_calloc(ctx, nv, sizeof *s->work);
    s->c = pl_calloc(ctx, nv, sizeof *s->c);
    if (!s->work || !s->c || (st = configure(s, &p)) != PL_OK) {
        pl_sampler_free(s);
        return st != PL_OK ? st : pl_ctx_err(ctx, PL_ERR_NOMEM, "sampler: out of memory for %d tokens", (int)n_vocab);
    }
    *out = s;
    return PL_OK;
}

pl_status pl_sampler_set_params(pl_sampler *s, const pl_sampler_params *params) {
    if (!s) return PL_ERR_INVALID_ARG;
    return configure(s, params);
}

void pl_sampler_free(pl_sampler *s) {
    if (!s) return;
    pl_ctx *ctx = s->ctx;
    pl_free(ctx, s->work);
    pl_free(ctx, s->c);
    pl_free(ctx, s->ring);
    pl_free(ctx, s->scratch);
    pl_free(ctx, s->bias);
    pl_free(ctx, s);
}

void pl_sampler_reset(pl_sampler *s) {
    if (!s) return;
    s->ring_len = s->ring_head = 0;
    pl_rng_seed(&s->rng, s->p.seed);
}

const pl_sampler_params *pl_sampler_params_get(const pl_sampler *s) { return s ? &s->p : NULL; }

pl_status pl_sampler_accept(pl_sampler *s, int32_t token) {
    if (!s) return PL_ERR_INVALID_ARG;
    if (token < 0 || token >= s->n_vocab) return PL_ERR_RANGE;
    if (s->ring_cap == 0) return PL_OK;
    s->ring[s->ring_head] = token;
    s->ring_head = (s->ring_head + 1) % s->ring_cap;
    if (s->ring_len < s->ring_cap) s->ring_len++;
    return PL_OK;
}

/* ---- one token ---- */

/* Copy and patch the logits, then either return the greedy pick (*greedy set)
 * or leave the filtered candidates in s->c[0 .. s->n). Returns the greedy
 * token, 0 for "candidates ready", or a negative pl_status. */
static int32_t run_chain(pl_sampler *s, const float *logits, bool allow_greedy, bool *greedy) {
    const size_t nv = (size_t)s->n_vocab;
    *greedy = false;
    /* A plain copy: NaN needs no pass of its own, since every test below is
     * written so that NaN fails it (x > best, x > -inf, x >= thr). */
    memcpy(s->work, logits, nv * sizeof *logits);
    int st = 0;
    for (; st < PL_SAMPLER_STEP_COUNT && STEPS[st].dense; st++)
        if (STEPS[st].on(&s->p, s->n_vocab)) STEPS[st].apply(s);

    if (allow_greedy && s->p.temperature <= 0) { /* greedy: the filters cannot move the argmax */
        *greedy = true;
        float mx = dense_max(s->work, nv);
        if (mx == -INFINITY) return PL_ERR_RANGE;
        size_t i = 0;
        while (s->work[i] != mx) i++; /* the first (lowest id) maximum */
        return (int32_t)i;
    }

    while (st < PL_SAMPLER_STEP_COUNT && !STEPS[st].on(&s->p, s->n_vocab)) st++;
    size_t n = 0;
    if (st < PL_SAMPLER_STEP_COUNT && STEPS[st].from_dense) {
        n = STEPS[st++].from_dense(s);
    } else {
        for (size_t i = 0; i < nv; i++)
            if (s->work[i] > -INFINITY) s->c[n++] = (cand){ .id = (int32_t)i, .logit = clampf(s->work[i]) };
    }
    if (n == 0) return PL_ERR_RANGE;
    s->n = n;
    for (; st < PL_SAMPLER_STEP_COUNT; st++)
        if (STEPS[st].on(&s->p, s->n_vocab)) STEPS[st].apply(s);
    return 0;
}

int32_t pl_sampler_sample(pl_sampler *s, const float *logits) {
    if (!s || !logits) return PL_ERR_INVALID_ARG;
    bool greedy;
    int32_t r = run_chain(s, logits, true, &greedy);
    if (greedy || r < 0) return r;
    double sum = cand_softmax(s, false);
    double u = pl_rng_uniform(&s->rng) * sum, cum = 0;
    for (size_t i = 0; i < s->n; i++) {
        cum += s->c[i].p;
        if (u < cum) return s->c[i].id;
    }
    return s->c[s->n - 1].id; /* u landed in the rounding gap at the top */
}

size_t pl_sampler_debug_candidates(pl_sampler *s, const float *logits, int32_t *ids, float *vals,
                                   size_t cap) {
    bool greedy;
    if (run_chain(s, logits, false, &greedy) < 0) return 0;
    size_t n = s->n < cap ? s->n : cap;
    cand *c = s->c;
    for (size_t i = 1; i < n; i++) /* insertion sort by id: test-only, small */
        for (size_t j = i; j > 0 && c[j - 1].id > c[j].id; j--) cand_swap(&c[j - 1], &c[j]);
    for (size_t i = 0; i < n; i++) ids[i] = c[i].id, vals[i] = c[i].logit;
    return s->n;
}

/* ---- int32 heap sort for the penalty window (qsort may allocate) ---- */

static void i32_sift(int32_t *a, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && a[l] > a[m]) m = l;
        if (l + 1 < n && a[l + 1] > a[m]) m = l + 1;
        if (m == i) return;
        int32_t t = a[i];
        a[i] = a[m];
        a[m] = t;
        i = m;
    }
}

static void hsort_i32(int32_t *a, size_t n) {
    if (n < 2) return;
    for (size_t i = n / 2; i-- > 0;) i32_sift(a, n, i);
    for (size_t end = n - 1; end > 0; end--) {
        int32_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        i32_sift(a, end, 0);
    }
}
