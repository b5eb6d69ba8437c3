/*
 * forward.c - one forward step over up to n_batch tokens, for every architecture
 * in the table (options, not copies):
 *
 *   x = token_embd[tok]
 *   per layer:  h = rmsnorm(x) * attn_norm
 *               q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)   (or one fused Wqkv)
 *               q, k = per-head rmsnorm (qwen3); RoPE(q, k, pos)
 *               K/V cache[seq][pos] = k, v (f16)
 *               x += Wo softmax(q k^T / sqrt(hd) + causal) v      (GQA: kv head = h / group)
 *               h = rmsnorm(x) * ffn_norm
 *               x += Wdown (silu(Wgate h) * Wup h)                (or one fused Wgate_up)
 *   logits = Woutput (rmsnorm(x) * output_norm), only for the rows asked for.
 *
 * Matmuls go through pl_matmul() (type table, thread pool); attention is split over
 * (16-token window, head) pairs on the pool; the element-wise work in between over
 * tokens (prefill; one thread for decode).
 * Softmax and norms accumulate in double; all buffers come from the context.
 */
#include <math.h>
#include <string.h>

#include "model_int.h"

/* y = x / sqrt(mean(x^2) + eps) * w over n values (the sum of squares by the level's
 * helper: f32 lanes at the SIMD levels, double at the scalar one) */
static void rmsnorm(const pl_vec_ops *vo, float *y, const float *x, const float *w, int64_t n, float eps) {
    double ss = vo->sum_sq(x, n);
    float scale = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

static void matmul(pl_context *c, const pl_mat *w, const float *x, int64_t n, float *y) {
    /* the context sized work for every matrix of the model at n <= n_batch, so this
     * cannot fail; a failure here is a bug, caught by the tests */
    pl_perf_lap(c, PL_PERF_PHASE_OTHER);
    pl_status st = pl_matmul(c->pool, w, x, n, y, c->work, c->work_size);
    (void)st;
    pl_perf_lap(c, PL_PERF_PHASE_MATMUL);
}

/* Matrices on the same input in one pl_matmul_multi (one conversion, one thread split);
 * one at a time when their activation formats differ (a mix of K and 32-block types). */
static void matmul_multi(pl_context *c, const pl_mat *const *w, int n_w, const float *x, int64_t n, float *const *y) {
    pl_perf_lap(c, PL_PERF_PHASE_OTHER);
    if (pl_matmul_multi(c->pool, w, n_w, x, n, y, c->work, c->work_size) == PL_OK) {
        pl_perf_lap(c, PL_PERF_PHASE_MATMUL);
        return;
    }
    for (int i = 0; i < n_w; i++) matmul(c, w[i], x, n, y[i]);
}

static void add_bias(float *y, const float *b, int64_t n_rows, int64_t dim) {
    if (!b) return;
    for (int64_t t = 0; t < n_rows; t++)
        for (int64_t i = 0; i < dim; i++) y[t * dim + i] += b[i];
}

/* cos/sin of every (token, pair), once per step, shared by all layers and heads */
static void rope_table(pl_context *c, int32_t n) {
    const pl_rope *r = &c->rope;
    for (int32_t t = 0; t < n; t++) {
        float *cs = c->rope_cs + (size_t)t * (size_t)r->n_rot;
        for (int32_t i = 0; i < r->n_rot / 2; i++) {
            double theta = (double)c->tok_pos[t] * r->freq[i];
            cs[2 * i] = (float)cos(theta) * r->mscale;
            cs[2 * i + 1] = (float)sin(theta) * r->mscale;
        }
    }
}

/* Rotate the first n_rot dims of each of n_heads heads of one token. */
static void rope_apply(const pl_rope *r, const float *cs, float *x, int32_t n_heads, int32_t hd) {
    int32_t half = r->n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)hd;
        for (int32_t i = 0; i < half; i++) {
            int32_t a = r->neox ? i : 2 * i, b = r->neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b], co = cs[2 * i], si = cs[2 * i + 1];
            v[a] = x0 * co - x1 * si;
            v[b] = x0 * si + x1 * co;
        }
    }
}

