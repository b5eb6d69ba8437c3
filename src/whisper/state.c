/*
 * state.c - the Whisper encoder and decoder on pl_matmul (weights in their file
 * type) and the thread pool.
 *
 * Encoder (T = audio ctx frames, F = 2T mel frames, E = state, H heads of hd):
 *   h  = gelu(conv1(mel) + b1)                 conv k=3 pad 1: im2col [F][3 n_mels] x W1 -> [F][E]
 *   x  = gelu(conv2(h) + b2) + pos[0..T)       stride 2: im2col [T][3E] x W2 -> [T][E]
 *   per block: x += Wo attn(LN(x)) + bo        softmax(q k^T / sqrt(hd)) v per head, as two
 *                                               matmuls per head (k rows, then v^T rows)
 *              x += W2 gelu(W0 LN(x) + b0) + b2
 *   out = LN_post(x); cross K/V of every decoder layer = Wk out, Wv out + bv (once per window)
 * Decoder (n tokens at positions n_past..):
 *   x = tok_emb[tok] + pos[n_past + t]
 *   per block: x += self-attention (causal, K/V cached per position)
 *              x += cross-attention over the window's K/V
 *              x += mlp
 *   logits = tok_emb . LN(x_last)
 * Norms, GELU and softmax are split over rows on the pool; the (token, head)
 * attention of the decoder too. No allocation after pl_whisper_state_init().
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "whisper/whisper_int.h"

#define LN_EPS 1e-5

pl_status wh_state_err(pl_whisper_state *s, pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return st;
}

const char *pl_whisper_state_error(const pl_whisper_state *s) { return s ? s->err : ""; }

/* ---- helpers ---- */

static void run_for(pl_whisper_state *s, int64_t n, pl_pool_range_fn fn, void *ud) {
    if (n <= 0) return;
    if (s->n_threads > 1 && n > 1) pl_pool_for(s->pool, n, 1, fn, ud);
    else fn(ud, 0, n, 0);
}

/* erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26): one expf instead of erff */
static inline float fast_erf(float x) {
    float a = fabsf(x), t = 1.0f / (1.0f + 0.3275911f * a);
    float y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t +
                      0.254829592f) * t * expf(-a * a);
    return x < 0 ? -y : y;
}

static inline float gelu(float x) { return 0.5f * x * (1.0f + fast_erf(x * 0.70710678f)); }

typedef struct rows_job {
    float       *y;
    const float *x, *w, *b, *bias;
    int64_t      dim;
    bool         gelu;
} rows_job;

/* y = LN(x) * w + b per row */
static void ln_rows(void *ud, int64_t begin, int64_t end, int ith) {
    rows_job *j = ud;
    (void)ith;
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->dim;
        float *y = j->y + r * j->dim;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < j->dim; i++) mean += x[i];
        mean /= (double)j->dim;
        for (int64_t i = 0; i < j->dim; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
        float inv = (float)(1.0 / sqrt(var / (double)j->dim + LN_EPS)), mu = (float)mean;
        for (int64_t i = 0; i < j->dim; i++) y[i] = (x[i] - mu) * inv * j->w[i] + j->b[i];
    }
}

static void layernorm(pl_whisper_state *s, float *y, const float *x, const wh_ln *ln, int64_t n, int64_t dim) {
    rows_job j = { .y = y, .x = x, .w = ln->w, .b = ln->b, .dim = dim };
    run_for(s, n, ln_rows, &j);
}

/* y += bias, then gelu when asked, per row */
static void bias_rows(void *ud, int64_t begin, int64_t end, int ith) {
    rows_job *j = ud;
    (void)ith;
    for (int64_t r = begin; r < end; r++) {
        float *y = j->y + r * j->dim;
        if (j->bias)
            for (int64_t i = 0; i < j->dim; i++) y[i] += j->bias[i];
        if (j->gelu)
            for (int64_t i = 0; i < j->dim; i++) y[i] = gelu(y[i]);
    }
}

