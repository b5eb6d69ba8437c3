/*
 * context.c - pl_context: the KV cache (blocks shared by sequences, copy-on-write),
 * scratch sized at init, and pl_context_decode()'s validation and batching.
 *
 * KV cache: n_blocks blocks of PL_KV_BLOCK token slots, each holding every layer's
 * K and V for those slots (f16). A sequence is a table of block ids; a block used by
 * several sequences (pl_context_kv_share) has a reference count and is copied before
 * a sequence appends into it. Cost: kv_bytes = 2 bytes x n_layer x n_blocks x
 * PL_KV_BLOCK x n_head_kv x (hd_k + hd_v); bookkeeping is O(n_blocks) int32.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model_int.h"

static pl_status cerr(pl_context *c, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static pl_status cerr(pl_context *c, pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return st;
}

pl_context_params pl_context_default_params(void) {
    return (pl_context_params){ 0 };
}

/* Allocation plan: every buffer's size is computed (overflow-checked) before any
 * allocation, so a context too large for size_t fails cleanly. */
typedef struct plan {
    bool   ok;
    size_t total;
} plan;

static size_t pmul(plan *p, size_t a, size_t b) {
    size_t r;
    if (!pl_size_mul(a, b, &r)) p->ok = false;
    return p->ok ? r : 0;
}

static void *palloc_any(pl_context *c, plan *p, size_t n, size_t elem, bool zero) {
    size_t bytes = pmul(p, n, elem);
    if (!p->ok) return NULL;
    if (!pl_size_add(p->total, bytes, &p->total)) {
        p->ok = false;
        return NULL;
    }
    void *r = zero ? pl_calloc(c->ctx, bytes ? bytes : 1, 1) : pl_malloc(c->ctx, bytes ? bytes : 1);
    if (!r) p->ok = false;
    return r;
}

static void *palloc(pl_context *c, plan *p, size_t n, size_t elem) { return palloc_any(c, p, n, elem, true); }

