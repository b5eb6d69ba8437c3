/*
 * parley/tensor.h - the tensor type table: one row per ggml type id.
 *
 * The table is immutable static data: every function here is thread-safe and
 * allocation-free. Per-type dequantize/quantize/dot entries live in the rows
 * (src/tensor/), never in a switch elsewhere. The entries here are the scalar
 * reference versions written from the block definitions (shared formats.md);
 * faster kernels plug in behind pl_matmul() without changing callers.
 */
#ifndef PARLEY_TENSOR_H
#define PARLEY_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ggml type ids as stored in GGUF files (the values are the file format). */
typedef enum pl_type {
    PL_TYPE_F32     = 0,
    PL_TYPE_F16     = 1,
    PL_TYPE_Q4_0    = 2,
    PL_TYPE_Q4_1    = 3,
    /* 4, 5 retired */
    PL_TYPE_Q5_0    = 6,
    PL_TYPE_Q5_1    = 7,
    PL_TYPE_Q8_0    = 8,
    PL_TYPE_Q8_1    = 9,
    PL_TYPE_Q2_K    = 10,
    PL_TYPE_Q3_K    = 11,
    PL_TYPE_Q4_K    = 12,
    PL_TYPE_Q5_K    = 13,
    PL_TYPE_Q6_K    = 14,
    PL_TYPE_Q8_K    = 15,
    PL_TYPE_IQ2_XXS = 16,
    PL_TYPE_IQ2_XS  = 17,
    PL_TYPE_IQ3_XXS = 18,
    PL_TYPE_IQ1_S   = 19,
    PL_TYPE_IQ4_NL  = 20,
    PL_TYPE_IQ3_S   = 21,
    PL_TYPE_IQ2_S   = 22,
    PL_TYPE_IQ4_XS  = 23,
    PL_TYPE_I8      = 24,
    PL_TYPE_I16     = 25,
    PL_TYPE_I32     = 26,
    PL_TYPE_I64     = 27,
    PL_TYPE_F64     = 28,
    PL_TYPE_IQ1_M   = 29,
    PL_TYPE_BF16    = 30,
    /* 31..33 retired */
    PL_TYPE_TQ1_0   = 34,
    PL_TYPE_TQ2_0   = 35,
    PL_TYPE_COUNT   = 36
} pl_type;

/* Row converters: n is a multiple of block_size; x and y do not overlap. */
typedef void (*pl_to_f32_fn)(const void *x, float *y, int64_t n);
typedef void (*pl_from_f32_fn)(const float *x, void *y, int64_t n);
/* Dot product of n values (a multiple of block_size): x in the row's type, y in the
 * row's vec_dot_type (the activation format, e.g. Q8_0 for Q4_0 weights, Q8_K for
 * the K types). Quantized pairs sum in integers per block and scale once per block. */
typedef float (*pl_vec_dot_fn)(const void *x, const void *y, int64_t n);

typedef struct pl_type_info {
    const char    *name;       /* "q4_K"-style ggml name; NULL for retired/unknown ids */
    uint32_t       block_size; /* values per block (1 for plain types); 0 when the layout is unknown */
    uint32_t       type_size;  /* bytes per block; 0 when the layout is unknown */
    bool           quantized;
    pl_to_f32_fn   to_f32;     /* scalar reference dequantize; NULL when not supported */
    pl_from_f32_fn from_f32;   /* scalar reference quantize; NULL when not supported */
    uint32_t       vec_dot_type; /* pl_type activations are converted to for vec_dot */
    pl_vec_dot_fn  vec_dot;    /* scalar reference dot; NULL when the type can't be a weight */
} pl_type_info;

/* Row for a type id, or NULL when id is not a known ggml type (retired or >= COUNT). */
const pl_type_info *pl_type_get(uint32_t id);
/* Name for logs: the table name, or "unknown" for ids without a row. */
const char *pl_type_name(uint32_t id);
/* Case-insensitive lookup by name ("Q4_K", "f16"); PL_ERR_NOT_FOUND when unknown. */
pl_status pl_type_from_name(const char *name, pl_type *out);
/* True when the id has a known block layout (size computable). */
bool pl_type_sized(uint32_t id);

/* Bytes of a row of n values: PL_ERR_INVALID_ARG when the type has no layout or n is not
 * a multiple of the block size, PL_ERR_OVERFLOW on overflow. */
pl_status pl_type_row_bytes(uint32_t id, uint64_t n, uint64_t *out);
/* Bytes of a tensor with ne[0..n_dims): ne[0] must be a multiple of the block
 * size; every product is overflow-checked. */
pl_status pl_type_tensor_bytes(uint32_t id, int n_dims, const int64_t *ne, uint64_t *out);