static void bias_act(pl_whisper_state *s, float *y, const float *bias, int64_t n, int64_t dim, bool act) {
    rows_job j = { .y = y, .bias = bias, .dim = dim, .gelu = act };
    run_for(s, n, bias_rows, &j);
}

static void mm(pl_whisper_state *s, const pl_mat *w, const float *x, int64_t n, float *y) {
    /* the state sized work for every matrix at n <= its largest batch: failure is a bug */
    pl_status st = pl_matmul(s->pool, w, x, n, y, s->work, s->work_size);
    (void)st;
}

static void linear(pl_whisper_state *s, const wh_linear *l, const float *x, int64_t n, float *y) {
    mm(s, &l->w, x, n, y);
    if (l->b) bias_act(s, y, l->b, n, l->w.rows, false);
}

/* q, k, v of one input in one matmul_multi when the types allow it */
static void qkv(pl_whisper_state *s, const wh_attn *a, const float *x, int64_t n, float *q, float *k, float *v) {
    const pl_mat *ws[3] = { &a->q.w, &a->k.w, &a->v.w };
    float *ys[3] = { q, k, v };
    if (pl_matmul_multi(s->pool, ws, 3, x, n, ys, s->work, s->work_size) != PL_OK)
        for (int i = 0; i < 3; i++) mm(s, ws[i], x, n, ys[i]);
    const int64_t E = a->q.w.rows;
    bias_act(s, q, a->q.b, n, E, false);
    bias_act(s, v, a->v.b, n, E, false);
}

/* ---- state ---- */

void pl_whisper_state_free(pl_whisper_state *s) {
    if (!s) return;
    pl_ctx *ctx = s->ctx;
    wh_result_free(s);
    pl_pool_free(s->pool);
    float **bufs[] = { &s->mel, &s->col, &s->h1, &s->x, &s->xn, &s->att, &s->q, &s->k, &s->vt, &s->qkv[0],
                       &s->qkv[1], &s->qkv[2], &s->h4, &s->scores, &s->enc_out, &s->ck, &s->cv, &s->kself,
                       &s->vself, &s->dx, &s->dxn, &s->dq, &s->dk, &s->dv, &s->datt, &s->dh4, &s->dscores,
                       &s->logits };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) pl_free(ctx, *bufs[i]);
    pl_free(ctx, s->work_raw);
    pl_free(ctx, s);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

