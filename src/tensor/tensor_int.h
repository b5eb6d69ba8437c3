/* tensor_int.h - private: block layouts and the row functions referenced by the type table.
 * Block structs are laid out exactly as the file format (shared formats.md); the static
 * asserts pin their sizes. f16 fields are raw IEEE binary16 bits. */
#ifndef PL_TENSOR_INT_H
#define PL_TENSOR_INT_H

#include "parley/tensor.h"

#define PL_QK32 32  /* values per block of the 32-block types */
#define PL_QKK  256 /* values per super-block of the K types */

typedef struct { uint16_t d; int8_t qs[32]; } pl_block_q8_0;
typedef struct { uint16_t d; uint8_t qs[16]; } pl_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } pl_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } pl_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } pl_block_q5_1;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } pl_block_q2_k;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } pl_block_q3_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } pl_block_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } pl_block_q5_k;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } pl_block_q6_k;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } pl_block_q8_k;

_Static_assert(sizeof(pl_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(pl_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(pl_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(pl_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(pl_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(pl_block_q2_k) == 84, "q2_K layout");
_Static_assert(sizeof(pl_block_q3_k) == 110, "q3_K layout");
_Static_assert(sizeof(pl_block_q4_k) == 144, "q4_K layout");
_Static_assert(sizeof(pl_block_q5_k) == 176, "q5_K layout");
_Static_assert(sizeof(pl_block_q6_k) == 210, "q6_K layout");
_Static_assert(sizeof(pl_block_q8_k) == 292, "q8_K layout");

/* float.c */
void pl_f32_to_f32_row(const void *x, float *y, int64_t n);
void pl_f32_from_f32_row(const float *x, void *y, int64_t n);
void pl_f16_to_f32_row(const void *x, float *y, int64_t n);
void pl_f16_from_f32_row(const float *x, void *y, int64_t n);
void pl_bf16_to_f32_row(const void *x, float *y, int64_t n);
void pl_bf16_from_f32_row(const float *x, void *y, int64_t n);

/* quants.c, kquants.c: to_f32 / from_f32 / vec_dot per type */
#define PL_QUANT_ROWS(X) X(q8_0) X(q4_0) X(q4_1) X(q5_0) X(q5_1) \
    X(q2_k) X(q3_k) X(q4_k) X(q5_k) X(q6_k) X(q8_k)
#define PL_DECL_(t)                                                  \
    void pl_##t##_to_f32_row(const void *x, float *y, int64_t n);   \
    void pl_##t##_from_f32_row(const float *x, void *y, int64_t n); \
    float pl_##t##_vec_dot(const void *x, const void *y, int64_t n);
PL_QUANT_ROWS(PL_DECL_)
#undef PL_DECL_
float pl_f32_vec_dot(const void *x, const void *y, int64_t n);
float pl_f16_vec_dot(const void *x, const void *y, int64_t n);
float pl_bf16_vec_dot(const void *x, const void *y, int64_t n);

/* Prefill GEMM (gemm_x86.inc): y[c][r] = dot(w row r, activation column c) for rows in
 * 16-row panels [p0, p1); a holds n columns in the GEMM activation format (a_stride
 * bytes apart, from the level's gemm_quant of the weight's vec_dot_type). */
typedef struct pl_gemm_args {
    const uint8_t *w;         /* [rows][row_bytes] weight rows in the file layout */
    size_t         row_bytes;
    int64_t        rows, k;
    const uint8_t *a;         /* [n][a_stride] activation columns */
    size_t         a_stride;
    int64_t        n;
    float         *y;         /* [n][rows] */
} pl_gemm_args;
typedef void (*pl_gemm_fn)(const pl_gemm_args *g, int64_t p0, int64_t p1);
#define PL_GEMM_ROWS 16 /* rows per panel */
/* Bytes of one activation column of k values for weights with vec_dot_type vdt (Q8_0 or
 * Q8_K): u8 values, float scales (and Q8_K's float sums per 32), rounded to 64. */
size_t pl_gemm_act_bytes(uint32_t vdt, int64_t k);

/* Decode / small-batch matmul (gemv_x86.inc): the same arguments as the GEMM, for
 * weight rows [r0, r1) and 1..PL_GEMM_MIN_N-1 activation columns in the gemv format
 * (a_stride = pl_gemv_act_bytes(vec_dot_type, k)) from the level's gemv_quant. */
typedef void (*pl_gemv_fn)(const pl_gemm_args *g, int64_t r0, int64_t r1);
size_t pl_gemv_act_bytes(uint32_t vdt, int64_t k);

/* kernels.c: SIMD row kernels by weight type (vec_dot) and activation type (quantize);
 * NULL entries fall back to the type table's scalar rows. */
typedef struct pl_kernel_set {
    pl_vec_dot_fn  vec_dot[PL_TYPE_COUNT];
    pl_from_f32_fn quantize[PL_TYPE_COUNT];
    pl_vec_dot4_fn vec_dot4[PL_TYPE_COUNT]; /* optional: one row . 4 activation rows */
    pl_gemm_fn     gemm[PL_TYPE_COUNT];       /* optional: prefill GEMM by weight type */
    pl_from_f32_fn gemm_quant[PL_TYPE_COUNT]; /* its activation format, by vec_dot_type */
    pl_gemv_fn     gemv[PL_TYPE_COUNT];       /* optional: decode kernel by weight type */
    pl_from_f32_fn gemv_quant[PL_TYPE_COUNT]; /* its activation format, by weight type (the
                                                 * 32-block types' corrections differ) */
    pl_vec_ops     vec;
} pl_kernel_set;

/* The level's GEMM for weight type id and its activation quantizer, or NULL. */
pl_gemm_fn pl_type_kernel_gemm(uint32_t id, pl_cpu_level lv, pl_from_f32_fn *quantize);
/* The level's decode kernel for weight type id and its activation quantizer, or NULL. */
pl_gemv_fn pl_type_kernel_gemv(uint32_t id, pl_cpu_level lv, pl_from_f32_fn *quantize);

#endif