/* Convert n values (a multiple of the block size) through the table row.
 * PL_ERR_UNSUPPORTED when the type has no converter, PL_ERR_INVALID_ARG on a bad n. */
pl_status pl_type_to_f32(uint32_t id, const void *x, float *y, int64_t n);
pl_status pl_type_from_f32(uint32_t id, const float *x, void *y, int64_t n);

/* Scalar half/bfloat16 conversions (round-to-nearest-even; NaN stays NaN). */
float    pl_f16_to_f32(uint16_t h);
uint16_t pl_f32_to_f16(float f);
float    pl_bf16_to_f32(uint16_t h);
uint16_t pl_f32_to_bf16(float f);

/* ---- matrix x activations: the seam the fast kernels plug into ----
 * A weight matrix is `rows` rows of `k` values of `type`, row r at data + r*row_bytes
 * (a GGUF tensor with ne = [k, rows]). Borrowed: the matrix does not own data. */
typedef struct pl_mat {
    uint32_t    type;      /* pl_type of the rows; needs a vec_dot in the table */
    int64_t     k;         /* values per row (ne[0]); a multiple of the block size */
    int64_t     rows;      /* ne[1] */
    size_t      row_bytes; /* bytes per row */
    const void *data;
} pl_mat;

/* Fill *m for data of `type` with ne = [k, rows]. PL_ERR_UNSUPPORTED when the type has
 * no vec_dot, PL_ERR_INVALID_ARG on a bad k or rows, PL_ERR_OVERFLOW. */
pl_status pl_mat_init(pl_mat *m, uint32_t type, int64_t k, int64_t rows, const void *data);

/* Bytes of `work` that pl_matmul() needs for n activation rows of length k against
 * weights of type w_type (the rows converted to its vec_dot_type). 0 on a bad type or k,
 * SIZE_MAX on overflow. */
size_t pl_matmul_work_size(uint32_t w_type, int64_t k, int64_t n);

/* y[i][r] = dot(w row r, x row i) for i < n, r < w->rows.
 * x: f32 [n][w->k]; y: f32 [n][w->rows]; work: >= pl_matmul_work_size() bytes, best
 * 64-byte aligned (any alignment works; at 16 every 64-byte activation load splits two
 * cache lines: 4 decode columns of 512 x 2048 Q4_0 in L2 ran 36 -> 43 us).
 * Activations are converted once per call, then output rows are split over the
 * pool's threads (pool NULL: the calling thread). Allocation-free. */
pl_status pl_matmul(pl_pool *pool, const pl_mat *w, const float *x, int64_t n, float *y,
                    void *work, size_t work_size);

/* ---- kernels chosen by CPU level ----
 * The row kernels pl_matmul() uses for weights of type id at SIMD level lv: *dot (a
 * pl_vec_dot_fn with the same contract as the table row's) and *quantize (converts f32
 * activations to the row's vec_dot_type). Either out-param may be NULL. Types the level
 * has no SIMD kernel for get the scalar table rows. PL_ERR_UNSUPPORTED when this CPU
 * can't run lv, PL_ERR_INVALID_ARG for a type without vec_dot. Thread-safe. */
pl_status pl_type_kernel(uint32_t id, pl_cpu_level lv, pl_vec_dot_fn *dot, pl_from_f32_fn *quantize);
/* Optional batched dot: out[c] = dot(x, y + c * y_stride) for c < 4 (activation rows of
 * the row's vec_dot_type, y_stride bytes apart), sharing the weight unpack. NULL when the
 * level has none for the type (pl_matmul then uses the single dot). */
typedef void (*pl_vec_dot4_fn)(const void *x, const void *y, size_t y_stride, int64_t n, float *out);
pl_vec_dot4_fn pl_type_kernel_dot4(uint32_t id, pl_cpu_level lv);
/* The level pl_matmul() runs at: pl_cpu_best_level() (so $PL_CPU), read once per process. */
pl_cpu_level pl_kernel_level(void);

/* Fused causal attention of nq query rows of one head over one sequence's f16 K/V cache,
 * stored in blocks of PL_ATTN_BLOCK positions: position p of the sequence lives in cache
 * block blocks[p / PL_ATTN_BLOCK], row p % PL_ATTN_BLOCK, at
 *   k + blocks[p / B] * k_block + k_head + (p % B) * hd_k   (v likewise, hd_v values).
 * Query i sees positions 0..last[i]; o row i = softmax(scale q_i . k_p) . v_p over them.
 * Online softmax over blocks (running max and sum per query, blocks converted to f32 once
 * per call and shared by its queries): nothing of size positions x positions, no heap. A
 * query's result does not depend on the other queries of the call (decode == prefill).
 * Needs 1 <= hd_k, hd_v <= PL_ATTN_MAX_HD and 1 <= nq <= PL_ATTN_MAX_Q; last[i] >= 0. */