pl_status pl_whisper_state_init(const pl_whisper_model *m, int n_threads, int audio_ctx, pl_whisper_state **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!m) return PL_ERR_INVALID_ARG;
    pl_ctx *ctx = m->ctx;
    const pl_whisper_hparams *h = &m->hp;
    if (audio_ctx < 0 || audio_ctx > h->n_audio_ctx)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "whisper: audio_ctx %d outside 0..%d", audio_ctx, h->n_audio_ctx);
    pl_whisper_state *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "whisper: out of memory");
    s->m = m;
    s->ctx = ctx;
    s->T = audio_ctx ? audio_ctx : h->n_audio_ctx;
    s->T_cap = s->T;
    pl_status st = pl_pool_init(ctx, n_threads, &s->pool);
    if (st != PL_OK) {
        pl_free(ctx, s);
        return st;
    }
    s->n_threads = pl_pool_n_threads(s->pool);
    /* every size below is a product of validated hparams (each <= 8192, layers <= 64):
     * at most ~2^45, so size_t arithmetic cannot overflow on 64-bit */
    const size_t T = (size_t)s->T, F = 2 * T, E = (size_t)h->n_audio_state, C = (size_t)h->n_text_ctx;
    const size_t NM = (size_t)h->n_mels, L = (size_t)h->n_text_layer, f = sizeof(float);
    const size_t colw = 3 * (NM > E ? NM : E);
    struct { float **p; size_t n; } al[] = {
        { &s->mel, NM * F }, { &s->col, max_sz(F * 3 * NM, T * 3 * E) }, { &s->h1, F * E },
        { &s->x, T * E }, { &s->xn, T * E }, { &s->att, T * E }, { &s->q, T * E }, { &s->k, T * E },
        { &s->vt, T * E }, { &s->qkv[0], T * E }, { &s->qkv[1], T * E }, { &s->qkv[2], T * E },
        { &s->h4, T * 4 * E }, { &s->scores, T * T }, { &s->enc_out, T * E }, { &s->ck, L * T * E },
        { &s->cv, L * T * E }, { &s->kself, L * C * E }, { &s->vself, L * C * E }, { &s->dx, C * E },
        { &s->dxn, C * E }, { &s->dq, C * E }, { &s->dk, C * E }, { &s->dv, C * E }, { &s->datt, C * E },
        { &s->dh4, C * 4 * E }, { &s->dscores, (size_t)s->n_threads * max_sz(T, C) },
        { &s->logits, (size_t)h->n_vocab },
    };
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        if (!(*al[i].p = pl_malloc(ctx, al[i].n * f))) {
            pl_whisper_state_free(s);
            return pl_ctx_err(ctx, PL_ERR_NOMEM, "whisper: out of memory for the state (audio ctx %zu)", T);
        }
    }
    /* activation conversion space for the largest k and batch of any matrix */
    const pl_mat *mats[] = { &m->conv1, &m->conv2, &m->tok_emb, &m->enc[0].attn.q.w, &m->enc[0].mlp0.w,
                             &m->enc[0].mlp2.w, &m->dec[0].attn.q.w, &m->dec[0].mlp0.w, &m->dec[0].mlp2.w };
    size_t work = 0;
    for (int l = 0; l < h->n_audio_layer; l++) {
        const wh_enc_layer *ly = &m->enc[l];
        const pl_mat *lm[] = { &ly->attn.q.w, &ly->attn.k.w, &ly->attn.v.w, &ly->attn.o.w, &ly->mlp0.w, &ly->mlp2.w };
        for (size_t i = 0; i < 6; i++) work = max_sz(work, pl_matmul_work_size(lm[i]->type, 4 * (int64_t)E, (int64_t)F));
    }
    for (int l = 0; l < h->n_text_layer; l++) {
        const wh_dec_layer *ly = &m->dec[l];
        const pl_mat *lm[] = { &ly->attn.q.w, &ly->attn.k.w, &ly->attn.v.w, &ly->attn.o.w, &ly->cross.q.w,
                               &ly->cross.k.w, &ly->cross.v.w, &ly->cross.o.w, &ly->mlp0.w, &ly->mlp2.w };
        for (size_t i = 0; i < 10; i++)
            work = max_sz(work, pl_matmul_work_size(lm[i]->type, 4 * (int64_t)E, (int64_t)max_sz(F, C)));
    }
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
        work = max_sz(work, pl_matmul_work_size(mats[i]->type, (int64_t)max_sz(colw, 4 * E), (int64_t)max_sz(F, C)));
    if (work == SIZE_MAX || work > SIZE_MAX - 64 || !(s->work_raw = pl_malloc(ctx, work + 64))) {
        pl_whisper_state_free(s);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "whisper: out of memory for the matmul work area");
    }
    s->work = (void *)(((uintptr_t)s->work_raw + 63) & ~(uintptr_t)63);
    s->work_size = work;
    *out = s;
    return PL_OK;
}

/* ---- encoder ---- */

typedef struct softmax_job {
    float  *s;      /* rows of n */
    int64_t n;
    float   scale;
} softmax_job;

static void softmax_rows(void *ud, int64_t begin, int64_t end, int ith) {
    softmax_job *j = ud;
    (void)ith;
    for (int64_t r = begin; r < end; r++) {
        float *row = j->s + r * j->n, mx = -INFINITY;
        for (int64_t i = 0; i < j->n; i++) {
            row[i] *= j->scale;
            if (row[i] > mx) mx = row[i];
        }
        double sum = 0.0;
        for (int64_t i = 0; i < j->n; i++) {
            row[i] = expf(row[i] - mx);
            sum += row[i];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < j->n; i++) row[i] *= inv;
    }
}