pl_status pl_context_init(const pl_model *model, const pl_context_params *params, pl_context **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!model) return PL_ERR_INVALID_ARG;
    pl_ctx *ctx = model->ctx;
    const pl_model_info *mi = &model->info;
    pl_context_params p = params ? *params : pl_context_default_params();
    if (p.n_ctx < 0 || p.n_batch < 0 || p.n_seq_max < 0 || p.n_kv < 0 || p.n_outputs_max < 0 || p.n_threads < 0)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "context parameters must not be negative");
    if (p.n_ctx == 0) p.n_ctx = mi->n_ctx_train < 4096 ? mi->n_ctx_train : 4096;
    if (p.n_ctx > (1 << 24)) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "n_ctx %d is larger than 2^24", p.n_ctx);
    if (p.n_batch == 0) p.n_batch = 512;
    if (p.n_batch > p.n_ctx) p.n_batch = p.n_ctx;
    if (p.n_seq_max == 0) p.n_seq_max = 1;
    if (p.n_seq_max > 4096) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "n_seq_max %d is larger than 4096", p.n_seq_max);
    if (p.n_outputs_max == 0) p.n_outputs_max = p.n_seq_max;
    int64_t n_kv = p.n_kv ? p.n_kv : (int64_t)p.n_ctx * p.n_seq_max;
    int64_t n_blocks = (n_kv + PL_KV_BLOCK - 1) / PL_KV_BLOCK;
    if (n_blocks > INT32_MAX / 2) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "KV cache of %lld slots is too large", (long long)n_kv);

    pl_context *c = pl_calloc(ctx, 1, sizeof *c);
    if (!c) return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory");
    c->model = model;
    c->ctx = ctx;
    c->n_ctx = p.n_ctx;
    c->n_batch = p.n_batch;
    c->n_seq_max = p.n_seq_max;
    c->n_outputs_max = p.n_outputs_max;
    c->n_blocks = (int32_t)n_blocks;
    c->blocks_per_seq = (p.n_ctx + PL_KV_BLOCK - 1) / PL_KV_BLOCK;
    pl_rope_init(model, p.n_ctx, &c->rope);

    pl_status st = PL_OK;
    if (p.pool) {
        c->pool = p.pool;
    } else {
        st = pl_pool_init(ctx, p.n_threads, &c->pool);
        if (st != PL_OK) {
            pl_free(ctx, c);
            return pl_ctx_err(ctx, st, "thread pool: %s", pl_status_str(st));
        }
        c->own_pool = true;
    }
    c->n_threads = pl_pool_n_threads(c->pool);

    const size_t E = (size_t)mi->n_embd, F = (size_t)mi->n_ff, T = (size_t)p.n_batch;
    const size_t QD = (size_t)mi->n_head * (size_t)mi->head_dim_k, KD = (size_t)mi->n_head_kv * (size_t)mi->head_dim_k,
                 VD = (size_t)mi->n_head_kv * (size_t)mi->head_dim_v, OD = (size_t)mi->n_head * (size_t)mi->head_dim_v;
    const size_t T_out = (size_t)(p.n_outputs_max < p.n_batch ? p.n_outputs_max : p.n_batch);
    const bool fused_qkv = model->arch->fused_qkv, fused_ffn = model->arch->fused_gate_up;

    /* KV */
    plan kv = { .ok = true };
    c->k_block = pmul(&kv, pmul(&kv, (size_t)mi->n_head_kv, PL_KV_BLOCK), (size_t)mi->head_dim_k);
    c->v_block = pmul(&kv, pmul(&kv, (size_t)mi->n_head_kv, PL_KV_BLOCK), (size_t)mi->head_dim_v);
    size_t blocks_all = pmul(&kv, (size_t)mi->n_layer, (size_t)c->n_blocks);
    /* Not zeroed: a slot is written before any read of it (block copies may copy unwritten
     * slots, never read them). Zeroing would touch every page of the cache at init: ~0.5 s
     * for 90 MiB (a 4096-token SmolLM2-135M cache) where page faults are slow, and RSS for
     * the whole cache from the start. Untouched, pages arrive as the cache fills. */
    c->k = palloc_any(c, &kv, pmul(&kv, blocks_all, c->k_block), sizeof(uint16_t), false);
    c->v = palloc_any(c, &kv, pmul(&kv, blocks_all, c->v_block), sizeof(uint16_t), false);
    c->kv_bytes = kv.total;

    plan s = { .ok = kv.ok };
    c->refcnt = palloc(c, &s, (size_t)c->n_blocks, sizeof(int32_t));
    c->free_list = palloc(c, &s, (size_t)c->n_blocks, sizeof(int32_t));
    c->seq_len = palloc(c, &s, (size_t)c->n_seq_max, sizeof(int32_t));
    c->seq_blocks = palloc(c, &s, pmul(&s, (size_t)c->n_seq_max, (size_t)c->blocks_per_seq), sizeof(int32_t));
    c->seq_cursor = palloc(c, &s, (size_t)c->n_seq_max, sizeof(int32_t));
    c->seq_need = palloc(c, &s, (size_t)c->n_seq_max, sizeof(int32_t));
    c->x = palloc(c, &s, pmul(&s, T, E), sizeof(float));
    c->xn = palloc(c, &s, pmul(&s, T, E), sizeof(float));
    c->q = palloc(c, &s, pmul(&s, T, QD), sizeof(float));
    c->kc = palloc(c, &s, pmul(&s, T, KD), sizeof(float));
    c->vc = palloc(c, &s, pmul(&s, T, VD), sizeof(float));
    if (fused_qkv) c->qkv = palloc(c, &s, pmul(&s, T, QD + KD + VD), sizeof(float));
    c->att = palloc(c, &s, pmul(&s, T, OD), sizeof(float));
    c->ffa = palloc(c, &s, pmul(&s, T, fused_ffn ? 2 * F : F), sizeof(float));
    c->ffb = palloc(c, &s, pmul(&s, T, F), sizeof(float));
    c->rope_cs = palloc(c, &s, pmul(&s, T, (size_t)mi->n_rot), sizeof(float));
    c->scores = palloc(c, &s, pmul(&s, (size_t)c->n_threads, (size_t)c->n_ctx), sizeof(float));
    c->out_x = palloc(c, &s, pmul(&s, T_out, E), sizeof(float));
    c->logits = palloc(c, &s, pmul(&s, (size_t)c->n_outputs_max, (size_t)mi->n_vocab), sizeof(float));
    c->tok_seq = palloc(c, &s, T, sizeof(int32_t));
    c->tok_pos = palloc(c, &s, T, sizeof(int32_t));
    c->out_idx = palloc(c, &s, T, sizeof(int32_t));
    /* matmul work: the largest activation conversion of any weight in this model */
    size_t work = 0;
    const pl_mat *mats[8];
    for (int l = 0; l < mi->n_layer; l++) {
        const pl_layer *ly = &model->layers[l];
        int n = 0;
        mats[n++] = fused_qkv ? &ly->wqkv : &ly->wq;
        if (!fused_qkv) { mats[n++] = &ly->wk; mats[n++] = &ly->wv; }
        mats[n++] = &ly->wo;
        mats[n++] = fused_ffn ? &ly->w_gate_up : &ly->w_gate;
        if (!fused_ffn) mats[n++] = &ly->w_up;
        mats[n++] = &ly->w_down;
        for (int k = 0; k < n; k++) {
            size_t w = pl_matmul_work_size(mats[k]->type, mats[k]->k, (int64_t)T);
            if (w == SIZE_MAX) s.ok = false;
            if (w > work) work = w;
        }
    }
    size_t wout = pl_matmul_work_size(model->output.type, model->output.k, (int64_t)T_out);
    if (wout == SIZE_MAX) s.ok = false;
    if (wout > work) work = wout;
    size_t work_alloc = 0;
    if (work && !pl_size_add(work, 63, &work_alloc)) s.ok = false;
    if (s.ok && work && (c->work_raw = palloc(c, &s, work_alloc, 1)))
        c->work = (void *)(((uintptr_t)c->work_raw + 63) & ~(uintptr_t)63); /* 64-aligned: see pl_matmul */
    c->work_size = work;
    c->scratch_bytes = s.total;
    if (!s.ok) {
        pl_context_free(c);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory for a context of %d tokens x %d sequences (KV %.1f MiB)",
                          p.n_ctx, p.n_seq_max, (double)c->kv_bytes / 1048576.0);
    }
    pl_context_kv_clear(c);
    *out = c;
    return PL_OK;
}

