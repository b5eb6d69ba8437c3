/* model_int.h - private: architecture table, loaded model, context (KV cache + scratch). */
#ifndef PL_MODEL_INT_H
#define PL_MODEL_INT_H

#include "parley/model.h"
#include "parley/tensor.h"

/* ---- architectures: one row each, options instead of copies of the forward pass ---- */

typedef enum pl_arch {
    PL_ARCH_LLAMA = 0,
    PL_ARCH_QWEN2,
    PL_ARCH_QWEN3,
    PL_ARCH_PHI3,
    PL_ARCH_COUNT
} pl_arch;

typedef struct pl_arch_info {
    const char *name;          /* general.architecture value and metadata key prefix */
    bool        has_qkv_bias;  /* attn_{q,k,v}.bias [q dim], [kv dim], [kv dim] */
    bool        has_qk_norm;   /* attn_{q,k}_norm [head_dim]: per-head RMSNorm before RoPE */
    bool        fused_qkv;     /* attn_qkv [n_embd -> q + k + v] instead of attn_q/k/v */
    bool        fused_gate_up; /* ffn_up [n_embd -> 2 n_ff], gate = first n_ff rows; no ffn_gate */
    bool        rope_neox;     /* rotate (x[i], x[i + n_rot/2]) instead of (x[2i], x[2i+1]) */
} pl_arch_info;

const pl_arch_info *pl_arch_get(pl_arch a);
/* Row whose name equals s (not NUL-terminated), or NULL. */
const pl_arch_info *pl_arch_find(const char *s, size_t len);

/* ---- RoPE: per-pair frequencies with the scaling folded in ---- */

#define PL_ROPE_MAX_PAIRS 512 /* n_rot <= 1024 */

typedef struct pl_rope {
    int32_t n_rot;                        /* rotated dims per head (even, <= head_dim_k) */
    bool    neox;
    float   mscale;                       /* multiplies cos and sin (YaRN attention factor) */
    double  freq[PL_ROPE_MAX_PAIRS];      /* theta_i = pos * freq[i]: base^(-2i/n_rot) with
                                             rope_freqs, linear and YaRN scaling folded in */
} pl_rope;

/* ---- weights (borrowed from the mapping) ---- */

typedef struct pl_layer {
    const float *attn_norm;        /* [n_embd] */
    pl_mat       wq, wk, wv;       /* [n_embd -> n_head*hd_k], [.. n_head_kv*hd_k], [.. n_head_kv*hd_v] */
    pl_mat       wqkv;             /* fused: [n_embd -> q + k + v] (rows in that order) */
    const float *bq, *bk, *bv;     /* [q dim], [k dim], [v dim] or NULL */
    const float *q_norm, *k_norm;  /* [hd_k] or NULL */
    pl_mat       wo;               /* [n_head*hd_v -> n_embd] */
    const float *ffn_norm;         /* [n_embd] */
    pl_mat       w_gate, w_up;     /* [n_embd -> n_ff] */
    pl_mat       w_gate_up;        /* fused: [n_embd -> 2 n_ff], gate rows first */
    pl_mat       w_down;           /* [n_ff -> n_embd] */
} pl_layer;

struct pl_model {
    pl_ctx             *ctx;
    pl_gguf            *gguf;
    const pl_arch_info *arch;
    pl_model_info       info;
    pl_mat              tok_embd;    /* [n_embd, n_vocab]: row t is token t's embedding */
    const float        *output_norm; /* [n_embd] */
    pl_mat              output;      /* [n_embd -> n_vocab]; tok_embd when tied */
    /* rope frequency factors [n_rot/2] (divide the frequencies) or NULL:
     * rope_freqs (llama3), or phi3's short/long factors chosen by context length */
    const float        *rope_factors, *rope_factors_long;
    int32_t             rope_orig_ctx;   /* rope.scaling.original_context_length or 0 */
    float               rope_freq_scale; /* 1 / rope.scaling.factor (linear, YaRN); 1 = none */
    bool                rope_yarn;
    float               rope_attn_factor;
    float               yarn_beta_fast, yarn_beta_slow;
    pl_layer           *layers;      /* [n_layer] */
    pl_model_load_stats load;        /* filled by pl_model_load (load.c) */
};

/* ---- load (load.c): memory check, touch / mlock, warm-up, timings ---- */

typedef struct pl_load_clock {
    uint64_t t0_ns;        /* pl_model_load's start */
    uint64_t major_faults; /* the process's major faults at the start */
} pl_load_clock;

void pl_load_clock_start(pl_load_clock *clk);
/* After the tensors are validated: check memory, touch or lock, warm up, fill m->load.
 * The error text is on m->ctx. */
pl_status pl_model_load_finish(pl_model *m, const char *path, const pl_model_params *p, const pl_load_clock *clk);