/* Full (non-causal) attention of the encoder over s->qkv[0..2] [T][E] into s->att. */
static void enc_attention(pl_whisper_state *s, int H) {
    const int64_t T = s->T, E = s->m->hp.n_audio_state, hd = E / H;
    /* head-major copies: q, k [H][T][hd]; v transposed [H][hd][T] */
    for (int64_t t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            memcpy(s->q + ((size_t)h * T + t) * hd, s->qkv[0] + t * E + h * hd, (size_t)hd * sizeof(float));
            memcpy(s->k + ((size_t)h * T + t) * hd, s->qkv[1] + t * E + h * hd, (size_t)hd * sizeof(float));
            for (int64_t d = 0; d < hd; d++) s->vt[((size_t)h * hd + d) * T + t] = s->qkv[2][t * E + h * hd + d];
        }
    softmax_job sj = { .s = s->scores, .n = T, .scale = 1.0f / sqrtf((float)hd) };
    for (int h = 0; h < H; h++) {
        pl_mat km, vm;
        pl_mat_init(&km, PL_TYPE_F32, hd, T, s->k + (size_t)h * T * hd);
        pl_mat_init(&vm, PL_TYPE_F32, T, hd, s->vt + (size_t)h * hd * T);
        mm(s, &km, s->q + (size_t)h * T * hd, T, s->scores);  /* [T queries][T keys] */
        run_for(s, T, softmax_rows, &sj);
        mm(s, &vm, s->scores, T, s->xn);                        /* [T][hd] */
        for (int64_t t = 0; t < T; t++) memcpy(s->att + t * E + h * hd, s->xn + t * hd, (size_t)hd * sizeof(float));
    }
}

pl_status pl_whisper_encode(pl_whisper_state *s) {
    if (!s) return PL_ERR_INVALID_ARG;
    const pl_whisper_model *m = s->m;
    const pl_whisper_hparams *h = &m->hp;
    const int64_t T = s->T, F = 2 * T, E = h->n_audio_state, NM = h->n_mels;
    /* conv1: col[t][c*3 + j] = mel[c][t + j - 1] */
    for (int64_t t = 0; t < F; t++)
        for (int64_t c = 0; c < NM; c++)
            for (int j = 0; j < 3; j++) {
                int64_t src = t + j - 1;
                s->col[(t * NM + c) * 3 + j] = src >= 0 && src < F ? s->mel[c * F + src] : 0.0f;
            }
    mm(s, &m->conv1, s->col, F, s->h1);
    bias_act(s, s->h1, m->conv1_b, F, E, true);
    /* conv2, stride 2: col[t][c*3 + j] = h1[2t + j - 1][c] */
    for (int64_t t = 0; t < T; t++)
        for (int j = 0; j < 3; j++) {
            int64_t src = 2 * t + j - 1;
            for (int64_t c = 0; c < E; c++)
                s->col[(t * E + c) * 3 + j] = src >= 0 && src < F ? s->h1[src * E + c] : 0.0f;
        }
    mm(s, &m->conv2, s->col, T, s->x);
    bias_act(s, s->x, m->conv2_b, T, E, true);
    for (int64_t i = 0; i < T * E; i++) s->x[i] += m->enc_pos[i];

    for (int l = 0; l < h->n_audio_layer; l++) {
        const wh_enc_layer *ly = &m->enc[l];
        layernorm(s, s->xn, s->x, &ly->attn_ln, T, E);
        qkv(s, &ly->attn, s->xn, T, s->qkv[0], s->qkv[1], s->qkv[2]);
        enc_attention(s, h->n_audio_head);
        linear(s, &ly->attn.o, s->att, T, s->xn);
        for (int64_t i = 0; i < T * E; i++) s->x[i] += s->xn[i];
        layernorm(s, s->xn, s->x, &ly->mlp_ln, T, E);
        mm(s, &ly->mlp0.w, s->xn, T, s->h4);
        bias_act(s, s->h4, ly->mlp0.b, T, 4 * E, true);
        linear(s, &ly->mlp2, s->h4, T, s->xn);
        for (int64_t i = 0; i < T * E; i++) s->x[i] += s->xn[i];
    }
    layernorm(s, s->enc_out, s->x, &m->ln_post, T, E);
    /* cross-attention K/V of every decoder layer, once per window */
    for (int l = 0; l < h->n_text_layer; l++) {
        const wh_attn *c = &m->dec[l].cross;
        float *ck = s->ck + (size_t)l * T * E, *cv = s->cv + (size_t)l * T * E;
        const pl_mat *ws[2] = { &c->k.w, &c->v.w };
        float *ys[2] = { ck, cv };
        if (pl_matmul_multi(s->pool, ws, 2, s->enc_out, T, ys, s->work, s->work_size) != PL_OK) {
            mm(s, ws[0], s->enc_out, T, ck);
            mm(s, ws[1], s->enc_out, T, cv);
        }
        bias_act(s, cv, c->v.b, T, E, false);
    }
    s->encoded = true;
    return PL_OK;
}