void pl_context_free(pl_context *c) {
    if (!c) return;
    pl_ctx *ctx = c->ctx;
    if (c->own_pool) pl_pool_free(c->pool);
    void *bufs[] = { c->k, c->v, c->refcnt, c->free_list, c->seq_len, c->seq_blocks, c->seq_cursor, c->seq_need,
                     c->x, c->xn, c->q, c->kc, c->vc, c->qkv, c->att, c->ffa, c->ffb, c->rope_cs, c->scores,
                     c->out_x, c->logits, c->work_raw, c->tok_seq, c->tok_pos, c->out_idx };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) pl_free(ctx, bufs[i]);
    pl_free(ctx, c);
}

pl_context_memory pl_context_memory_usage(const pl_context *c) {
    return c ? (pl_context_memory){ .kv_bytes = c->kv_bytes, .scratch_bytes = c->scratch_bytes } : (pl_context_memory){ 0 };
}
const pl_model *pl_context_model(const pl_context *c) { return c ? c->model : NULL; }
int32_t pl_context_n_ctx(const pl_context *c) { return c ? c->n_ctx : 0; }
const char *pl_context_last_error(const pl_context *c) { return c ? c->err : ""; }
int32_t pl_context_n_outputs(const pl_context *c) { return c ? c->n_outputs : 0; }

const float *pl_context_logits(const pl_context *c, int32_t i) {
    if (!c || i < 0 || i >= c->n_outputs) return NULL;
    return c->logits + (size_t)i * (size_t)c->model->info.n_vocab;
}

/* ---- KV blocks ---- */

static int32_t *seq_table(pl_context *c, int32_t seq) {
    return c->seq_blocks + (size_t)seq * (size_t)c->blocks_per_seq;
}

static int32_t blocks_for(int32_t n) { return (n + PL_KV_BLOCK - 1) / PL_KV_BLOCK; }

static void block_release(pl_context *c, int32_t b) {
    if (--c->refcnt[b] == 0) c->free_list[c->n_free++] = b;
}

static int32_t block_take(pl_context *c) {
    int32_t b = c->free_list[--c->n_free];
    c->refcnt[b] = 1;
    return b;
}