typedef struct attn_job {
    pl_context       *c;
    const pl_vec_ops *vo; /* the kernel level's f16 helpers */
    int32_t           layer;
    int32_t           n, n_win; /* tokens of the step, windows of ATTN_WIN tokens */
} attn_job;

/* Query tokens per fused-attention call: each K/V block is converted to f32 once per
 * call and shared by its tokens (16 x one head: the conversion is a few % of the FMAs). */
#define ATTN_WIN 16

/* Fallback for head sizes past PL_ATTN_MAX_HD: one (token, query head) per index, scores
 * over the sequence's positions 0..pos in c->scores (one row per thread). */
static void attn_range_wide(void *ud, int64_t begin, int64_t end, int ith) {
    attn_job *j = ud;
    pl_context *c = j->c;
    const pl_model_info *mi = &c->model->info;
    const int32_t hk = mi->head_dim_k, hv = mi->head_dim_v, group = mi->n_head / mi->n_head_kv;
    const float scale = 1.0f / sqrtf((float)hk);
    float *sc = c->scores + (size_t)ith * (size_t)c->n_ctx;
    for (int64_t idx = begin; idx < end; idx++) {
        int32_t t = (int32_t)(idx / mi->n_head), h = (int32_t)(idx % mi->n_head), kvh = h / group;
        int32_t seq = c->tok_seq[t], pos = c->tok_pos[t];
        const float *q = c->q + (size_t)t * (size_t)mi->n_head * (size_t)hk + (size_t)h * (size_t)hk;
        float mx = -INFINITY;
        for (int32_t p = 0; p <= pos; p++) {
            sc[p] = j->vo->dot_f32_f16(q, pl_kv_k(c, j->layer, seq, p, kvh), hk) * scale;
            if (sc[p] > mx) mx = sc[p];
        }
        double sum = 0.0;
        for (int32_t p = 0; p <= pos; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float inv = (float)(1.0 / sum);
        float *o = c->att + (size_t)t * (size_t)mi->n_head * (size_t)hv + (size_t)h * (size_t)hv;
        memset(o, 0, (size_t)hv * sizeof(float));
        for (int32_t p = 0; p <= pos; p++) j->vo->axpy_f16(o, sc[p] * inv, pl_kv_v(c, j->layer, seq, p, kvh), hv);
    }
}

/* One (window of ATTN_WIN tokens, query head) per index; runs of tokens of one sequence
 * in the window go to the fused kernel together. Windows are taken from both ends in
 * turn (0, W-1, 1, W-2, ...) so that the threads' contiguous spans get equal causal
 * work (late tokens see more positions). */
static void attn_range(void *ud, int64_t begin, int64_t end, int ith) {
    attn_job *j = ud;
    pl_context *c = j->c;
    const pl_model_info *mi = &c->model->info;
    const int32_t hk = mi->head_dim_k, hv = mi->head_dim_v, group = mi->n_head / mi->n_head_kv;
    (void)ith;
    for (int64_t idx = begin; idx < end; idx++) {
        int32_t h = (int32_t)(idx % mi->n_head), wi = (int32_t)(idx / mi->n_head), kvh = h / group;
        int32_t w = wi % 2 == 0 ? wi / 2 : j->n_win - 1 - wi / 2;
        int32_t t1 = (w + 1) * ATTN_WIN < j->n ? (w + 1) * ATTN_WIN : j->n;
        for (int32_t t0 = w * ATTN_WIN, te; t0 < t1; t0 = te) {
            int32_t seq = c->tok_seq[t0];
            for (te = t0 + 1; te < t1 && c->tok_seq[te] == seq; te++) {}
            pl_attn_args a = {
                .q = c->q + (size_t)t0 * (size_t)mi->n_head * (size_t)hk + (size_t)h * (size_t)hk,
                .q_stride = (size_t)mi->n_head * (size_t)hk,
                .nq = te - t0,
                .last = c->tok_pos + t0,
                .k = c->k + (size_t)j->layer * (size_t)c->n_blocks * c->k_block,
                .v = c->v + (size_t)j->layer * (size_t)c->n_blocks * c->v_block,
                .blocks = c->seq_blocks + (size_t)seq * (size_t)c->blocks_per_seq,
                .k_block = c->k_block,
                .v_block = c->v_block,
                .k_head = (size_t)kvh * PL_KV_BLOCK * (size_t)hk,
                .v_head = (size_t)kvh * PL_KV_BLOCK * (size_t)hv,
                .hd_k = hk,
                .hd_v = hv,
                .scale = 1.0f / sqrtf((float)hk),
                .o = c->att + (size_t)t0 * (size_t)mi->n_head * (size_t)hv + (size_t)h * (size_t)hv,
                .o_stride = (size_t)mi->n_head * (size_t)hv,
            };
            j->vo->attn(&a);
        }
    }
}

/* Decode-sized steps (fewer tokens than a window): one (token, KV head) per index, the
 * KV head's group of query heads in one fused-kernel call, so each K/V block is
 * converted once for the whole group instead of once per query head (GQA: 7 query
 * heads per KV head in Qwen2.5-0.5B, 4 in Llama-3.2-1B). Qwen2.5-0.5B shape in the
 * server, steps of 4 sequences at 60-120 positions, 2 alternating runs: attention 991
 * and 945 -> 694 and 803 us per step (of ~15 ms); one sequence the same (~155 us). */
static void attn_range_gqa(void *ud, int64_t begin, int64_t end, int ith) {
    attn_job *j = ud;
    pl_context *c = j->c;
    const pl_model_info *mi = &c->model->info;
    const int32_t hk = mi->head_dim_k, hv = mi->head_dim_v, group = mi->n_head / mi->n_head_kv;
    int32_t last[PL_ATTN_MAX_Q];
    (void)ith;
    for (int64_t idx = begin; idx < end; idx++) {
        int32_t t = (int32_t)(idx / mi->n_head_kv), kvh = (int32_t)(idx % mi->n_head_kv);
        int32_t seq = c->tok_seq[t];
        for (int32_t i = 0; i < group; i++) last[i] = c->tok_pos[t];
        pl_attn_args a = {
            .q = c->q + (size_t)t * (size_t)mi->n_head * (size_t)hk + (size_t)kvh * (size_t)group * (size_t)hk,
            .q_stride = (size_t)hk,
            .nq = group,
            .last = last,
            .k = c->k + (size_t)j->layer * (size_t)c->n_blocks * c->k_block,
            .v = c->v + (size_t)j->layer * (size_t)c->n_blocks * c->v_block,
            .blocks = c->seq_blocks + (size_t)seq * (size_t)c->blocks_per_seq,
            .k_block = c->k_block,
            .v_block = c->v_block,
            .k_head = (size_t)kvh * PL_KV_BLOCK * (size_t)hk,
            .v_head = (size_t)kvh * PL_KV_BLOCK * (size_t)hv,
            .hd_k = hk,
            .hd_v = hv,
            .scale = 1.0f / sqrtf((float)hk),
            .o = c->att + (size_t)t * (size_t)mi->n_head * (size_t)hv + (size_t)kvh * (size_t)group * (size_t)hv,
            .o_stride = (size_t)hv,
        };
        j->vo->attn(&a);
    }
}

_Static_assert(PL_KV_BLOCK == PL_ATTN_BLOCK, "the fused attention walks the cache's blocks");
_Static_assert(ATTN_WIN <= PL_ATTN_MAX_Q, "window fits one attention call");

static void attention(pl_context *c, int32_t layer, int32_t n) {
    const pl_model_info *mi = &c->model->info;
    attn_job j = { .c = c, .vo = pl_vec_ops_get(pl_kernel_level()), .layer = layer, .n = n,
                   .n_win = (n + ATTN_WIN - 1) / ATTN_WIN };
    bool wide = mi->head_dim_k > PL_ATTN_MAX_HD || mi->head_dim_v > PL_ATTN_MAX_HD;
    const int32_t group = mi->n_head / mi->n_head_kv;
    bool gqa = !wide && n < ATTN_WIN && group > 1 && group <= PL_ATTN_MAX_Q;
    pl_pool_range_fn fn = wide ? attn_range_wide : gqa ? attn_range_gqa : attn_range;
    int64_t total = wide ? (int64_t)n * mi->n_head : gqa ? (int64_t)n * mi->n_head_kv : (int64_t)j.n_win * mi->n_head;
    pl_perf_lap(c, PL_PERF_PHASE_OTHER);
    if (c->n_threads > 1 && total > 1) pl_pool_for(c->pool, total, 1, fn, &j);
    else fn(&j, 0, total, 0);
    pl_perf_lap(c, PL_PERF_PHASE_ATTENTION);
}

/* The element-wise work between matmuls, per token (so it splits over the pool by
 * token: at 2 threads it was ~15% of a one-thread prefill, run serially). */
typedef enum tok_stage {
    TOK_NORM,       /* xn = rmsnorm(x) * norm */
    TOK_QKV,        /* fused-qkv split, biases, q/k norms, RoPE, K/V into the cache */
    TOK_RESID_NORM, /* x += xn, then xn = rmsnorm(x) * norm (norm NULL: the add only) */
    TOK_SILU,       /* ffb = silu(gate) * up */
} tok_stage;

typedef struct tok_job {
    pl_context       *c;
    const pl_vec_ops *vo;
    tok_stage         stage;
    int32_t           layer;
    const float      *norm;
} tok_job;

static void tok_qkv(const tok_job *j, int32_t t) {
    pl_context *c = j->c;
    const pl_model_info *mi = &c->model->info;
    const pl_arch_info *a = c->model->arch;
    const pl_layer *ly = &c->model->layers[j->layer];
    const int64_t hk = mi->head_dim_k, hv = mi->head_dim_v;
    const int64_t QD = mi->n_head * hk, KD = mi->n_head_kv * hk, VD = mi->n_head_kv * hv;
    float *q = c->q + t * QD, *k = c->kc + t * KD, *v = c->vc + t * VD;
    if (a->fused_qkv) {
        const float *r = c->qkv + t * (QD + KD + VD);
        memcpy(q, r, (size_t)QD * sizeof(float));
        memcpy(k, r + QD, (size_t)KD * sizeof(float));
        memcpy(v, r + QD + KD, (size_t)VD * sizeof(float));
    }
    add_bias(q, ly->bq, 1, QD);
    add_bias(k, ly->bk, 1, KD);
    add_bias(v, ly->bv, 1, VD);
    if (a->has_qk_norm) {
        for (int32_t h = 0; h < mi->n_head; h++) rmsnorm(j->vo, q + h * hk, q + h * hk, ly->q_norm, hk, mi->rms_eps);
        for (int32_t h = 0; h < mi->n_head_kv; h++) rmsnorm(j->vo, k + h * hk, k + h * hk, ly->k_norm, hk, mi->rms_eps);
    }
    const float *cs = c->rope_cs + (size_t)t * (size_t)c->rope.n_rot;
    rope_apply(&c->rope, cs, q, mi->n_head, (int32_t)hk);
    rope_apply(&c->rope, cs, k, mi->n_head_kv, (int32_t)hk);
    /* store this token's K/V: later tokens of the step (and later steps) read them */
    for (int32_t h = 0; h < mi->n_head_kv; h++) {
        j->vo->f32_to_f16(k + h * hk, pl_kv_k(c, j->layer, c->tok_seq[t], c->tok_pos[t], h), hk);
        j->vo->f32_to_f16(v + h * hv, pl_kv_v(c, j->layer, c->tok_seq[t], c->tok_pos[t], h), hv);
    }
}

static void tok_range(void *ud, int64_t begin, int64_t end, int ith) {
    const tok_job *j = ud;
    pl_context *c = j->c;
    const pl_model_info *mi = &c->model->info;
    const int64_t E = mi->n_embd, F = mi->n_ff;
    (void)ith;
    for (int32_t t = (int32_t)begin; t < (int32_t)end; t++) {
        float *x = c->x + t * E, *xn = c->xn + t * E;
        switch (j->stage) {
        case TOK_NORM: rmsnorm(j->vo, xn, x, j->norm, E, mi->rms_eps); break;
        case TOK_QKV: tok_qkv(j, t); break;
        case TOK_RESID_NORM:
            for (int64_t i = 0; i < E; i++) x[i] += xn[i];
            if (j->norm) rmsnorm(j->vo, xn, x, j->norm, E, mi->rms_eps);
            break;
        case TOK_SILU:
            if (c->model->arch->fused_gate_up) {
                const float *g = c->ffa + t * 2 * F; /* [2F]: gate, then up */
                j->vo->silu_mul(c->ffb + t * F, g, g + F, F);
            } else {
                j->vo->silu_mul(c->ffb + t * F, c->ffa + t * F, c->ffb + t * F, F);
            }
            break;
        }
    }
}

/* One stage over the step's tokens: on the pool for prefill-sized steps, inline for
 * decode (a pool round trip costs more than a token's element-wise work). */
static void per_token(pl_context *c, int32_t n, tok_stage stage, int32_t layer, const float *norm) {
    tok_job j = { .c = c, .vo = pl_vec_ops_get(pl_kernel_level()), .stage = stage, .layer = layer, .norm = norm };
    if (c->n_threads > 1 && n >= 8) pl_pool_for(c->pool, n, 1, tok_range, &j);
    else tok_range(&j, 0, n, 0);
}

void pl_forward_step(pl_context *c, const int32_t *tokens, int32_t n, const int32_t *out_idx, int32_t n_out,
                     float *logits) {
    const pl_model *m = c->model;
    const pl_model_info *mi = &m->info;
    const pl_arch_info *a = m->arch;
    const int64_t E = mi->n_embd;
    const pl_type_info *et = pl_type_get(m->tok_embd.type);
    const pl_vec_ops *vo = pl_vec_ops_get(pl_kernel_level());
    c->perf_t = pl_time_ns(); /* phase laps (pl_perf_lap) count from here */

    for (int32_t t = 0; t < n; t++)
        et->to_f32((const uint8_t *)m->tok_embd.data + (size_t)tokens[t] * m->tok_embd.row_bytes, c->x + t * E, E);
    rope_table(c, n);

    per_token(c, n, TOK_NORM, 0, m->layers[0].attn_norm);
    for (int32_t l = 0; l < mi->n_layer; l++) {
        const pl_layer *ly = &m->layers[l];
        /* here xn = rmsnorm(x) * attn_norm */
        if (a->fused_qkv) {
            matmul(c, &ly->wqkv, c->xn, n, c->qkv);
        } else {
            const pl_mat *ws[3] = { &ly->wq, &ly->wk, &ly->wv };
            float *ys[3] = { c->q, c->kc, c->vc };
            matmul_multi(c, ws, 3, c->xn, n, ys);
        }
        per_token(c, n, TOK_QKV, l, NULL);
        attention(c, l, n);
        matmul(c, &ly->wo, c->att, n, c->xn);
        per_token(c, n, TOK_RESID_NORM, l, ly->ffn_norm);
        if (a->fused_gate_up) {
            matmul(c, &ly->w_gate_up, c->xn, n, c->ffa); /* [n][2F]: gate, then up */
        } else {
            const pl_mat *ws[2] = { &ly->w_gate, &ly->w_up };
            float *ys[2] = { c->ffa, c->ffb };
            matmul_multi(c, ws, 2, c->xn, n, ys);
        }
        per_token(c, n, TOK_SILU, l, NULL);
        matmul(c, &ly->w_down, c->ffb, n, c->xn);
        per_token(c, n, TOK_RESID_NORM, l, l + 1 < mi->n_layer ? m->layers[l + 1].attn_norm : NULL);
    }

    pl_perf_lap(c, PL_PERF_PHASE_OTHER);
    if (n_out == 0) return;
    for (int32_t j = 0; j < n_out; j++) rmsnorm(vo, c->out_x + j * E, c->x + out_idx[j] * E, m->output_norm, E, mi->rms_eps);
    matmul(c, &m->output, c->out_x, n_out, logits);
}