const float *pl_whisper_encoder_output(const pl_whisper_state *s, int *n_ctx) {
    if (!s || !s->encoded) return NULL;
    if (n_ctx) *n_ctx = s->T;
    return s->enc_out;
}

/* ---- decoder ---- */

typedef struct dattn_job {
    pl_whisper_state *s;
    const float      *q;      /* [n][E] */
    const float      *k, *v;  /* [positions][E] */
    float            *out;    /* [n][E] */
    int               H, hd, E;
    int               n_past; /* causal: token t sees positions 0..n_past + t; -1: all n_kv */
    int               n_kv;
} dattn_job;

static void dattn_range(void *ud, int64_t begin, int64_t end, int ith) {
    dattn_job *j = ud;
    const int hd = j->hd, E = j->E;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = j->s->dscores + (size_t)ith * max_sz((size_t)j->s->T, (size_t)j->s->m->hp.n_text_ctx);
    for (int64_t idx = begin; idx < end; idx++) {
        int t = (int)(idx / j->H), h = (int)(idx % j->H);
        int n = j->n_past >= 0 ? j->n_past + t + 1 : j->n_kv;
        const float *q = j->q + (size_t)t * E + (size_t)h * hd;
        float mx = -INFINITY;
        for (int p = 0; p < n; p++) {
            const float *k = j->k + (size_t)p * E + (size_t)h * hd;
            float d = 0.0f;
            for (int i = 0; i < hd; i++) d += q[i] * k[i];
            sc[p] = d * scale;
            if (sc[p] > mx) mx = sc[p];
        }
        double sum = 0.0;
        for (int p = 0; p < n; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float inv = (float)(1.0 / sum);
        float *o = j->out + (size_t)t * E + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int p = 0; p < n; p++) {
            const float *v = j->v + (size_t)p * E + (size_t)h * hd;
            float w = sc[p] * inv;
            for (int i = 0; i < hd; i++) o[i] += w * v[i];
        }
    }
}