#define PL_ATTN_BLOCK  32
#define PL_ATTN_MAX_HD 256
#define PL_ATTN_MAX_Q  64
typedef struct pl_attn_args {
    const float    *q;        /* [nq][q_stride] */
    size_t          q_stride; /* floats */
    int32_t         nq;
    const int32_t  *last;     /* [nq] last visible position per query */
    const uint16_t *k, *v;    /* cache base (f16 bits) */
    const int32_t  *blocks;   /* block id per PL_ATTN_BLOCK positions */
    size_t          k_block, v_block; /* elements from one block id to the next */
    size_t          k_head, v_head;   /* elements from a block's start to this head's rows */
    int32_t         hd_k, hd_v;
    float           scale;
    float          *o;        /* [nq][o_stride] */
    size_t          o_stride; /* floats */
} pl_attn_args;

/* Vector helpers of the attention over the f16 KV cache, per level (every entry set). */
typedef struct pl_vec_ops {
    float (*dot_f32_f16)(const float *x, const uint16_t *y, int64_t n); /* sum x[i] * y[i] */
    void (*axpy_f16)(float *y, float a, const uint16_t *x, int64_t n);  /* y[i] += a * x[i] */
    pl_from_f32_fn f32_to_f16;                                           /* n values, RNE */
    void (*attn)(const pl_attn_args *a);                                 /* see pl_attn_args */
    float (*sum_sq)(const float *x, int64_t n);                          /* sum x[i]^2 (RMSNorm) */
    /* y[i] = silu(g[i]) * u[i] = g / (1 + e^-g) * u (SwiGLU); y may be u */
    void (*silu_mul)(float *y, const float *g, const float *u, int64_t n);
} pl_vec_ops;
/* The helpers at level lv; NULL when this CPU can't run lv. Static data, thread-safe. */
const pl_vec_ops *pl_vec_ops_get(pl_cpu_level lv);

/* Several matrices applied to the same activations (q/k/v, gate/up): one conversion of x
 * and one split of all their rows over the pool, instead of one per matrix (small models
 * are bound by these synchronizations). y[i] gets w[i]'s output [n][w[i]->rows]. All w[i]
 * need the same k and vec_dot_type (PL_ERR_INVALID_ARG otherwise); n_w <= PL_MATMUL_MAX.
 * pl_matmul() is the n_w = 1 case. */
#define PL_MATMUL_MAX 4
pl_status pl_matmul_multi(pl_pool *pool, const pl_mat *const *w, int n_w, const float *x, int64_t n,
                          float *const *y, void *work, size_t work_size);

/* ---- whole-file quant mixes (parley quantize, parley fixture) ----
 * The standard mixes of shared formats.md: every 2-D weight gets `base`, except
 * output.weight (token_embd when tied) -> `output`, attn_v / ffn_down of the
 * use_more_bits() layers -> `more_bits`, fused attn_qkv -> `qkv`; a row length that is
 * not a multiple of the type's block falls back to a 32-block type. Static data. */
typedef struct pl_quant_mix {
    const char *name;      /* "q4_k_m" */
    uint32_t    ftype;     /* general.file_type */
    pl_type     base, output, more_bits, qkv;
} pl_quant_mix;

size_t pl_quant_mix_count(void);
const pl_quant_mix *pl_quant_mix_at(size_t i);        /* NULL past the end */
const pl_quant_mix *pl_quant_mix_find(const char *name); /* case-insensitive; NULL if unknown */
/* i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 */
bool pl_quant_use_more_bits(int32_t i, int32_t n);
/* t, or its fallback when `row` values are not a multiple of its block size:
 * Q4_K -> Q5_0, Q5_K -> Q5_1, others -> Q8_0; is_output -> Q8_0. */
pl_type pl_quant_fallback(pl_type t, int64_t row, bool is_output);
/* The type tensor `name` (GGUF name, e.g. "blk.3.attn_v.weight") of n_dims dims and
 * rows of ne0 values gets in mix m, for a model of n_layer layers (tied: no
 * output.weight, token_embd is the output). 1-D tensors: F32. */
pl_type pl_quant_mix_type(const pl_quant_mix *m, const char *name, int n_dims, int64_t ne0, int32_t n_layer,
                          bool tied);

/* general.file_type names (file-level quant mix), e.g. 15 -> "Q4_K_M"; NULL if unknown. */
const char *pl_ftype_name(uint32_t ftype);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_TENSOR_H */