/* Copy block src's K/V (every layer) into dst. */
static void block_copy(pl_context *c, int32_t dst, int32_t src) {
    for (int32_t l = 0; l < c->model->info.n_layer; l++) {
        size_t kl = (size_t)l * (size_t)c->n_blocks * c->k_block, vl = (size_t)l * (size_t)c->n_blocks * c->v_block;
        memcpy(c->k + kl + (size_t)dst * c->k_block, c->k + kl + (size_t)src * c->k_block, c->k_block * sizeof(uint16_t));
        memcpy(c->v + vl + (size_t)dst * c->v_block, c->v + vl + (size_t)src * c->v_block, c->v_block * sizeof(uint16_t));
    }
}

void pl_context_kv_clear(pl_context *c) {
    if (!c) return;
    memset(c->refcnt, 0, (size_t)c->n_blocks * sizeof(int32_t));
    memset(c->seq_len, 0, (size_t)c->n_seq_max * sizeof(int32_t));
    c->n_free = c->n_blocks;
    for (int32_t i = 0; i < c->n_blocks; i++) c->free_list[i] = c->n_blocks - 1 - i; /* block 0 first */
    c->n_outputs = 0;
}

int32_t pl_context_kv_len(const pl_context *c, int32_t seq) {
    if (!c || seq < 0 || seq >= c->n_seq_max) return -1;
    return c->seq_len[seq];
}

pl_status pl_context_kv_truncate(pl_context *c, int32_t seq, int32_t n) {
    if (!c) return PL_ERR_INVALID_ARG;
    if (seq < 0 || seq >= c->n_seq_max) return cerr(c, PL_ERR_INVALID_ARG, "kv_truncate: bad sequence id %d", seq);
    if (n < 0) return cerr(c, PL_ERR_INVALID_ARG, "kv_truncate: negative length %d", n);
    if (n >= c->seq_len[seq]) return PL_OK;
    int32_t *tab = seq_table(c, seq);
    for (int32_t b = blocks_for(n); b < blocks_for(c->seq_len[seq]); b++) block_release(c, tab[b]);
    c->seq_len[seq] = n;
    return PL_OK;
}

pl_status pl_context_kv_share(pl_context *c, int32_t src, int32_t dst, int32_t n) {
    if (!c) return PL_ERR_INVALID_ARG;
    if (src < 0 || src >= c->n_seq_max || dst < 0 || dst >= c->n_seq_max)
        return cerr(c, PL_ERR_INVALID_ARG, "kv_share: bad sequence id (%d -> %d)", src, dst);
    if (n < 0 || n > c->seq_len[src])
        return cerr(c, PL_ERR_INVALID_ARG, "kv_share: %d tokens asked, sequence %d holds %d", n, src, c->seq_len[src]);
    if (src == dst) return pl_context_kv_truncate(c, src, n);
    pl_context_kv_truncate(c, dst, 0);
    int32_t *ts = seq_table(c, src), *td = seq_table(c, dst);
    for (int32_t b = 0; b < blocks_for(n); b++) {
        td[b] = ts[b];
        c->refcnt[ts[b]]++;
    }
    c->seq_len[dst] = n;
    return PL_OK;
}

/* ---- decode ---- */

static int32_t tok_seq_of(const pl_batch *b, int32_t i) { return b->seq_id ? b->seq_id[i] : b->seq; }

static bool tok_outputs(const pl_batch *b, int32_t i) {
    if (b->output) return b->output[i] != 0;
    return b->all || i == b->n_tokens - 1;
}