pl_status pl_whisper_decode(pl_whisper_state *s, const int32_t *tokens, int n, int n_past, const float **logits) {
    if (!s || !tokens || n < 1 || n_past < 0 || !logits) return PL_ERR_INVALID_ARG;
    const pl_whisper_model *m = s->m;
    const pl_whisper_hparams *h = &m->hp;
    if (!s->encoded) return wh_state_err(s, PL_ERR_STATE, "decode before encode");
    if (n_past + n > h->n_text_ctx)
        return wh_state_err(s, PL_ERR_CONTEXT_FULL, "decoder context full (%d + %d > %d)", n_past, n, h->n_text_ctx);
    const int E = h->n_text_state, H = h->n_text_head;
    const pl_type_info *et = pl_type_get(m->tok_emb.type);
    for (int t = 0; t < n; t++) {
        if (tokens[t] < 0 || tokens[t] >= h->n_vocab)
            return wh_state_err(s, PL_ERR_RANGE, "token %d outside the vocabulary", (int)tokens[t]);
        float *x = s->dx + (size_t)t * E;
        et->to_f32((const uint8_t *)m->tok_emb.data + (size_t)tokens[t] * m->tok_emb.row_bytes, x, E);
        const float *pos = m->dec_pos + (size_t)(n_past + t) * E;
        for (int i = 0; i < E; i++) x[i] += pos[i];
    }
    for (int l = 0; l < h->n_text_layer; l++) {
        const wh_dec_layer *ly = &m->dec[l];
        float *kc = s->kself + ((size_t)l * h->n_text_ctx) * E, *vc = s->vself + ((size_t)l * h->n_text_ctx) * E;
        /* self-attention: this step's K/V go to the cache at their positions */
        layernorm(s, s->dxn, s->dx, &ly->attn_ln, n, E);
        qkv(s, &ly->attn, s->dxn, n, s->dq, kc + (size_t)n_past * E, vc + (size_t)n_past * E);
        dattn_job j = { .s = s, .q = s->dq, .k = kc, .v = vc, .out = s->datt, .H = H, .hd = E / H, .E = E,
                        .n_past = n_past };
        run_for(s, (int64_t)n * H, dattn_range, &j);
        linear(s, &ly->attn.o, s->datt, n, s->dxn);
        for (int64_t i = 0; i < (int64_t)n * E; i++) s->dx[i] += s->dxn[i];
        /* cross-attention over the window */
        layernorm(s, s->dxn, s->dx, &ly->cross_ln, n, E);
        linear(s, &ly->cross.q, s->dxn, n, s->dq);
        j = (dattn_job){ .s = s, .q = s->dq, .k = s->ck + (size_t)l * s->T * E, .v = s->cv + (size_t)l * s->T * E,
                         .out = s->datt, .H = H, .hd = E / H, .E = E, .n_past = -1, .n_kv = s->T };
        run_for(s, (int64_t)n * H, dattn_range, &j);
        linear(s, &ly->cross.o, s->datt, n, s->dxn);
        for (int64_t i = 0; i < (int64_t)n * E; i++) s->dx[i] += s->dxn[i];
        /* mlp */
        layernorm(s, s->dxn, s->dx, &ly->mlp_ln, n, E);
        mm(s, &ly->mlp0.w, s->dxn, n, s->dh4);
        bias_act(s, s->dh4, ly->mlp0.b, n, 4 * E, true);
        linear(s, &ly->mlp2, s->dh4, n, s->dxn);
        for (int64_t i = 0; i < (int64_t)n * E; i++) s->dx[i] += s->dxn[i];
    }
    layernorm(s, s->dxn, s->dx + (size_t)(n - 1) * E, &m->ln, 1, E);
    mm(s, &m->tok_emb, s->dxn, 1, s->logits);
    *logits = s->logits;
    return PL_OK;
}

pl_status pl_whisper_set_audio(pl_whisper_state *s, const float *pcm, size_t n) {
    if (!s || (!pcm && n)) return PL_ERR_INVALID_ARG;
    const pl_whisper_model *m = s->m;
    size_t pad = (size_t)PL_WHISPER_CHUNK_S * PL_WHISPER_SAMPLE_RATE;
    pl_status st = pl_whisper_log_mel(s->ctx, m->filters, m->hp.n_mels, pcm, n, pad, 2 * (size_t)s->T, s->mel);
    if (st != PL_OK) return wh_state_err(s, st, "mel: %s", pl_status_str(st));
    s->encoded = false;
    return PL_OK;
}