/* Fill *r for a context of n_ctx tokens (picks phi3 long factors past the original ctx). */
void pl_rope_init(const pl_model *m, int32_t n_ctx, pl_rope *r);

/* ---- context ---- */

#define PL_KV_BLOCK 32 /* token slots per KV block (the unit of sharing and copy-on-write) */

struct pl_context {
    const pl_model *model;
    pl_ctx         *ctx;
    pl_pool        *pool;
    bool            own_pool;
    int32_t         n_ctx, n_batch, n_seq_max, n_outputs_max, n_threads;
    pl_rope         rope;

    /* KV cache: per layer, blocks of [n_head_kv][PL_KV_BLOCK][head_dim] f16 bits */
    int32_t   n_blocks, blocks_per_seq;
    uint16_t *k, *v;            /* [n_layer][n_blocks][n_head_kv][PL_KV_BLOCK][hd_k or hd_v] */
    size_t    k_block, v_block; /* elements per block (one layer) */
    int32_t  *refcnt;           /* [n_blocks]: sequences using the block (0 = free) */
    int32_t  *free_list;        /* [n_blocks] stack of free block ids */
    int32_t   n_free;
    int32_t  *seq_len;          /* [n_seq_max] */
    int32_t  *seq_blocks;       /* [n_seq_max][blocks_per_seq] block ids */
    int32_t  *seq_cursor;       /* [n_seq_max] scratch: next position while walking a batch */
    int32_t  *seq_need;         /* [n_seq_max] scratch: tokens a batch adds */

    /* scratch for one step of up to n_batch tokens (T) */
    float   *x;        /* [T][n_embd] residual stream */
    float   *xn;       /* [T][n_embd] normed */
    float   *q;        /* [T][n_head*hd_k] */
    float   *kc, *vc;  /* [T][n_head_kv*hd_k], [T][n_head_kv*hd_v] current tokens' K/V */
    float   *qkv;      /* fused only: [T][q + k + v] */
    float   *att;      /* [T][n_head*hd_v] attention output */
    float   *ffa;      /* [T][n_ff] (fused: [T][2 n_ff]) gate, then the SwiGLU product */
    float   *ffb;      /* [T][n_ff] up */
    float   *rope_cs;  /* [T][n_rot/2][2] cos, sin */
    float   *scores;   /* [n_threads][n_ctx] attention weights */
    float   *out_x;    /* [min(T, n_outputs_max)][n_embd] rows that produce logits */
    float   *logits;   /* [n_outputs_max][n_vocab] */
    void    *work;     /* pl_matmul activation conversion, 64-byte aligned inside work_raw */
    void    *work_raw;
    size_t   work_size;
    int32_t *tok_seq, *tok_pos; /* [T] of the current step */
    int32_t *out_idx;  /* [T] step-local indices of tokens that output */
    int32_t  n_outputs;
    uint64_t kv_bytes, scratch_bytes;
    char     err[256];
    /* profiling (pl_context_perf): per-phase ns, and the clock of the last lap */
    pl_decode_perf  perf;
    uint64_t        perf_t;
};

/* Add the time since the last lap to phase ph and start the next (one clock read, ~20 ns). */
static inline void pl_perf_lap(pl_context *c, pl_perf_phase ph) {
    uint64_t t = pl_time_ns();
    c->perf.phase_ns[ph] += t - c->perf_t;
    c->perf_t = t;
}

/* forward.c: run tokens [0, n) of one step (n <= n_batch), K/V slots already allocated. */
void pl_forward_step(pl_context *c, const int32_t *tokens, int32_t n, const int32_t *out_idx, int32_t n_out,
                     float *logits);

/* Pointers to the K / V slot of (layer, sequence, position). */
static inline uint16_t *pl_kv_k(const pl_context *c, int32_t layer, int32_t seq, int32_t pos, int32_t head) {
    const pl_model_info *mi = &c->model->info;
    int32_t blk = c->seq_blocks[(size_t)seq * (size_t)c->blocks_per_seq + (size_t)(pos / PL_KV_BLOCK)];
    return c->k + (size_t)layer * (size_t)c->n_blocks * c->k_block + (size_t)blk * c->k_block +
           ((size_t)head * PL_KV_BLOCK + (size_t)(pos % PL_KV_BLOCK)) * (size_t)mi->head_dim_k;
}
static inline uint16_t *pl_kv_v(const pl_context *c, int32_t layer, int32_t seq, int32_t pos, int32_t head) {
    const pl_model_info *mi = &c->model->info;
    int32_t blk = c->seq_blocks[(size_t)seq * (size_t)c->blocks_per_seq + (size_t)(pos / PL_KV_BLOCK)];
    return c->v + (size_t)layer * (size_t)c->n_blocks * c->v_block + (size_t)blk * c->v_block +
           ((size_t)head * PL_KV_BLOCK + (size_t)(pos % PL_KV_BLOCK)) * (size_t)mi->head_dim_v;
}

#endif