/* Validate the whole batch and reserve its KV blocks; nothing changes on failure. */
static pl_status prepare(pl_context *c, const pl_batch *b, int32_t *n_out) {
    const pl_model_info *mi = &c->model->info;
    if (!b->tokens) return cerr(c, PL_ERR_INVALID_ARG, "decode: tokens is NULL");
    memset(c->seq_need, 0, (size_t)c->n_seq_max * sizeof(int32_t));
    int32_t outs = 0;
    for (int32_t i = 0; i < b->n_tokens; i++) {
        int32_t s = tok_seq_of(b, i), t = b->tokens[i];
        if (t < 0 || t >= mi->n_vocab)
            return cerr(c, PL_ERR_INVALID_ARG, "decode: token %d (at %d) is outside the vocabulary [0, %d)", t, i,
                        mi->n_vocab);
        if (s < 0 || s >= c->n_seq_max)
            return cerr(c, PL_ERR_INVALID_ARG, "decode: sequence id %d (at %d) is outside [0, %d)", s, i, c->n_seq_max);
        int32_t want = c->seq_len[s] + c->seq_need[s];
        if (b->pos && b->pos[i] != want)
            return cerr(c, PL_ERR_INVALID_ARG, "decode: token %d of sequence %d has position %d, expected %d", i, s,
                        b->pos[i], want);
        if (want >= c->n_ctx)
            return cerr(c, PL_ERR_CONTEXT_FULL, "decode: sequence %d would pass the context of %d tokens", s, c->n_ctx);
        c->seq_need[s]++;
        if (tok_outputs(b, i)) outs++;
    }
    if (outs > c->n_outputs_max)
        return cerr(c, PL_ERR_INVALID_ARG, "decode: %d logit rows asked, the context was made for %d (n_outputs_max)",
                    outs, c->n_outputs_max);
    /* blocks: new ones past each sequence's last, plus a copy of a shared last block */
    int64_t need = 0;
    for (int32_t s = 0; s < c->n_seq_max; s++) {
        if (!c->seq_need[s]) continue;
        int32_t len = c->seq_len[s];
        need += blocks_for(len + c->seq_need[s]) - blocks_for(len);
        if (len % PL_KV_BLOCK && c->refcnt[seq_table(c, s)[len / PL_KV_BLOCK]] > 1) need++;
    }
    if (need > c->n_free)
        return cerr(c, PL_ERR_CONTEXT_FULL, "decode: the KV cache is full (%lld blocks needed, %d free)",
                    (long long)need, c->n_free);
    /* commit */
    for (int32_t s = 0; s < c->n_seq_max; s++) {
        if (!c->seq_need[s]) continue;
        int32_t len = c->seq_len[s], *tab = seq_table(c, s);
        if (len % PL_KV_BLOCK) {
            int32_t old = tab[len / PL_KV_BLOCK];
            if (c->refcnt[old] > 1) {
                int32_t nb = block_take(c);
                block_copy(c, nb, old);
                block_release(c, old);
                tab[len / PL_KV_BLOCK] = nb;
            }
        }
        for (int32_t bi = blocks_for(len); bi < blocks_for(len + c->seq_need[s]); bi++) tab[bi] = block_take(c);
        c->seq_cursor[s] = len;
        c->seq_len[s] = len + c->seq_need[s];
    }
    *n_out = outs;
    return PL_OK;
}

pl_status pl_context_decode(pl_context *c, const pl_batch *b) {
    if (!c || !b || b->n_tokens < 0) return c ? cerr(c, PL_ERR_INVALID_ARG, "decode: bad batch") : PL_ERR_INVALID_ARG;
    c->err[0] = 0;
    c->n_outputs = 0;
    if (b->n_tokens == 0) return PL_OK;
    uint64_t t0 = pl_time_ns();
    int32_t n_out = 0;
    pl_status st = prepare(c, b, &n_out);
    if (st != PL_OK) return st;
    /* steps of up to n_batch tokens; the logits rows fill in batch order */
    int32_t done_out = 0;
    for (int32_t i0 = 0; i0 < b->n_tokens; i0 += c->n_batch) {
        int32_t n = b->n_tokens - i0 < c->n_batch ? b->n_tokens - i0 : c->n_batch, k = 0;
        for (int32_t i = 0; i < n; i++) {
            int32_t s = tok_seq_of(b, i0 + i);
            c->tok_seq[i] = s;
            c->tok_pos[i] = c->seq_cursor[s]++;
            if (tok_outputs(b, i0 + i)) c->out_idx[k++] = i;
        }
        /* k <= min(n_batch, n_outputs_max): the rows out_x was sized for */
        float *lg = c->logits + (size_t)done_out * (size_t)c->model->info.n_vocab;
        pl_forward_step(c, b->tokens + i0, n, c->out_idx, k, lg);
        done_out += k;
    }
    c->n_outputs = n_out;
    c->perf.decode_ns += pl_time_ns() - t0;
    c->perf.n_decode++;
    c->perf.n_tokens += (uint64_t)b->n_tokens;
    return PL_OK;
}
